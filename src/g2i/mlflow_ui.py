"""The MLflow UI as a researcher opens it: the project's store served by `mlflow ui`, links that open on the
model runs, and a real-browser check of those pages (headless Chromium driven by selenium).

Why links and not just the experiment: MLflow 3.17's UI takes an experiment's kind from its own
GenAI / Model-training switch (the `workflowType` URL parameter, default GenAI), not from the
`mlflow.experimentKind` tag, so a plain link opens on traces and token usage. Every link here says
`workflowType=machine_learning`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

from .errors import G2IError

WORKFLOW = "workflowType=machine_learning"
# The numbers the compare page must show for every model: Table 1's FD_cnn and the e4 fidelity ratio.
HEADLINE = ("fd_cnn", "e4_to_ceiling")
# "experiment" first: the bare experiment address, in a browser that has never chosen a view
PAGES = ("experiment", "runs", "compare", "registry")
APP_NAME = "g2i"   # g2i.mlflow_app: MLflow's server, its UI opening experiments on model training
# Chromium on a machine with no network: no background fetches, no first-run UI, no sandbox as root.
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=2400,1300")


def model_runs(tracking_uri: str, experiment: str) -> tuple[str, dict[str, str]]:
    """The experiment's id and the newest `model-<variant>` run (the compare stage's) of each variant."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise G2IError(f"{tracking_uri}: no experiment '{experiment}'; run the pipeline first (dvc repro)")
    newest: dict[str, str] = {}
    for run in client.search_runs([found.experiment_id], "tags.`g2i.stage` = 'model'",
                                  order_by=["attributes.start_time DESC"], max_results=1000):
        newest.setdefault(run.data.tags.get("g2i.variant", run.info.run_name), run.info.run_id)
    return found.experiment_id, newest


def ui_links(base_url: str, experiment_id: str, run_ids: Mapping[str, str], model_name: str) -> dict[str, str]:
    """Links to the experiment as it opens by default (g2i.mlflow_app: on its runs), the runs table, the
    side-by-side comparison of the model runs and the registered model."""
    quote = lambda value: urllib.parse.quote(json.dumps(value))   # noqa: E731 (the UI reads JSON lists)
    return {"experiment": f"{base_url}/#/experiments/{experiment_id}",   # no view asked: the server's default
            "runs": f"{base_url}/#/experiments/{experiment_id}/runs?{WORKFLOW}",
            "compare": f"{base_url}/#/compare-runs?runs={quote(list(run_ids.values()))}"
                       f"&experiments={quote([experiment_id])}&{WORKFLOW}",
            "registry": f"{base_url}/#/models/{model_name}?{WORKFLOW}"}


