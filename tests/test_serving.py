"""Registry promotion and the real MLflow scoring server on loopback, with a tiny G2IPipeline."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import free_port
from .test_g2i_pipeline import SNPS, tiny_pipeline

NAME = "g2i-test"
SERVING = {"max_rows": 4, "max_steps": 20, "max_guidance_scale": 10.0, "max_batch": 8, "batch_window_ms": 20,
           "num_inference_steps": 2, "guidance_scale": 1.0, "sampler": "ddpm"}


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    import mlflow

    root = tmp_path_factory.mktemp("registry")
    model_dir = root / "models" / "g2i_l_att"
    tiny_pipeline("g2i_l_att").save_pretrained(model_dir)
    uri = f"sqlite:///{root}/mlflow.db"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("g2i")
    yield root, model_dir, uri
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


def register(model_dir, evaluation):
    import mlflow

    from g2i.serving.registry import register_variant

    with mlflow.start_run():
        return register_variant(model_dir, "g2i_l_att", evaluation, NAME, SERVING, "fd_cnn", False, {"g2i.profile": "test"})


def aliases():
    import mlflow

    client = mlflow.MlflowClient()
    return {a: str(client.get_model_version_by_alias(NAME, a).version) for a in ("champion", "challenger")
            if _has_alias(client, a)}


def _has_alias(client, alias):
    try:
        client.get_model_version_by_alias(NAME, alias)
        return True
    except Exception:
        return False


def test_champion_moves_to_a_better_model_and_never_to_a_worse_or_unevaluated_one(registry, capsys):
    _, model_dir, _ = registry
    assert "champion" in register(model_dir, {"fd_cnn": 10.0, "psnr": 18.0})
    assert "Created version" not in capsys.readouterr().err   # MLflow's registration lines are dropped
    assert aliases() == {"champion": "1"}
    assert "does not beat" in register(model_dir, {"fd_cnn": 12.0})            # worse: stays
    assert aliases() == {"champion": "1"}
    assert "not promoted" in register(model_dir, None)                         # no evaluation
    assert "not promoted" in register(model_dir, {"fd_cnn": float("nan")})     # failed evaluation
    assert aliases() == {"champion": "1"}
    assert "now challenger" in register(model_dir, {"fd_cnn": 5.0})             # better: moves
    assert aliases() == {"champion": "5", "challenger": "1"}


def test_logged_model_carries_no_subject_ids_or_training_images(registry):
    import mlflow

    _, model_dir, _ = registry
    if not aliases():
        register(model_dir, {"fd_cnn": 10.0})
    path = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}@champion"))
    files = [p for p in path.rglob("*") if p.is_file()]
    assert any(p.name == "MLmodel" for p in files) and any(p.name == "pyfunc_model.py" for p in files)
    assert not [p for p in files if p.suffix in (".npy", ".npz", ".nii", ".gz", ".mnc", ".csv")]
    ptid = re.compile(rb"\d{3}_S_\d{4}")
    assert not [p for p in files if ptid.search(p.read_bytes())]
    requirements = next(p for p in files if p.name == "requirements.txt").read_text()
    assert re.search(r"^torch==\d", requirements, re.M) and re.search(r"^diffusers==\d", requirements, re.M)


def request(port: int, body: bytes, content_type: str = "application/json", path: str = "/invocations"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def rows(n: int = 1, **extra) -> list[dict]:
    return [{**{snp: float(i % 3) for snp in SNPS}, "diagnosis": ("CN", "MCI", "AD")[i % 3], "seed": i,
             "num_inference_steps": 2, **extra} for i in range(n)]


def split_json(records: list[dict]) -> bytes:
    columns = list(records[0])
    return json.dumps({"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in records]}}).encode()


def server_rss_kib(pid: int) -> int:
    """Resident memory of the server and its worker processes."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            total += int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{current}/status").read_text()).group(1))
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (OSError, AttributeError):
            continue
        pending += [int(c) for c in children]
    return total


@pytest.fixture(scope="module")
def server(registry):
    root, model_dir, uri = registry
    if not aliases():
        register(model_dir, {"fd_cnn": 10.0})
    port = free_port()
    # as `make serve` runs it: uvicorn's loop from g2i.serving.event_loop (request threads for a batch)
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "UVICORN_LOOP": "g2i.serving.event_loop:event_loop"}
    log = open(root / "server.log", "w")
    process = subprocess.Popen(["mlflow", "models", "serve", "-m", f"models:/{NAME}@champion", "--env-manager", "local",
                                "-h", "127.0.0.1", "-p", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 180
    while time.time() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited: {(root / 'server.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(1)
    else:
        pytest.fail("server did not come up in 180 s")
    yield port, process
    process.terminate()
    process.wait(timeout=30)
    log.close()


def decode(body: bytes) -> list[np.ndarray]:
    predictions = json.loads(body)["predictions"]
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(p["image_png_base64"])))) for p in predictions]


