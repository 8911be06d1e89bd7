"""The `paper` profile end to end on a CPU, before anyone rents a GPU: every DVC stage at 256 x 256 on a small
1 mm synthetic cohort with the step counts cut to a handful, then `g2i register` and the real
`mlflow models serve` answering one request. It catches what only the paper's sizes break.

    python benchmarks/paper_e2e.py --out docs/results/paper_e2e      # ~15-20 min on 2 CPU cores

Each stage runs as `dvc repro --single-item <stage>`, timed, its peak memory read from wait4 (the largest
resident set of dvc and the stage process). The stages whose work grows with the generated sets (sample,
evaluate, probe, classify) run at two set sizes; a line through the two points gives their peak at the
paper profile's full sizes (a linear extrapolation: say so when quoting it). Writes paper_e2e.json and
paper_e2e.md to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from g2i.machine import describe  # noqa: E402

BIN = Path(sys.executable).parent
SCALED = ("sample", "evaluate", "probe", "classify")
# The two measured set sizes (images per test subject, classifier set per class, e4-sweep subjects) and the
# paper profile's (params.yaml: profiles.paper.sample; 27 test subjects per class).
POINTS = ({"per_subject": 1, "per_class": 6, "n_counterfactual": 2}, {"per_subject": 3, "per_class": 18, "n_counterfactual": 6})
# The probe's set is its own: training subjects whose eps_theta is probed (params.yaml: probe.n_subjects, 64). At
# 256 x 256 on a CPU its forward passes take minutes per subject and model, so it runs at 2 and 6 subjects.
PROBE_POINTS = (2, 6)
SYNTHESIZE_RECORD = "synthesize.json"
N_TEST = 9                              # test subjects of the scratch cohort (3 per class)
GANS = ("cgan", "stackgan", "attngan")   # the cohort's measurement, kept in --workdir for --resume


def set_images(sample: dict, n_test: int) -> int:
    """Generated images of one model's test, augment and e4-sweep sets (augment counted in full: an upper bound)."""
    return sample["per_subject"] * n_test + 3 * sample["per_class"] + 3 * sample["n_counterfactual"]


