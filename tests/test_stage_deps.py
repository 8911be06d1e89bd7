"""dvc.yaml's code deps follow the static import graph (g2i.stage_deps, `g2i stage-deps`)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml

from g2i.stage_deps import check, rewrite, step_code

from .conftest import ROOT


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def _toy(tmp_path: Path) -> Path:
    """A g2i package in miniature: the command imports lazily, relatively and by `from package import module`."""
    _tree(tmp_path, {
        "pipelines/step.py": "from g2i.cli import run_step\n",
        "src/g2i/__init__.py": "",
        "src/g2i/cli.py": "import importlib\nfrom .errors import G2IError\n",
        "src/g2i/errors.py": "class G2IError(Exception): ...\n",
        "src/g2i/commands/__init__.py": "",
        "src/g2i/commands/step.py": """
            from . import helpers
            def run(args):
                from ..lib import core
                from ..lib.extra import thing
            """,
        "src/g2i/commands/helpers.py": "",
        "src/g2i/lib/__init__.py": "",
        "src/g2i/lib/core.py": "import numpy\nfrom g2i.lib import deep\n",
        "src/g2i/lib/deep.py": "",
        "src/g2i/lib/extra.py": "thing = 1\n",
        "src/g2i/lib/unused.py": "",
    })
    return tmp_path


def test_step_code_follows_lazy_relative_and_package_imports(tmp_path):
    root = _toy(tmp_path)
    assert step_code(root, "step") == [
        "pipelines/step.py", "src/g2i/__init__.py", "src/g2i/cli.py", "src/g2i/commands/__init__.py",
        "src/g2i/commands/helpers.py", "src/g2i/commands/step.py", "src/g2i/errors.py", "src/g2i/lib/__init__.py",
        "src/g2i/lib/core.py", "src/g2i/lib/deep.py", "src/g2i/lib/extra.py"]


def test_check_reports_missing_and_stale_code_and_rewrite_fixes_only_code(tmp_path):
    root = _toy(tmp_path)
    listed = ["pipelines/step.py", "src/g2i/commands/step.py", "src/g2i/lib/unused.py", "src/g2i/data.tsv",
              "data/raw"]
    dvc = {"stages": {"one": {"cmd": "python pipelines/step.py --x 1", "deps": list(listed)},
                      "many": {"foreach": ["a", "b"], "do": {"cmd": "python pipelines/step.py ${item}",
                                                               "deps": list(listed)}},
                      "other": {"cmd": "echo hi", "deps": ["src/g2i/lib/unused.py"]}}}
    problems = check(root, dvc)
    assert set(problems) == {"one", "many"}                         # not a stage that runs no pipelines/ step
    assert problems["one"]["stale"] == ["src/g2i/lib/unused.py"]    # listed, never imported
    assert "src/g2i/lib/deep.py" in problems["one"]["missing"] and "src/g2i/commands/step.py" not in problems["one"]["missing"]
    rewrite(root, dvc)
    assert check(root, dvc) == {}
    deps = dvc["stages"]["many"]["do"]["deps"]
    assert deps[-1] == "data/raw" and "src/g2i/data.tsv" in deps  # data and resources stay, after the code
    assert sorted(d for d in deps if d.endswith(".py")) == sorted(step_code(root, "step"))


def test_every_stage_of_dvc_yaml_lists_the_code_it_runs():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    assert check(ROOT, dvc) == {}, "run `g2i stage-deps --write`"