def test_server_returns_brain_slices_as_png_and_repeats_itself_for_a_seed(server):
    port, _ = server
    status, body = request(port, split_json(rows(3)))
    assert status == 200, body
    images = decode(body)
    predictions = json.loads(body)["predictions"]
    assert len(images) == 3 and all(im.shape == (16, 16) and im.dtype == np.uint8 for im in images)
    assert all(p["height"] == 16 and p["width"] == 16 for p in predictions)
    again = decode(request(port, split_json(rows(3)))[1])
    assert all(np.array_equal(a, b) for a, b in zip(images, again))
    assert not np.array_equal(images[0], decode(request(port, split_json(rows(1, seed=99)))[1])[0])
    header = ",".join(rows(1)[0])
    csv = header + "\n" + ",".join(str(v) for v in rows(1)[0].values()) + "\n"
    status, body = request(port, csv.encode(), "text/csv")
    # the same row and seed alone: the same noise; batch-dependent CPU kernels may flip a rounding (1 level)
    assert status == 200 and np.abs(decode(body)[0].astype(int) - images[0]).max() <= 1


@pytest.mark.parametrize("body", [
    split_json([{k: v for k, v in rows(1)[0].items() if k != "rs1"}]),      # a SNP column missing
    split_json(rows(1, rs2=3.0)),                                             # code outside 0/1/2
    split_json(rows(1, diagnosis="FTD")),                                     # unknown diagnosis
    split_json(rows(5)),                                                      # more rows than serving.max_rows
    split_json(rows(1, num_inference_steps=500)),                             # steps above serving.max_steps
    split_json(rows(1, guidance_scale=1e30)),                                 # guidance above its cap
    split_json(rows(1, guidance_scale=-1.0)),                                 # negative guidance
    split_json(rows(1, seed=-3)),                                             # negative seed
    split_json(rows(1, seed="abc")),                                          # not a number
    b'{"dataframe_split": {"columns": ["rs1"], "data": [[0]',                 # malformed JSON
])
def test_bad_requests_get_4xx_with_a_message_and_the_server_stays_up(server, body):
    port, process = server
    status, message = request(port, body)
    assert 400 <= status < 500 and len(message) > 0, (status, message[:300])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=10) as response:
        assert process.poll() is None and response.status == 200


def test_load_8_clients_x_20_requests_no_5xx_bounded_memory(server, registry):
    port, process = server
    request(port, split_json(rows(1)))  # warm
    before = server_rss_kib(process.pid)
    statuses, latencies = [], []

    def client(k: int) -> None:
        for i in range(20):
            start = time.perf_counter()
            status, _ = request(port, split_json(rows(1, seed=k * 100 + i)))
            latencies.append(time.perf_counter() - start)
            statuses.append(status)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = server_rss_kib(process.pid)
    assert len(statuses) == 160 and all(s == 200 for s in statuses), sorted(set(statuses))
    assert after - before < 512 * 1024, f"server memory grew by {(after - before) / 1024:.0f} MiB"
    # they ran on g2i.serving.event_loop's request pool: on asyncio's own, the model warns (test_event_loop)
    log = (registry[0] / "server.log").read_text()
    assert "asyncio's default pool" not in log and "Uvicorn running" in log, log[-2000:]
    print(f"latency p50 {np.percentile(latencies, 50) * 1e3:.0f} ms, p95 {np.percentile(latencies, 95) * 1e3:.0f} ms")


def test_served_model_generates_at_the_guidance_it_was_evaluated_at(tmp_path):
    """`make register` bakes the scales `sample` chose (summary.json) into the served model's config."""
    from types import SimpleNamespace

    import pandas as pd

    from g2i.generation.diffusion import G2IPipeline
    from g2i.serving.pyfunc_model import G2IPyfunc
    from g2i.serving.registry import served_settings

    model_dir = tmp_path / "g2i_l_att"
    tiny_pipeline("g2i_l_att").save_pretrained(model_dir)
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"generation": {"guidance_scale": 1.0, "genotype_guidance_scale": 5.0}}))
    settings = served_settings(SERVING, summary)
    assert settings == {**SERVING, "genotype_guidance_scale": 5.0}
    assert served_settings(SERVING, tmp_path / "absent.json") == SERVING

    def served(config, **request):
        model = G2IPyfunc()
        model.load_context(SimpleNamespace(artifacts={"pipeline": str(model_dir)}, model_config=config))
        row = {**{snp: 1.0 for snp in SNPS}, "diagnosis": "AD", "seed": 3, "num_inference_steps": 2, **request}
        png = model.predict(None, pd.DataFrame([row]))["image_png_base64"][0]
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(png))))

    pipe = G2IPipeline.from_pretrained(model_dir)
    expected = pipe(genotypes=[[1, 1, 1]], diagnosis=["AD"], num_inference_steps=2, guidance_scale=1.0,
                    genotype_guidance_scale=5.0, seed=3, output_type="pil").pil[0]
    assert np.array_equal(served(settings), np.asarray(expected))
    assert not np.array_equal(served(settings), served(SERVING))
    assert np.array_equal(served(settings, guidance_scale=2.0), served(SERVING, guidance_scale=2.0))  # one scale


