"""Latency of the served champion: p50 / p95 over concurrent clients on loopback.

Start the server first (after `make demo` and `g2i register`):
    mlflow models serve -m models:/g2i@champion --env-manager local -h 127.0.0.1 -p 5001
then:
    python benchmarks/serving_latency.py --port 5001 --clients 8 --requests 5

Each request asks for one slice with the served defaults (DDPM, serving.num_inference_steps). Prints the
machine with the numbers. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import threading
import time
import urllib.request

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=5, help="per client")
    parser.add_argument("--genotypes", default="data/processed/genotypes.csv",
                        help="a genotype table for the SNP columns (one row is used; codes only, no PTID sent)")
    args = parser.parse_args()
    import pandas as pd

    table = pd.read_csv(args.genotypes)
    snps = [c for c in table.columns if c not in ("PTID", "diagnosis")]
    row = {snp: (None if pd.isna(v) else float(v)) for snp, v in table.iloc[0][snps].items()}
    latencies: list[float] = []
    statuses: list[int] = []

    def client(k: int) -> None:
        for i in range(args.requests):
            body = json.dumps({"dataframe_split": {"columns": [*snps, "diagnosis", "seed"],
                                                   "data": [[*row.values(), "AD", k * 1000 + i]]}}).encode()
            req = urllib.request.Request(f"http://127.0.0.1:{args.port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
            start = time.perf_counter()
            with urllib.request.urlopen(req, timeout=600) as response:
                statuses.append(response.status)
                response.read()
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"{len(latencies)} requests from {args.clients} clients: p50 {np.percentile(latencies, 50):.2f} s, "
          f"p95 {np.percentile(latencies, 95):.2f} s, mean {statistics.mean(latencies):.2f} s, "
          f"{len(latencies) / wall:.2f} requests/s, statuses {sorted(set(statuses))}")


if __name__ == "__main__":
    main()
