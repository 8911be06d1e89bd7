"""Pipeline step `validate_genotypes`: a Great Expectations suite on the genotype table, with Data Docs.

Thin entry point shared by dvc.yaml and MLproject; the work is in g2i.validation.genotypes (command:
g2i.commands.validate_genotypes). --help for the options.
"""

from g2i.cli import run_step

if __name__ == "__main__":
    raise SystemExit(run_step("validate-genotypes"))
