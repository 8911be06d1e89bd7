"""Pipeline step `compare`: thin entry point shared by dvc.yaml and MLproject (g2i.commands.compare). --help for options."""

from g2i.cli import run_step

if __name__ == "__main__":
    raise SystemExit(run_step("compare"))
