"""Pipeline step `synthesize`: write the synthetic cohort (ADNI formats) into data/raw.

Thin entry point shared by the Makefile and MLproject; the work is in g2i.synthetic (command:
g2i.commands.synthesize). --help for the options. data/raw is versioned by data.dvc (not a dvc.yaml
stage), exactly as a real ADNI download would be.
"""

from g2i.cli import run_step

if __name__ == "__main__":
    raise SystemExit(run_step("synthesize"))
