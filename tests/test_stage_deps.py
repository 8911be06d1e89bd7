"""dvc.yaml's code deps follow the static import graph (g2i.stage_deps, `g2i stage-deps`)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from g2i.stage_deps import check, rewrite, step_code

from .conftest import ROOT, load_benchmark


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


def _git(root: Path, *args: str) -> None:
    import subprocess

    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def _dvc(root: Path, *args: str) -> str:
    import subprocess
    import sys

    dvc = Path(sys.executable).with_name("dvc")
    return subprocess.run([str(dvc), *args], cwd=root, check=True, capture_output=True, text=True).stdout


def test_relock_records_code_and_params_and_keeps_output_hashes_without_the_outputs(tmp_path):
    """`g2i stage-deps --lock` in a checkout without outputs: the lock it writes after a refactor (a script edit
    that changes no output) and a params edit is byte for byte the lock `dvc repro` writes with the outputs."""
    from g2i.stage_deps import relock

    _tree(tmp_path, {
        "in.txt": "raw\n",
        "make_mid.sh": "cp in.txt mid.txt\n",
        "params.yaml": "p: 1\nq: 1\n",
        "dvc.yaml": """
            stages:
              mid:
                cmd: sh make_mid.sh
                deps: [make_mid.sh, in.txt]
                params: [p]
                outs: [mid.txt]
              out:
                cmd: cp mid.txt out.txt
                deps: [mid.txt]
                params: [q]
                outs: [out.txt]
            """,
    })
    _git(tmp_path, "init", "-q")
    _dvc(tmp_path, "init", "-q")
    _dvc(tmp_path, "config", "core.analytics", "false")
    _dvc(tmp_path, "repro", "-q")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    recorded = (tmp_path / "dvc.lock").read_text()

    assert relock(tmp_path) == []                                   # nothing moved: the lock is untouched
    assert (tmp_path / "dvc.lock").read_text() == recorded

    for out in ("mid.txt", "out.txt"):                              # a clone: outputs absent
        (tmp_path / out).unlink()
    (tmp_path / "make_mid.sh").write_text("# copy the raw file\ncp in.txt mid.txt\n")
    (tmp_path / "params.yaml").write_text("p: 2\nq: 1\n")
    assert relock(tmp_path) == ["mid"]                              # `out` reads neither
    relocked = (tmp_path / "dvc.lock").read_text()
    assert relocked != recorded and "p: 2" in relocked

    _dvc(tmp_path, "repro", "-q", "--force")                        # the outputs back, by DVC itself
    assert (tmp_path / "dvc.lock").read_text() == relocked


def test_dvc_parses_yaml_in_c_and_the_benchmark_can_force_pure_python():
    """DVC reads params.yaml for every stage it checks; ruamel.yaml.clib (pyproject.toml) makes that C.
    benchmarks/dvc_overhead.py compares against pure Python by patching ruamel's YAML(): that patch must bite."""
    from dvc.utils.serialize._yaml import parse_yaml
    from ruamel.yaml import YAML
    import ruamel.yaml.main

    assert "ruamel.yaml.parser" not in YAML(typ="safe").Parser.__module__   # the C parser
    assert parse_yaml("a: {b: [1, 2]}\n", "x.yaml") == {"a": {"b": [1, 2]}}
    bench = load_benchmark("dvc_overhead")
    patch = bench.PURE_DVC.split("from dvc.cli")[0]
    original = ruamel.yaml.main.YAML.__init__
    try:
        exec(patch, {})
        assert YAML(typ="safe").Parser.__module__ == "ruamel.yaml.parser"
    finally:
        ruamel.yaml.main.YAML.__init__ = original
    assert "ruamel.yaml.parser" not in YAML(typ="safe").Parser.__module__


def test_the_benchmark_refuses_plainly_where_ruamel_has_no_c_parser(monkeypatch, capsys):
    """Without ruamel.yaml.clib there is nothing to compare: a usage error naming the package, before any run."""
    import ruamel.yaml.main

    bench = load_benchmark("dvc_overhead")
    pure = ruamel.yaml.main.YAML.__init__
    monkeypatch.setattr(ruamel.yaml.main.YAML, "__init__", lambda self, **kw: pure(self, **{**kw, "pure": True}))
    monkeypatch.setattr(bench, "status_seconds", lambda *a: pytest.fail("ran dvc status without a C parser"))
    monkeypatch.setattr("sys.argv", ["dvc_overhead.py", "--repeats", "1"])
    with pytest.raises(SystemExit) as stop:
        bench.main()
    assert stop.value.code == 2 and "ruamel.yaml.clib is not installed" in capsys.readouterr().err
