"""Shared fixtures: tiny synthetic cohorts generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from g2i.config import load_params, repo_root, resolve
from g2i.synthetic.generate import generate_cohort
from g2i.synthetic.spec import CohortSpec

ROOT = repo_root(Path(__file__).parent)


def free_port() -> int:
    """A free TCP port on loopback, for the servers the tests start."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_benchmark(name: str):
    """benchmarks/<name>.py as a module (the folder is no package): its functions, without running main()."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def stage_in_process(monkeypatch, capsys):
    """Run a pipeline step as its script does (`pipelines/<step>.py ARGS` is `g2i <step> ARGS` through
    g2i.cli.run_step), but in this process, in `cwd` with `env` added: its exit status, stdout and stderr as a
    CompletedProcess. A fresh process costs 2-5 s of imports (torch, MLflow) that the worker has paid already;
    the scripts themselves run as processes in the end-to-end and real-data tests, and in one test of each
    bad-input file."""
    import subprocess

    from g2i.cli import run_step

    def run(step: str, *args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
        with monkeypatch.context() as scoped:
            scoped.chdir(cwd)
            for key, value in (env or {}).items():
                scoped.setenv(key, value)
            capsys.readouterr()
            code = run_step(step, list(args))
            out, err = capsys.readouterr()
        return subprocess.CompletedProcess([step, *args], code, out, err)

    return run


def write_processed(folder: Path, images, diagnoses, splits, snps, ptids=None, z_mm: float = 16.0):
    """A tiny processed-data folder as the data stages lay it out; returns its ProcessedPaths.

    slices/slices.npy: `images` as float16 (N x H x W); slices/index.csv: row, PTID, diagnosis, z_mm;
    genotypes.csv: PTID, diagnosis, then the columns of `snps` in their order (APOE4 among them; a scalar
    fills its column); split.csv: PTID, split. `ptids` default to 002_S_0000, 002_S_0001, ... The caller
    draws `images` and `snps` from its own generator, in its own order, so each test keeps its data.
    """
    import numpy as np
    import pandas as pd

    from g2i.data.dataset import ProcessedPaths

    folder = Path(folder)
    n = len(images)
    ptids = [f"002_S_{i:04d}" for i in range(n)] if ptids is None else list(ptids)
    (folder / "slices").mkdir(parents=True)
    np.save(folder / "slices" / "slices.npy", np.asarray(images).astype(np.float16))
    pd.DataFrame({"row": range(n), "PTID": ptids, "diagnosis": diagnoses, "z_mm": z_mm}).to_csv(
        folder / "slices" / "index.csv", index=False)
    pd.DataFrame({"PTID": ptids, "diagnosis": diagnoses, **snps}).to_csv(folder / "genotypes.csv", index=False)
    pd.DataFrame({"PTID": ptids, "split": splits}).to_csv(folder / "split.csv", index=False)
    return ProcessedPaths(folder / "slices", folder / "genotypes.csv", folder / "split.csv")

# The end-to-end file first. `make test` runs one pytest-xdist worker per core, each taking whole files
# (--dist loadfile: a file's module fixtures are built once); in collection order the end-to-end
# `dvc repro` (~5 of the suite's ~12 CPU-minutes) would start late and run alone at the end. The rest
# follow in xdist's own order, most tests first. The Makefile passes --no-loadscope-reorder: without it
# xdist re-sorts the files by test count and the end-to-end file (7 tests) started ~20th.
# (Tried and dropped: one torch thread per worker; the end-to-end file, the long pole, then runs on one
# thread while the other core idles at the end.)
FIRST = ("test_pipeline_e2e.py",)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(FIRST)}
    per_file: dict[Path, int] = {}
    for item in items:
        per_file[item.path] = per_file.get(item.path, 0) + 1
    # stable: a file's tests keep their order
    items.sort(key=lambda item: (rank.get(item.path.name, len(rank)), -per_file[item.path]))


@pytest.fixture(scope="session", autouse=True)
def own_tracking_store(tmp_path_factory):
    """Stages that a test runs log to a store of the test session's, never to the checkout's mlflow.db, which
    the Makefile exports as MLFLOW_TRACKING_URI (the data-stage tests added their runs to the user's store).
    A test that needs another store sets its own."""
    import os

    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    yield os.environ["MLFLOW_TRACKING_URI"]
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


# Coarse grids keep generation to seconds; enough subjects per phase for PLINK's HWE test to bite.
TINY = {"n_subjects": 60, "voxel_mm": 3.0, "z_range_mm": [-30, 36], "n_background_snps": 400}


def tiny_spec(**overrides) -> CohortSpec:
    resolved = resolve(load_params(ROOT / "params.yaml"), "demo")
    return CohortSpec.from_params(resolved, **{**TINY, **overrides})


# Complete params.yaml sections for tests that set a few keys: the configs have no code defaults (params.yaml
# states every knob), so a test starts from the demo profile's section and overrides what it is about.
def demo_section(*keys: str) -> dict:
    """A copy of the demo profile's resolved section params[keys[0]][keys[1]]..., plain YAML types."""
    section = resolve(load_params(ROOT / "params.yaml"), "demo")
    for key in keys:
        section = section[key]
    return dict(section)


def train_section(**overrides) -> dict:
    """The demo's training.diffusion section with `overrides`."""
    return {**demo_section("training", "diffusion"), **overrides}


def train_config(**overrides):
    from g2i.training.trainer import TrainConfig

    return TrainConfig.from_params(train_section(**overrides))


def classifier_section(**overrides) -> dict:
    """The demo's classify.classifier section with `overrides`."""
    return {**demo_section("classify", "classifier"), **overrides}


def classifier_config(**overrides):
    from g2i.evaluation.classifier import ClassifierConfig

    return ClassifierConfig.from_params(classifier_section(**overrides))


def sample_section(**overrides) -> dict:
    """The demo's sample section with `overrides`."""
    return {**demo_section("sample"), **overrides}


def sample_config(**overrides):
    from g2i.generation.sets import SampleConfig

    return SampleConfig.from_params(sample_section(**overrides))


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory, request) -> tuple[Path, dict]:
    """Generated once per test run: pytest-xdist workers share it (the first to arrive generates it under a
    lock in the run's common temp folder; ~25 s a worker otherwise)."""
    import fcntl
    import json

    from g2i.synthetic.generate import MANIFEST

    worker = getattr(request.config, "workerinput", None)
    if worker is None:   # not under xdist: a folder of this session's own
        out = tmp_path_factory.mktemp("cohort") / "raw"
        return out, generate_cohort(tiny_spec(), out, progress=False)
    shared = tmp_path_factory.getbasetemp().parent / f"tiny-cohort-{worker['testrunuid']}"
    shared.mkdir(exist_ok=True)
    out = shared / "raw"
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / MANIFEST).is_file():   # generate_cohort writes the folder atomically
            generate_cohort(tiny_spec(), out, progress=False)
    return out, json.loads((out / MANIFEST).read_text())


