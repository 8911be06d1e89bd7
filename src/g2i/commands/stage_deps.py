"""g2i stage-deps: check (or fix) that every dvc.yaml stage lists the source files it runs."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "stage-deps"
HELP = "check that each dvc.yaml stage's deps list every g2i module it imports (--write fixes dvc.yaml)"
DESCRIPTION = ("A code edit must rerun exactly the stages that run that code. For each stage `python "
               "pipelines/<step>.py`, derive the g2i modules it imports (static import graph of "
               "g2i.commands.<step>, g2i.stage_deps) and compare with its deps in dvc.yaml: missing files and stale "
               "ones (listed, not imported). Exit 1 when they disagree; --write rewrites dvc.yaml's code deps "
               "in place, keeping the other deps and comments.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dvc-yaml", type=Path, default=None, help="default: dvc.yaml at the project root")
    parser.add_argument("--write", action="store_true", help="fix dvc.yaml instead of only reporting")
    parser.add_argument("--lock", action="store_true",
                        help="then re-record dvc.lock's code and params hashes (files git tracks, params.yaml "
                             "values), keeping its data and output hashes: for a checkout without the outputs, "
                             "after a change that leaves every output as it was (a refactor); otherwise dvc repro")


def run(args: argparse.Namespace) -> None:
    from ruamel.yaml import YAML

    from ..config import repo_root
    from ..errors import G2IError
    from ..io.atomic import atomic_file
    from ..stage_deps import check, relock, rewrite

    root = repo_root()
    path = args.dvc_yaml or root / "dvc.yaml"
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    dvc = yaml.load(path.read_text())
    problems = rewrite(root, dvc) if args.write else check(root, dvc)
    for stage, p in problems.items():
        for kind in ("missing", "stale"):
            if p[kind]:
                print(f"{stage}: {kind} {' '.join(p[kind])}")
    if args.write and problems:
        with atomic_file(path) as handle:
            yaml.dump(dvc, handle)
        print(f"{path}: code deps rewritten for {len(problems)} stage(s)")
    elif problems:
        raise G2IError(f"{path}: {len(problems)} stage(s) do not list the code they run; "
                       "`g2i stage-deps --write` fixes them")
    else:
        print(f"{path}: every stage lists the code it runs")
    if args.lock:
        stages = relock(root)
        print(f"{root / 'dvc.lock'}: re-recorded code and params of {len(stages)} stage(s)"
              + (f": {' '.join(stages)}" if stages else ""))
