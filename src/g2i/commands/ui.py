"""g2i ui: the MLflow UI on the project's store, with the links that open on the model runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_common_arguments, resolved_params

NAME = "ui"
HELP = "start the MLflow UI on the project's store and print the links to the runs, the model comparison and the registry"
DESCRIPTION = ("Start `mlflow ui --app-name g2i` on the project's tracking store (MLFLOW_TRACKING_URI, else mlflow.db "
               "at the project root) and print four links: the experiment, the runs table, the side-by-side "
               "comparison of the newest model-<variant> run of every model (the compare stage's: Table 1, fidelity "
               "and Table 2 numbers together) and the registered model with its 'champion' alias. The g2i app is "
               "MLflow's server whose UI opens experiments on their runs (model training) in a browser that has not "
               "chosen a view; plain `mlflow ui` in 3.17 opens them as GenAI apps. With --check DIR it instead opens "
               "the four pages in headless Chromium with a fresh profile, checks that the experiment opens on its "
               "runs and that the pages show every model's FD_cnn and e4 fidelity ratio and the champion, saves a "
               "screenshot of each in DIR and stops (exit 2 on a problem).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default: 5000)")
    parser.add_argument("--check", type=Path, default=None, metavar="DIR",
                        help="check the pages in headless Chromium and save experiment.png, runs.png, compare.png, registry.png in DIR")


def run(args: argparse.Namespace) -> None:
    import tempfile
    import time

    from ..config import repo_root
    from ..errors import G2IError
    from ..mlflow_ui import browser, check_pages, expected_metrics, model_runs, serve, ui_links
    from ..tracking import EXPERIMENT, tracking_uri

    params = resolved_params(args)
    uri = tracking_uri(repo_root())
    experiment_id, runs = model_runs(uri, EXPERIMENT)
    if not runs:
        raise G2IError(f"{uri}: no model runs yet; run the pipeline (dvc repro) so its compare stage logs them")
    with serve(uri, args.port) as base:
        links = ui_links(base, experiment_id, runs, params["register"]["model_name"])
        if args.check is None:
            print(f"MLflow UI on {base} (Ctrl-C stops it)")
            for page, link in links.items():
                print(f"  {page:9s} {link}")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return
        with tempfile.TemporaryDirectory() as profile, browser(Path(profile)) as driver:
            problems, _ = check_pages(driver, links, expected_metrics(uri, runs), args.check)
    if problems:
        raise G2IError("the MLflow UI does not show what it should:\n  " + "\n  ".join(problems))
    print(f"ui: experiment, runs, compare ({len(runs)} models) and registry pages checked in Chromium; "
          f"screenshots in {args.check}")