@contextmanager
def serve(tracking_uri: str, port: int, host: str = "127.0.0.1", timeout_s: float = 120.0) -> Iterator[str]:
    """`mlflow ui --app-name g2i` on the store, one worker; yields its base URL once /health answers, stops it after."""
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow_bin) if mlflow_bin.exists() else "mlflow", "ui", "--backend-store-uri", tracking_uri,
               "--host", host, "--port", str(port), "--workers", "1", "--app-name", APP_NAME]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    base = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise G2IError(f"mlflow ui stopped at start (exit {process.returncode}):\n"
                               f"{(process.stdout.read() if process.stdout else '')[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise G2IError(f"mlflow ui did not answer on {base} within {timeout_s:.0f} s")
            time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def find_browser() -> tuple[str, str]:
    """Paths of Chromium and its driver (Debian's packages chromium and chromium-driver)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        raise G2IError("no Chromium and ChromeDriver on PATH: install Debian's chromium and chromium-driver "
                       "(make browser does it as root)")
    return chromium, driver


@contextmanager
def browser(profile_dir: Path) -> Iterator:
    """A headless Chromium under selenium; selenium's own driver download is switched off."""
    os.environ["SE_OFFLINE"] = "true"
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise G2IError("selenium is not installed: pip install -e '.[dev]'") from None
    chromium, driver_path = find_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def _page_text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def _wait_for(driver, words: list[str], timeout_s: float) -> list[str]:
    """Wait until every word is on the page; the ones still missing at the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = _page_text(driver)
        missing = [word for word in words if word not in text]
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(0.25)


# The compare page's metric table is a react-virtualized grid: only the rows and columns in view are in the
# page. Scroll it through and collect every cell by position (grid 0: metric names, grid 1: values).
_CELLS = """
return [...document.querySelectorAll('.ReactVirtualized__Grid')].map((grid, i) =>
  [...grid.querySelectorAll('div[style]')].filter(c => c.style.position === 'absolute' && c.style.top)
    .map(c => [i, parseFloat(c.style.top), parseFloat(c.style.left || '0'), c.innerText.trim()]));
"""


def compared_metrics(driver) -> dict[str, list[str]]:
    """{metric: the values shown in its row, in column order} from the compare page."""
    height, width = driver.execute_script(
        "const grids = [...document.querySelectorAll('.ReactVirtualized__Grid')];"
        "return [Math.max(0, ...grids.map(g => g.scrollHeight)), Math.max(0, ...grids.map(g => g.scrollWidth))]")
    cells: dict[tuple[int, float, float], str] = {}
    for top in range(0, int(height) + 1, 200):
        for left in range(0, int(width) + 1, 300):
            driver.execute_script("document.querySelectorAll('.ReactVirtualized__Grid').forEach(g => {"
                                  "g.scrollTop = arguments[0]; g.scrollLeft = arguments[1]; })", top, left)
            time.sleep(0.05)
            for grid in driver.execute_script(_CELLS):
                for index, y, x, text in grid:
                    cells[(index, y, x)] = text
    names = {top: text for (index, top, _), text in cells.items() if index == 0}
    values: dict[float, list[tuple[float, str]]] = {}
    for (index, top, left), text in cells.items():
        if index == 1:
            values.setdefault(top, []).append((left, text))
    return {names[top]: [text for _, text in sorted(row)] for top, row in values.items() if top in names}


def _shown(text: str) -> float:
    return float("nan") if text.lower() == "nan" else float(text.replace(",", ""))


def metric_problems(shown: Mapping[str, list[str]], expected: Mapping[str, Mapping[str, float]]) -> list[str]:
    """What the compare page's metric table (compared_metrics) gets wrong: every HEADLINE metric must show
    one value per model, each as the store holds it (to the UI's 3 decimals; NaN as NaN)."""
    problems = []
    for metric in HEADLINE:
        want = sorted((float(values.get(metric, math.nan)) for values in expected.values()), key=_nan_last)
        row = shown.get(metric)
        if row is None:
            problems.append(f"compare page: no row for {metric}")
            continue
        got = sorted((_shown(text) for text in row), key=_nan_last)
        close = len(got) == len(want) and all(
            (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 6e-4 * max(1.0, abs(b)) for a, b in zip(got, want))
        if not close:
            problems.append(f"compare page: {metric} shows {row}, the store holds {want}")
    return problems


def check_pages(driver, links: Mapping[str, str], expected: Mapping[str, Mapping[str, float]], out_dir: Path,
                timeout_s: float = 60.0) -> tuple[list[str], dict[str, list[str]]]:
    """Open the pages (PAGES), save a screenshot of each (<page>.png); return what is wrong, in words, and the
    compare page's metric table as shown ({metric: values}).

    expected: {variant: {metric: value}} of the newest model runs (metric_problems says what must match)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    problems, shown = [], {}
    run_names = [f"model-{variant}" for variant in expected]
    wanted = {"experiment": ["Runs", *run_names], "runs": ["Runs", *run_names], "compare": ["Metrics", *run_names],
              "registry": ["champion"]}
    for page in PAGES:
        driver.get(links[page])
        missing = _wait_for(driver, wanted[page], timeout_s)
        if page == "compare" and not missing:
            # the screenshot first, scrolled to the metric table's top rows (FD_cnn, the e4 ratios), then the scan
            from selenium.webdriver.common.by import By

            for title in driver.find_elements(By.XPATH, "//*[normalize-space(text())='Metrics']")[:1]:
                driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", title)
            time.sleep(0.5)
            driver.save_screenshot(str(out_dir / f"{page}.png"))
            shown = compared_metrics(driver)
            problems += metric_problems(shown, expected)
        else:
            driver.save_screenshot(str(out_dir / f"{page}.png"))
        if missing:
            problems.append(f"{page} page ({links[page]}): missing {missing}")
        if page == "experiment" and "workflowType=genai" in driver.current_url:
            problems.append(f"experiment page ({links[page]}): opened as a GenAI app ({driver.current_url}), "
                            "not on the runs: is `mlflow ui` running with --app-name g2i?")
    return problems, shown


def _nan_last(value: float) -> tuple[bool, float]:
    return (math.isnan(value), 0.0 if math.isnan(value) else value)


def expected_metrics(tracking_uri: str, run_ids: Mapping[str, str]) -> dict[str, dict[str, float]]:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    return {variant: dict(client.get_run(run_id).data.metrics) for variant, run_id in run_ids.items()}
