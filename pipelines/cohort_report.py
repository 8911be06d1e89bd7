"""Pipeline step `cohort_report`: measured ventricle volumes per class and e4 dose, CN vs AD preview.

Thin entry point shared by dvc.yaml and MLproject; the work is in g2i.reports.cohort. --help for options.
"""

import sys

from g2i.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["cohort-report", *sys.argv[1:]]))
