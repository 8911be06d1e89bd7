"""The scoring server's event loop, with enough request threads for a batch to gather its requests.

MLflow's scoring server runs each request's `predict` through `asyncio.to_thread`, in the event loop's
default executor: min(32, cores + 4) threads, 6 on a 2-core machine. A request holds its thread while its
rows wait for a batch (g2i.serving.batching), so at most 6 requests could ever share a batch, and with 8
clients the other 2 waited for the next one.

uvicorn makes its loop with a factory named by `--loop module:callable`, or by UVICORN_LOOP for the
uvicorn that `mlflow models serve` starts, after it has loaded the app (and so the model). `make serve`
names this factory:

    UVICORN_LOOP=g2i.serving.event_loop:event_loop mlflow models serve -m models:/g2i@champion --env-manager local

The model calls `configure(max_batch)` when it loads; the loop's default executor then has
`request_threads(max_batch)` threads. Where uvicorn loads the app inside a running loop (`--workers` > 1),
`configure` widens that loop at once. A server started without the factory still works, with the default
pool; the model says so once in the server's log (`warn_if_narrow`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

FACTORY = "g2i.serving.event_loop:event_loop"
THREAD_PREFIX = "g2i-request"
_state: dict = {"threads": None, "warned": False}


def request_threads(max_batch: int) -> int:
    """Threads for requests in flight: a full batch of one-row requests generating while the next gathers."""
    return 2 * int(max_batch)


def _widen(loop: asyncio.AbstractEventLoop) -> None:
    if _state["threads"]:
        loop.set_default_executor(ThreadPoolExecutor(max_workers=_state["threads"], thread_name_prefix=THREAD_PREFIX))


def configure(max_batch: int) -> None:
    """Record the pool size for the loop uvicorn makes next; widen the running loop if the app loads inside one."""
    _state["threads"] = request_threads(max_batch)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    _widen(loop)


def event_loop() -> asyncio.AbstractEventLoop:
    """uvicorn's loop factory (what its own asyncio factory makes on Linux), default executor widened."""
    loop = asyncio.SelectorEventLoop()
    _widen(loop)
    return loop


def warn_if_narrow() -> None:
    """Called in `predict`: once, when the request runs on asyncio's own pool rather than ours."""
    name = threading.current_thread().name
    if _state["warned"] or not name.startswith("asyncio_"):
        return
    _state["warned"] = True
    logging.getLogger("g2i.serving").warning(
        "requests run on asyncio's default pool (min(32, cores + 4) threads), so fewer concurrent requests share "
        "a batch than serving.max_batch allows; serve with UVICORN_LOOP=%s (make serve sets it)", FACTORY)
