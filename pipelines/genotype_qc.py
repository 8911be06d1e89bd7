"""Pipeline step `genotype_qc`: thin entry point shared by dvc.yaml and MLproject (g2i.commands.genotype_qc). --help for options."""

from g2i.cli import run_step

if __name__ == "__main__":
    raise SystemExit(run_step("genotype-qc"))
