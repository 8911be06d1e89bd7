"""`mlflow ui --app-name g2i`: MLflow's own server, whose UI opens an experiment on its runs.

MLflow 3.17's UI shows every experiment as a GenAI app (traces, token usage) until the user clicks "Model
training". It keeps that choice in the browser's localStorage under `mlflow.workflowType_v1` (a JSON string,
GenAI when absent) and ignores the experiment's `mlflow.experimentKind` tag. This app serves MLflow's
index.html with one inline line that stores "machine_learning" there when the browser holds no choice, so
a bare address opens on the runs; a user's own click on "GenAI apps & agents" is kept. It is registered as
the `mlflow.app` entry point `g2i` (pyproject.toml), the mechanism MLflow's own basic-auth app uses, and
is otherwise MLflow's server unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

WORKFLOW_KEY = "mlflow.workflowType_v1"   # MLflow's useLocalStorage: f"{key}_v{version}", JSON-encoded
MODEL_TRAINING = "machine_learning"
DEFAULT_WORKFLOW = ("<script>try{if(window.localStorage.getItem(%s)===null)"
                    "window.localStorage.setItem(%s,%s)}catch(e){}</script>"
                    % (json.dumps(WORKFLOW_KEY), json.dumps(WORKFLOW_KEY), json.dumps(json.dumps(MODEL_TRAINING))))


def with_default_workflow(index_html: str) -> str:
    """MLflow's index.html with the model-training default set before its scripts run."""
    head = index_html.find("<head>")
    if head < 0:
        raise ValueError("MLflow's index.html has no <head>; cannot set the UI's default view")
    at = head + len("<head>")
    return index_html[:at] + DEFAULT_WORKFLOW + index_html[at:]


def create_app():
    """MLflow's tracking server app with the index page above (ASGI under uvicorn, MLflow's default)."""
    from flask import Response
    from mlflow.environment_variables import _MLFLOW_SGI_NAME
    from mlflow.server import app as flask_app

    index = Path(flask_app.static_folder) / "index.html"
    if index.is_file():   # without it MLflow's own view explains that the UI build is missing
        # read and amended once, at start: a page MLflow changed shape fails here, not on every request
        page = with_default_workflow(index.read_text(encoding="utf-8"))
        flask_app.view_functions["serve"] = lambda: Response(page, mimetype="text/html")
    if _MLFLOW_SGI_NAME.get() == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return create_fastapi_app(flask_app)
    return flask_app
