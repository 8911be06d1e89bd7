"""Pipeline step `cohort_report`: measured ventricle volumes per class and e4 dose, CN vs AD preview.

Thin entry point shared by dvc.yaml and MLproject; the work is in g2i.reports.cohort (command:
g2i.commands.cohort_report). --help for the options.
"""

from g2i.cli import run_step

if __name__ == "__main__":
    raise SystemExit(run_step("cohort-report"))
