"""Served throughput and latency of the champion against the same pipeline's offline batch throughput.

Start the server first (after `make demo` and `make register`), as `make serve` does:
    UVICORN_LOOP=g2i.serving.event_loop:event_loop mlflow models serve -m models:/g2i@champion --env-manager local -h 127.0.0.1 -p 5001
then:
    python benchmarks/serving_latency.py --port 5001 --clients 1 4 8 --requests 5

For each client count, every client sends `--requests` requests of `--rows` rows, one after another, with
the served defaults (sampler, steps, guidance). The offline figure is the same pipeline (downloaded from
the registry) generating clients x rows images in one call, measured in the same run, so the ratio
served / offline is free of the machine's speed. Prints the machine with the numbers. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

from g2i.machine import cpu_model, describe


def serve_load(port: int, columns: list[str], row: list, clients: int, requests: int, rows: int) -> dict:
    latencies: list[float] = []
    statuses: list[int] = []

    def client(k: int) -> None:
        for i in range(requests):
            data = [[*row, ("CN", "MCI", "AD")[(k + j) % 3], 1000 * k + 10 * i + j] for j in range(rows)]
            body = json.dumps({"dataframe_split": {"columns": [*columns, "diagnosis", "seed"], "data": data}}).encode()
            req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
            start = time.perf_counter()
            with urllib.request.urlopen(req, timeout=600) as response:
                statuses.append(response.status)
                response.read()
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return {"clients": clients, "requests": len(latencies), "images_per_s": len(latencies) * rows / wall,
            "p50_s": float(np.percentile(latencies, 50)), "p95_s": float(np.percentile(latencies, 95)),
            "statuses": sorted(set(statuses))}


def offline_throughput(model_uri: str, table, n: int, repeats: int = 2) -> float:
    """Images/s of the served pipeline in one batch of n rows, at the served model's own settings."""
    import mlflow
    import yaml

    from g2i.generation.diffusion import G2IPipeline

    root = Path(mlflow.artifacts.download_artifacts(model_uri))
    config = yaml.safe_load((root / "MLmodel").read_text())["flavors"]["python_function"].get("config") or {}
    pipe = G2IPipeline.from_pretrained(next(root.rglob("model_index.json")).parent)
    rows = table.iloc[[i % len(table) for i in range(n)]]
    kwargs = dict(diagnosis=[("CN", "MCI", "AD")[i % 3] for i in range(n)], sampler=config["sampler"],
                  num_inference_steps=int(config["num_inference_steps"]), guidance_scale=config["guidance_scale"],
                  genotype_guidance_scale=config.get("genotype_guidance_scale"), seed=list(range(n)),
                  batch_size=n, output_type="pil")
    pipe(genotypes=rows.iloc[:1], **{**kwargs, "diagnosis": kwargs["diagnosis"][:1], "seed": [0], "batch_size": 1})
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        pipe(genotypes=rows, **kwargs)
        best = min(best, time.perf_counter() - start)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--requests", type=int, default=5, help="per client")
    parser.add_argument("--rows", type=int, default=1, help="rows per request")
    parser.add_argument("--model", default="models:/g2i@champion", help="the served model, for the offline figure")
    parser.add_argument("--genotypes", default="data/processed/genotypes.csv",
                        help="a genotype table for the SNP columns (one row is sent; codes only, no PTID)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    import pandas as pd

    table = pd.read_csv(args.genotypes)
    snps = [c for c in table.columns if c not in ("PTID", "diagnosis")]
    row = [None if pd.isna(v) else float(v) for v in table.iloc[0][snps]]
    serve_load(args.port, snps, row, 1, 1, args.rows)  # warm
    served = [serve_load(args.port, snps, row, c, args.requests, args.rows) for c in args.clients]
    offline = offline_throughput(args.model, table[snps], max(args.clients) * args.rows)
    print(f"machine: {describe()}")
    print(f"offline, one batch of {max(args.clients) * args.rows}: {offline:.2f} images/s")
    for s in served:
        print(f"{s['clients']} client(s) x {args.requests} requests x {args.rows} row(s): "
              f"{s['images_per_s']:.2f} images/s = {s['images_per_s'] / offline:.0%} of offline; "
              f"p50 {s['p50_s']:.2f} s, p95 {s['p95_s']:.2f} s, statuses {s['statuses']}")
    if args.json:
        args.json.write_text(json.dumps({"machine": cpu_model(), "cores": os.cpu_count(), "offline_images_per_s": offline,
                                         "served": served}, indent=2) + "\n")


if __name__ == "__main__":
    main()
