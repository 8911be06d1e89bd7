"""Pipeline step `slices`: normalised axial T1 slices on the ICBM152 grid, stacked for the image model.

Thin entry point shared by dvc.yaml and MLproject; the work is in g2i.data.slices and g2i.imaging
(command: g2i.commands.slices). --help for the options.
"""

from g2i.cli import run_step

if __name__ == "__main__":
    raise SystemExit(run_step("slices"))