def loaded(model_dir, config):
    from types import SimpleNamespace

    from g2i.serving.pyfunc_model import G2IPyfunc

    model = G2IPyfunc()
    model.load_context(SimpleNamespace(artifacts={"pipeline": str(model_dir)}, model_config=config))
    return model


def png(frame) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(p)))).astype(int) for p in frame["image_png_base64"]]


def test_concurrent_requests_share_batches_and_each_row_keeps_its_own_image(tmp_path):
    import pandas as pd

    model_dir = tmp_path / "g2i_l_att"
    tiny_pipeline("g2i_l_att").save_pretrained(model_dir)
    model = loaded(model_dir, {**SERVING, "batch_window_ms": 2000})   # a full batch (8 rows) does not wait
    requests = [rows(2, seed=0)] + [[{**r, "seed": 10 * k + i} for i, r in enumerate(rows(2))] for k in range(1, 4)]
    alone = [png(model.predict(None, pd.DataFrame(req))) for req in requests]
    calls_before = model.batcher.batches
    results = [None] * len(requests)
    barrier = threading.Barrier(len(requests))

    def client(k):
        barrier.wait()
        results[k] = png(model.predict(None, pd.DataFrame(requests[k])))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    # 4 requests x 2 rows: the burst's first request may run alone (no client was about before it), the rest
    # share one call
    assert model.batcher.batches - calls_before <= 2
    for together, single in zip(results, alone):
        assert all(np.abs(a - b).max() <= 1 for a, b in zip(together, single))
    assert np.abs(alone[1][0] - alone[1][1]).max() > 1                 # rows differ: their seeds do


def test_a_request_mixing_settings_gets_each_row_at_its_own_settings(tmp_path):
    import pandas as pd

    model_dir = tmp_path / "g2i_l_att"
    tiny_pipeline("g2i_l_att").save_pretrained(model_dir)
    model = loaded(model_dir, SERVING)
    mixed = rows(1, seed=5) + rows(1, seed=5, guidance_scale=3.0)
    both = png(model.predict(None, pd.DataFrame(mixed)))
    assert np.abs(both[0] - png(model.predict(None, pd.DataFrame(mixed[:1])))[0]).max() <= 1
    assert np.abs(both[1] - png(model.predict(None, pd.DataFrame(mixed[1:])))[0]).max() <= 1
    assert np.abs(both[0] - both[1]).max() > 1


def test_registration_refuses_an_incomplete_or_absurd_serving_section(tmp_path):
    from g2i.errors import G2IError
    from g2i.serving.registry import served_settings

    for broken, words in (({k: v for k, v in SERVING.items() if k != "max_batch"}, "missing max_batch"),
                          ({**SERVING, "max_batch": 0}, "max_batch must be a positive integer"),
                          ({**SERVING, "max_guidance_scale": float("inf")}, "max_guidance_scale must be a finite"),
                          ({**SERVING, "num_inference_steps": 50}, "exceeds max_steps")):
        with pytest.raises(G2IError, match=words):
            served_settings(broken, tmp_path / "absent.json")


def test_the_served_model_is_typed_so_mlflow_asks_nothing():
    """A predict without type hints makes MLflow warn at every load (and `make register` print pages)."""
    import importlib
    import warnings

    import g2i.serving.pyfunc_model as module

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        importlib.reload(module)
    assert not [w for w in caught if "type hint" in str(w.message).lower()], [str(w.message) for w in caught]


@pytest.mark.parametrize("field, value, words", [
    ("num_inference_steps", 2.5, "whole number"),          # (the server's JSON parser casts to the signature's
    ("seed", 1.5, "whole number"),                          #  long first; called directly, the model checks)
    ("guidance_scale", float("inf"), "between 0 and 10"),
    ("guidance_scale", 11.0, "between 0 and 10"),
    ("seed", -1, "between 0"),
    ("num_inference_steps", "ten", "expected a number"),
])
def test_every_numeric_field_is_bounded_in_the_model_itself(tmp_path, field, value, words):
    import pandas as pd
    from mlflow.exceptions import MlflowException

    model_dir = tmp_path / "g2i_l_att"
    tiny_pipeline("g2i_l_att").save_pretrained(model_dir)
    model = loaded(model_dir, SERVING)
    with pytest.raises(MlflowException, match=f"{field}: .*{words}"):
        model.predict(None, pd.DataFrame(rows(1, **{field: value})))
    assert len(model.predict(None, pd.DataFrame(rows(1, guidance_scale=float("nan"))))) == 1   # NaN = not given
