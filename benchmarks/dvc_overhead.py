"""Benchmark DVC's own overhead here: its YAML parser in C (ruamel.yaml.clib) against pure Python.

DVC reads params.yaml once for every stage whose params it checks (about 25 times in one `dvc status` of
this pipeline) and dvc.yaml / dvc.lock besides; ruamel.yaml 0.19 parses in pure Python unless its C half,
ruamel.yaml.clib, is installed (pyproject.toml pins it). Measured in one run, alternating:

  parse        params.yaml through ruamel's safe loader, C and pure Python (median of --parses)
  dvc status   the whole command in a fresh process, with ruamel as installed and forced to pure Python
               (median of --repeats each), on --repo (default: this checkout)

Prints both, their ratios and the machine. Not a test: run it by hand, e.g.

    .venv/bin/python benchmarks/dvc_overhead.py --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from g2i.machine import cpu_model  # noqa: E402

# `dvc status` with every ruamel YAML object built pure=True: the parser DVC had without ruamel.yaml.clib
PURE_DVC = """
import sys
import ruamel.yaml.main as m
_init = m.YAML.__init__
m.YAML.__init__ = lambda self, **kw: _init(self, **{**kw, "pure": True})
from dvc.cli import main
sys.exit(main(["status", "--quiet"]))
"""
DVC = "import sys\nfrom dvc.cli import main\nsys.exit(main(['status', '--quiet']))\n"


def parse_seconds(text: str, pure: bool, n: int) -> float:
    from ruamel.yaml import YAML

    times = []
    for _ in range(n):
        start = time.perf_counter()
        YAML(typ="safe", pure=pure).load(text)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def status_seconds(repo: Path, code: str) -> float:
    start = time.perf_counter()
    # status exits 1 where stages changed (a checkout without the data): the time is what is measured
    subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, default=ROOT, help="a DVC project (dvc.yaml, params.yaml, dvc.lock)")
    parser.add_argument("--repeats", type=int, default=5, help="dvc status runs of each kind")
    parser.add_argument("--parses", type=int, default=20, help="parses of params.yaml of each kind")
    args = parser.parse_args()
    from ruamel.yaml import YAML

    if "ruamel.yaml.parser" in YAML(typ="safe").Parser.__module__:
        parser.error("ruamel.yaml.clib is not installed here: nothing to compare (pip install -e .)")
    text = (args.repo / "params.yaml").read_text()
    c_parse, pure_parse = parse_seconds(text, False, args.parses), parse_seconds(text, True, args.parses)
    c_runs, pure_runs = [], []
    for _ in range(args.repeats):                      # alternating: a passing load falls on both
        c_runs.append(status_seconds(args.repo, DVC))
        pure_runs.append(status_seconds(args.repo, PURE_DVC))
    c_status, pure_status = statistics.median(c_runs), statistics.median(pure_runs)
    print(f"machine: {cpu_model()}; repo: {args.repo}")
    print(f"params.yaml parse ({len(text.splitlines())} lines): C {c_parse * 1e3:.1f} ms, pure Python "
          f"{pure_parse * 1e3:.1f} ms: x{pure_parse / c_parse:.1f}")
    print(f"dvc status (median of {args.repeats}): C {c_status:.2f} s, pure Python {pure_status:.2f} s: "
          f"x{pure_status / c_status:.2f}, {pure_status - c_status:.2f} s saved a call")


if __name__ == "__main__":
    main()