def scratch_repo(work: Path, subjects: int) -> Path:
    repo = work / "repo"
    repo.mkdir(parents=True)
    for item in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(ROOT / item, repo / item)
    for folder in ("pipelines", "src", "gx"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__", "uncommitted"))
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["profile"] = "paper"
    paper = params["profiles"]["paper"]
    paper["synthesize"].update({"n_subjects": subjects, "n_background_snps": 1500})
    paper["split"]["test_per_class"] = 3
    paper["validate_genotypes"]["min_per_class"] = 3
    paper["sample"] = {**POINTS[0], "guidance_sweep": [1.0, 2.0], "guidance_models": ["g2i_l_att"],
                       "genotype_guidance_sweep": [1.0, 3.0]}
    handful = {"max_steps": 2, "batch_size": 2, "checkpoint_every": 2, "warmup_steps": 1}
    for loop in ("autoencoder", "diffusion", "gan"):
        paper["training"][loop].update(handful)
    for gan in ("cgan", "stackgan", "attngan"):
        paper["training"]["gan"][gan]["max_steps"] = 2
    paper["model"]["gan"]["attngan"]["damsm"].update({"pretrain_steps": 2, "batch_size": 2})
    params["sampling"].update({"num_inference_steps": 2, "batch_size": 8})
    params["evaluate"].update({"max_pairs": 20, "kid_subset_size": 4})
    params["classify"].update({"seeds": [0]})
    params["classify"]["classifier"].update({"epochs": 1, "batch_size": 4, "min_steps": 2})
    params["probe"]["n_subjects"] = PROBE_POINTS[0]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return repo


def environment(repo: Path) -> dict:
    """The venv first on PATH, the scratch repo's own copy of the code first on the import path (the venv's
    editable install points at the checkout, which may change during a half-hour run), the scratch repo's own
    MLflow store, no analytics."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(repo / "src"), os.environ.get("PYTHONPATH")])),
            "MLFLOW_TRACKING_URI": f"sqlite:///{repo}/mlflow.db", "MLFLOW_DISABLE_TELEMETRY": "true"}


def sh(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(list(args), cwd=repo, capture_output=True, text=True, env=environment(repo))
    if check and result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def measured(repo: Path, *args: str) -> tuple[float, float]:
    """Wall seconds and peak resident memory (GiB) of a command and its children."""
    start = time.perf_counter()
    process = subprocess.Popen(list(args), cwd=repo, env=environment(repo), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = process.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed (exit {process.returncode}):\n{output[-4000:]}")
    return time.perf_counter() - start, usage.ru_maxrss / 2**20


ORDER = ("import json, networkx as nx; from dvc.repo import Repo; graph = Repo('.').index.graph; "
         "print(json.dumps([s.addressing for s in reversed(list(nx.topological_sort(graph)))]))")


def run_stages(repo: Path, record: Path) -> dict[str, dict]:
    """Every pipeline stage, dependencies first, that `dvc status` finds out of date when its turn comes; each
    measurement is also kept in `record` (JSON), which a --resume reads back, so an interrupted run loses none."""
    out = json.loads(record.read_text()) if record.is_file() else {}
    for stage in json.loads(sh(repo, sys.executable, "-c", ORDER).stdout):
        if stage.endswith(".dvc") or sh(repo, "dvc", "status", "--json", stage).stdout.strip() in ("", "{}"):
            continue
        wall, peak = measured(repo, "dvc", "repro", "--single-item", stage)
        out[stage] = {"wall_s": round(wall, 1), "peak_gib": round(peak, 2)}
        print(f"  {stage:24s} {wall:7.1f} s  {peak:6.2f} GiB", flush=True)
        record.write_text(json.dumps(out, indent=1))
    return out


def serve_one_request(repo: Path) -> dict:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = open(repo / "serve.log", "w")
    server = subprocess.Popen(["mlflow", "models", "serve", "-m", "models:/g2i@champion", "--env-manager", "local",
                               "-h", "127.0.0.1", "-p", str(port)], cwd=repo, stdout=log, stderr=subprocess.STDOUT,
                              env={**environment(repo), "UVICORN_LOOP": "g2i.serving.event_loop:event_loop"})  # as make serve
    try:
        deadline = time.time() + 300
        while True:
            if server.poll() is not None or time.time() > deadline:
                raise SystemExit(f"mlflow models serve did not come up:\n{(repo / 'serve.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                time.sleep(1)
        # the model's own SNP columns (a small cohort's QC keeps another panel subset than the README example's)
        snps = json.loads((repo / "models" / "g2i_l_att" / "model_index.json").read_text())["snps"]
        body = {"dataframe_split": {"columns": [*snps, "diagnosis", "seed", "num_inference_steps"],
                                    "data": [[2.0 if snp == "APOE4" else 0.0 for snp in snps] + ["AD", 0, 2]]}}
        start = time.perf_counter()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise SystemExit(f"the served model answered HTTP {exc.code}: {exc.read().decode()[-2000:]}") from exc
        seconds = time.perf_counter() - start
        row = answer["predictions"][0]
        return {"status": 200, "height": row["height"], "width": row["width"], "seconds": round(seconds, 2)}
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def extrapolate(first: dict, second: dict, sizes: dict[str, tuple[float, float, float]]) -> dict:
    """Peak memory at the full set size, per stage, from a line through two measured points; `sizes` maps a
    stage (or its kind: sample, probe, ...) to (x1, x2, x_full) in its own unit."""
    out = {}
    for stage in sorted(set(first) & set(second)):
        if stage.split("@")[0] not in SCALED:
            continue
        x1, x2, x_full = sizes[stage] if stage in sizes else sizes[stage.split("@")[0]]
        m1, m2 = first[stage]["peak_gib"], second[stage]["peak_gib"]
        slope = (m2 - m1) / (x2 - x1)
        out[stage] = {"points": [x1, x2], "full": x_full, "peak_gib_points": [m1, m2],
                      "gib_per_1000": round(1000 * slope, 3),
                      # memory that does not grow: the larger measurement; else the line (also below x1: a
                      # sample stage whose batch at the paper's size is smaller than the measured calls)
                      "peak_gib_full": round(max(m1, m2) if slope <= 0 else m1 + slope * (x_full - x1), 2)}
    return out


def largest_call(sample: dict, n_test: int) -> int:
    """Images in the largest single generation call of one model (test set, augment set: an upper bound)."""
    return max(sample["per_subject"] * n_test, 3 * sample["per_class"], sample["n_counterfactual"])


def set_sizes(n_test: int) -> dict[str, tuple[float, float, float]]:
    """(x at point 1, x at point 2, x at the paper profile's full sizes) per stage kind, each in the unit its memory
    grows with: a sample stage holds one generation batch, so the largest call capped at the batch (GANs:
    sample.gan_batch_pixels / 256^2; diffusion: sampling.batch_size); evaluate and classify hold every image of a
    model; the probe, its training subjects."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    paper = params["profiles"]["paper"]

    def section(name: str) -> dict:
        return {**params[name], **paper.get(name, {})}

    full_test = 3 * paper["split"]["test_per_class"]
    calls = [largest_call(p, n_test) for p in POINTS]
    full_call = largest_call(section("sample"), full_test)
    gan_batch = max(1, int(section("sample")["gan_batch_pixels"]) // 256**2)
    return {"sample_gan": (*calls, min(full_call, gan_batch)),
            "sample": (*calls, min(full_call, int(section("sampling")["batch_size"]))),
            "evaluate": (*(set_images(p, n_test) for p in POINTS), set_images(section("sample"), full_test)),
            "classify": (*(set_images(p, n_test) for p in POINTS), set_images(section("sample"), full_test)),
            "probe": (*PROBE_POINTS, int(section("probe")["n_subjects"]))}


def size_kind(stage: str) -> str:
    kind, _, item = stage.partition("@")
    return "sample_gan" if kind == "sample" and item in GANS else kind


def write_report(result: dict, out: Path) -> None:
    """paper_e2e.json and paper_e2e.md from a run's measurements (the extrapolation is recomputed here)."""
    sizes = set_sizes(result.get("n_test", N_TEST))
    result = {**result, "sizes": sizes,
              "extrapolated": extrapolate(result["stages"], result["second_point"],
                                          {stage: sizes[size_kind(stage)] for stage in result["second_point"]
                                           if size_kind(stage) in sizes})}
    served = result["served"]
    out.mkdir(parents=True, exist_ok=True)
    (out / "paper_e2e.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# The paper profile end to end on CPU", "",
             f"`python benchmarks/paper_e2e.py --out {out}`: {result['subjects']} synthetic subjects on the 1 mm grid, "
             f"256 x 256 slices, the paper profile's networks with 2 training steps each; {result['machine']}; "
             f"{result['wall_seconds'] / 60:.1f} min in all (the measured steps: every stage at both set sizes, "
             "the cohort, register and serving). Peak memory: the largest resident set of dvc and the stage process "
             "(wait4).", "",
             "| stage | wall s | peak GiB |", "|---|---|---|"]
    lines += [f"| {name} | {row['wall_s']} | {row['peak_gib']} |" for name, row in result["stages"].items()]
    lines += ["", "Stages whose memory grows with the generated sets, measured at two sizes, with a straight line "
              "through the two points to the paper profile's size, each along the size it grows with: a sample "
              "stage with its largest generation call up to one batch (GANs: `sample.gan_batch_pixels`, 16 slices "
              "at 256 x 256; diffusion: `sampling.batch_size`); evaluate and classify with all of a model's "
              "images (49 per test subject x 81, 500 per class, 128 e4-sweep subjects); the probe with its "
              "training subjects. An extrapolation, not a measurement.", "",
              "| stage | sizes measured -> paper | peak GiB (two points) | GiB per 1000 | extrapolated peak GiB |",
              "|---|---|---|---|---|"]
    lines += [f"| {name} | {row['points'][0]}, {row['points'][1]} -> {row['full']} | {row['peak_gib_points'][0]}, "
              f"{row['peak_gib_points'][1]} | {row['gib_per_1000']} | {row['peak_gib_full']} |"
              for name, row in result["extrapolated"].items()]
    lines += ["", f"`g2i register` then `mlflow models serve`: one request (a row over the model's SNP columns, APOE4 = 2, AD, 2 steps) answered "
              f"with HTTP {served['status']}, a {served['height']} x {served['width']} image, in {served['seconds']} s."]
    (out / "paper_e2e.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'paper_e2e.md'} ({result['wall_seconds'] / 60:.1f} min)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=36, help="1 mm synthetic subjects (default: 36)")
    parser.add_argument("--out", type=Path, default=Path("reports/paper_e2e"), help="paper_e2e.json and .md go here")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--resume", action="store_true", help="reuse --workdir's cohort and finished stages")
    parser.add_argument("--render", type=Path, default=None,
                        help="only rewrite --out's report from this paper_e2e.json (e.g. after a params change)")
    args = parser.parse_args()
    if args.render:
        write_report(json.loads(args.render.read_text()), args.out)
        return 0
    work = args.workdir or Path(tempfile.mkdtemp(prefix="g2i-paper-e2e-"))
    stages = {}
    if args.resume and (work / "repo" / "data" / "raw.dvc").is_file():
        repo = work / "repo"        # its cohort and finished stages are kept; synthesize is not timed again
        if (work / SYNTHESIZE_RECORD).is_file():
            stages["synthesize"] = json.loads((work / SYNTHESIZE_RECORD).read_text())
    else:
        repo = scratch_repo(work, args.subjects)
        sh(repo, "git", "init", "-q")
        sh(repo, "dvc", "init", "-q")
        sh(repo, "dvc", "config", "core.analytics", "false")
        wall, peak = measured(repo, sys.executable, "pipelines/synthesize.py", "--out", "data/raw", "--quiet")
        print(f"  {'synthesize':24s} {wall:7.1f} s  {peak:6.2f} GiB", flush=True)
        sh(repo, "dvc", "add", "data/raw", "-q")
        stages["synthesize"] = {"wall_s": round(wall, 1), "peak_gib": round(peak, 2)}
        (work / SYNTHESIZE_RECORD).write_text(json.dumps(stages["synthesize"]))
    print(f"paper profile end to end in {repo} ({describe()})", flush=True)
    stages.update(run_stages(repo, work / "measured_first.json"))
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["profiles"]["paper"]["sample"].update(POINTS[1])
    params["probe"]["n_subjects"] = PROBE_POINTS[1]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    print("second set size:", POINTS[1], "probe subjects:", PROBE_POINTS[1], flush=True)
    second = run_stages(repo, work / "measured_second.json")
    start = time.perf_counter()
    sh(repo, "g2i", "register", "--models", "g2i_l_att")
    served = serve_one_request(repo)
    served["register_and_serve_s"] = round(time.perf_counter() - start, 1)
    result = {"machine": describe(), "subjects": args.subjects, "slice_size": 256, "n_test": N_TEST, "stages": stages,
              "second_point": second, "served": served,
              # the sum of the measured steps, the same whether or not a --resume split the run
              "wall_seconds": round(sum(row["wall_s"] for row in [*stages.values(), *second.values()])
                                    + served["register_and_serve_s"], 1)}
    write_report(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
