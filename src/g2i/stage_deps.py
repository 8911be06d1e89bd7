"""Which source files each DVC stage runs, from the static import graph, so that dvc.yaml's deps follow the code.

A stage's command is `python pipelines/<step>.py`; that script runs `g2i.cli`, which runs
`g2i.commands.<step>`. Its code is that script plus every `g2i` module reachable from the command and the
CLI by `import` / `from ... import` statements anywhere in a file (the commands import lazily, inside
`run`), plus the `__init__.py` of every package on the way. Modules loaded by name at run time (the
CLI's `importlib` of the other commands, for their --help) are not followed: they do not run the step.

Only Python files are derived; data a module reads (e.g. `src/g2i/resources/*.tsv`) stays listed by hand.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

CODE_DIRS = ("pipelines/", "src/g2i/")
_STEP = re.compile(r"^python pipelines/(\w+)\.py\b")


def module_file(src: Path, module: str) -> Path | None:
    """The file that defines `module` under `src` (module.py or package/__init__.py), or None."""
    base = src.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(src: Path, path: Path, module: str) -> set[str]:
    """The `g2i` modules that `path` (defining `module`) imports, relative imports resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "g2i"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(parts + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.split(".")[0] != "g2i":
                continue
            found.add(name)
            # `from .x import y` may name a submodule y
            found |= {f"{name}.{a.name}" for a in node.names if module_file(src, f"{name}.{a.name}") is not None}
    return found


def module_closure(src: Path, roots: Iterable[str]) -> set[Path]:
    """Files of every module reachable from `roots`, and of the packages that contain them."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        module = todo.pop()
        path = module_file(src, module)
        if module in seen or path is None:
            continue
        seen.add(module)
        todo += imported_modules(src, path, module)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
    return {module_file(src, m) for m in seen}


def step_code(root: Path, step: str) -> list[str]:
    """Repo-relative files that `python pipelines/<step>.py` runs."""
    files = module_closure(root / "src", [f"g2i.commands.{step}", "g2i.cli"])
    return [f"pipelines/{step}.py"] + sorted(str(f.relative_to(root)) for f in files)


def stage_steps(dvc: Mapping[str, Any]) -> dict[str, str]:
    """Stage name -> pipelines/ step, for every stage of a loaded dvc.yaml whose command runs one."""
    out = {}
    for name, stage in dvc.get("stages", {}).items():
        cmd = (stage.get("do") or stage).get("cmd", "")
        match = _STEP.match(cmd if isinstance(cmd, str) else "")
        if match:
            out[name] = match.group(1)
    return out


def _stage_body(stage: Mapping[str, Any]) -> Mapping[str, Any]:
    return stage.get("do") or stage


def check(root: Path, dvc: Mapping[str, Any]) -> dict[str, dict[str, list[str]]]:
    """Per stage whose code deps disagree with its imports: the `missing` files and the `stale` ones
    (listed .py files under src/g2i that the stage does not run). Empty when dvc.yaml is right."""
    problems = {}
    for name, step in stage_steps(dvc).items():
        listed = [str(d) for d in _stage_body(dvc["stages"][name]).get("deps", [])]
        code = step_code(root, step)
        missing = [f for f in code if f not in listed]
        stale = [f for f in listed if f.startswith(CODE_DIRS) and f.endswith(".py") and f not in code]
        if missing or stale:
            problems[name] = {"missing": missing, "stale": stale}
    return problems


def rewrite(root: Path, dvc: Any) -> dict[str, dict[str, list[str]]]:
    """Fix the code deps of a round-trip-loaded dvc.yaml in place: drop stale files, insert missing ones
    after the stage's last code dep (other deps and their comments stay). Returns what changed."""
    problems = check(root, dvc)
    for name, change in problems.items():
        deps = _stage_body(dvc["stages"][name])["deps"]
        for stale in change["stale"]:
            deps.remove(stale)
        last = max((i for i, d in enumerate(deps) if str(d).startswith(CODE_DIRS)), default=-1)
        for offset, path in enumerate(change["missing"]):
            deps.insert(last + 1 + offset, path)
    return problems


def relock(root: Path) -> list[str]:
    """Re-record in dvc.lock what each stage's code and params hash to now, keeping the recorded hashes of
    its data deps and outputs. For a checkout without the pipeline's outputs (a clone, CI) after a change
    that does not change any output, such as a refactor: `dvc commit` would need the outputs present.
    A dep counts as code when git tracks it (pipelines/, src/, gx/, resources); params are read from
    params.yaml. Uses DVC's own hashing and lock writer, so the bytes match what `dvc repro` would write.
    Returns the stages whose lock entry changed."""
    import subprocess

    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    from dvc.stage.serialize import to_lockfile
    from dvc.utils.serialize import load_yaml

    tracked = set(subprocess.run(["git", "ls-files"], cwd=root, check=True, capture_output=True,
                                 text=True).stdout.splitlines())
    lock = root / "dvc.lock"
    recorded = load_yaml(lock).get("stages", {}) if lock.exists() else {}
    with Repo(str(root)) as repo:
        # pipeline stages with a lock entry (a stage never run has no output hashes to keep)
        stages = [s for s in repo.index.stages
                  if getattr(s, "name", None) and all(out.hash_info for out in s.outs)]
        for stage in stages:
            for dep in stage.deps:
                if isinstance(dep, ParamsDependency) or dep.def_path in tracked:
                    dep.save()
        changed = [s for s in stages if recorded.get(s.name) != to_lockfile(s)[s.name]]
        if changed:
            changed[0].dvcfile.dump_stages(changed, update_pipeline=False)   # one rewrite of the lock
    return [s.name for s in changed]
