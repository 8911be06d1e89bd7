"""g2i study: the paper's experiment at the paper's cohort size on a CPU, against the planted truth.

Runs the whole DVC pipeline under another profile (default `study`) in a clone of this repository's
HEAD (`.study/` by default, ignored by git and DVC), so the demo's workspace, data.dvc and dvc.lock stay
untouched: clone, set `profile`, generate that profile's synthetic cohort, `dvc add data/raw`,
`dvc repro`, then write docs/results/<profile>.{json,md} (and figures) HERE from the clone's reports,
with the commit and the wall time of the whole run. Rerunning resumes: DVC skips finished stages.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

NAME = "study"
HELP = "run the pipeline under the `study` profile in a clone (.study/) and write docs/results/study.{md,json}"
DESCRIPTION = ("The paper's experiment at the paper's cohort size on a CPU: clone HEAD into --workdir, set the "
               "profile, generate its synthetic cohort, dvc repro, then write docs/results/<profile>.md/.json from "
               "the run's reports with the commit and the wall time. Commit your changes first: the clone runs HEAD.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="study", help="profile to run (default: study)")
    parser.add_argument("--workdir", type=Path, default=Path(".study"),
                        help="where the clone runs (default: .study; reused, so a rerun resumes)")
    parser.add_argument("--results", type=Path, default=Path("docs/results"),
                        help="where <profile>.md / .json and the figures go (default: docs/results)")
    parser.add_argument("--report-only", action="store_true",
                        help="only rebuild the results from an existing --workdir run (wall time from its record)")


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    from ..errors import G2IError

    print("+ " + " ".join(cmd), flush=True)
    if subprocess.run(cmd, cwd=cwd, env=env).returncode != 0:
        raise G2IError(f"`{' '.join(cmd)}` failed in {cwd} (see its output above); rerun `make study` to resume")


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()


def prepare_clone(root: Path, workdir: Path, profile: str) -> str:
    """A clone of HEAD in `workdir` with `profile` and its `variants` selected; returns the commit it runs."""
    import yaml

    from ..config import resolve
    from ..vocabulary import variants, variants_yaml
    from ..errors import G2IError

    commit = _git(root, "rev-parse", "HEAD")
    if _git(root, "status", "--porcelain", "--untracked-files=no"):
        print("note: uncommitted changes are not part of the study (the clone runs HEAD)", file=sys.stderr)
    if not (workdir / ".git").exists():
        if workdir.exists() and any(workdir.iterdir()):
            raise G2IError(f"{workdir}: exists and is not a clone from an earlier study; remove it or pass --workdir")
        _run(["git", "clone", "--quiet", "--no-checkout", str(root), str(workdir)], cwd=root)
    _run(["git", "fetch", "--quiet", str(root), commit], cwd=workdir)
    _run(["git", "checkout", "--quiet", "--force", "--detach", commit], cwd=workdir)
    params = workdir / "params.yaml"
    text, n = re.subn(r"(?m)^profile: *\S+", f"profile: {profile}", params.read_text(), count=1)
    if n != 1:
        raise G2IError(f"{params}: no top-level `profile:` line to set")
    # dvc.yaml's foreach reads the top-level `variants` line (DVC does not resolve profiles): the profile's here
    chosen = variants_yaml(variants(resolve(yaml.safe_load(text), profile)))
    text, n = re.subn(r"(?m)^variants: *\{[^#\n]*\}", lambda _: f"variants: {chosen}", text, count=1)
    if n != 1:
        raise G2IError(f"{params}: no one-line top-level `variants: {{...}}` to set")
    params.write_text(text)
    return commit


def run(args: argparse.Namespace) -> None:
    from ..config import load_params, repo_root
    from ..errors import G2IError
    from ..io.atomic import write_json

    root = repo_root()
    if args.profile not in load_params()["profiles"]:
        raise G2IError(f"unknown profile '{args.profile}' (params.yaml: profiles)")
    workdir = args.workdir if args.workdir.is_absolute() else root / args.workdir
    record = workdir / "reports" / "study_run.json"
    if args.report_only:
        if not record.is_file():
            raise G2IError(f"{record}: no finished study run to report; run `make study` first")
        run_info = json.loads(record.read_text())
    else:
        commit = prepare_clone(root, workdir, args.profile)
        bin_dir = str(Path(sys.executable).parent)
        env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
               "PYTHONPATH": str(workdir / "src"),        # the clone's code, not this checkout's editable install
               "MLFLOW_TRACKING_URI": os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")}
        g2i, dvc = str(Path(bin_dir) / "g2i"), str(Path(bin_dir) / "dvc")
        # Every invocation is one part of the total; a resumed one runs only the stages not yet up to date.
        with PartLedger(workdir, commit) as ledger:
            if not (workdir / "data" / "raw").is_dir():
                _run([g2i, "synthesize", "--profile", args.profile, "--out", "data/raw"], cwd=workdir, env=env)
            _run([dvc, "add", "--quiet", "data/raw"], cwd=workdir, env=env)   # this profile's cohort, in the clone
            _run([dvc, "repro"], cwd=workdir, env=env)
        from ..machine import cpu_model

        parts = ledger.parts
        run_info = {"profile": args.profile, "commit": commit, "parts": parts, "cpu": cpu_model(),
                    "wall_seconds": round(sum(p["seconds"] for p in parts), 1), "cores": os.cpu_count()}
        write_json(record, run_info)
    from ..reports.results import write_results

    results = args.results if args.results.is_absolute() else root / args.results
    paths = write_results(workdir, results, run_info)
    print("wrote " + ", ".join(str(p.relative_to(root)) for p in paths))


HEARTBEAT_S = 30.0   # how much of an invocation killed part-way can go uncounted


class PartLedger:
    """The invocations ("parts") of one study, kept in its workdir and rewritten every `heartbeat_s` seconds
    while one runs. A study takes hours on a CPU and may be cut short (a reboot, a session's end); rerunning
    resumes it, and the total must count the cut invocation too: it keeps the time of its last heartbeat and
    is marked interrupted, instead of the last invocation being passed off as the whole run."""

    FILE = ".study_parts.json"

    def __init__(self, workdir: Path, commit: str, heartbeat_s: float = HEARTBEAT_S):
        self.path, self.heartbeat_s = workdir / self.FILE, heartbeat_s
        earlier = json.loads(self.path.read_text())["parts"] if self.path.is_file() else self._from_record(workdir)
        self.earlier = [{**p, "interrupted": True} if p.pop("running", False) else p for p in earlier]
        # Before the ledger existed a marker was all that showed an earlier start; its time is then unknown.
        unrecorded = not self.earlier and (workdir / ".study_started").is_file()
        self.current = {"seconds": 0.0, "commit": commit, "resumed": bool(self.earlier) or unrecorded}
        if unrecorded:
            self.current["earlier_unrecorded"] = True

    @staticmethod
    def _from_record(workdir: Path) -> list[dict]:
        """Parts of a study finished before the ledger existed: its record (one part for a record without parts)."""
        record = workdir / "reports" / "study_run.json"
        if not record.is_file():
            return []
        earlier = json.loads(record.read_text())
        return list(earlier.get("parts") or [{"seconds": earlier["wall_seconds"], "commit": earlier["commit"],
                                              "resumed": earlier.get("resumed", False)}])

    @property
    def parts(self) -> list[dict]:
        return self.earlier + [self.current]

    def _write(self, running: bool) -> None:
        from ..io.atomic import write_json

        self.current["seconds"] = round(time.monotonic() - self._start, 1)
        write_json(self.path, {"parts": self.earlier + [{**self.current, "running": True} if running else self.current]})

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            self._write(running=True)

    def __enter__(self) -> "PartLedger":
        import threading

        self._start, self._stop = time.monotonic(), threading.Event()
        self._write(running=True)
        self._thread = threading.Thread(target=self._beat, name="study-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if exc_type is not None:   # a failed stage or Ctrl-C: its time still counts once the study is resumed
            self.current["interrupted"] = True
        self._write(running=False)