PHASE_PREFIXES = {"ADNI1": "genotypes/ADNI_cluster_01_forward_757LONI", "ADNIGO2": "genotypes/ADNI_GO_2_Forward_Bin"}


@pytest.fixture(scope="session")
def tiny_genotypes(tiny_cohort, tmp_path_factory):
    """genotype_qc + genotypes stages run on the tiny cohort: (work folder, QC report, outputs)."""
    from g2i.data.genotype_table import GenotypeInputs, build_genotype_table
    from g2i.genetics.qc import QcThresholds, run_genotype_qc

    raw, _ = tiny_cohort
    work = tmp_path_factory.mktemp("processed")
    filesets = {phase: raw / prefix for phase, prefix in PHASE_PREFIXES.items()}
    report = run_genotype_qc(filesets, work / "qc", work / "qc.json", work / "removed.tsv", QcThresholds())
    params = resolve(load_params(ROOT / "params.yaml"), "demo")
    inputs = GenotypeInputs(
        qc_dir=work / "qc", raw_filesets=filesets, adnimerge=raw / "ADNIMERGE.csv", apoeres=raw / "APOERES.csv",
        t1_patterns=[f"{params['data']['mri_dir']}/{p}" for p in params["data"]["t1_patterns"]],
        diagnosis_map=params["data"]["diagnosis_map"], root=raw)
    outputs = build_genotype_table(inputs, "infer_from_frequency", 0.4, 0.1, duplicate_snps="error")
    return work, report, outputs
