"""g2i.serving.event_loop: the scoring server's loop runs as many requests at once as a batch can take."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from g2i.serving import event_loop


@pytest.fixture(autouse=True)
def fresh_state():
    saved = dict(event_loop._state)
    yield
    event_loop._state.clear()
    event_loop._state.update(saved)


async def _all_at_once(n: int, timeout: float) -> list[str]:
    """n blocking calls through asyncio.to_thread (as MLflow's server runs predict) that each wait until all n run."""
    barrier = threading.Barrier(n, timeout=timeout)

    def call() -> str:
        barrier.wait()
        return threading.current_thread().name

    return await asyncio.gather(*(asyncio.to_thread(call) for _ in range(n)))


def run_on(loop: asyncio.AbstractEventLoop, coroutine):
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def test_the_factory_runs_two_batches_of_one_row_requests_at_once():
    event_loop.configure(max_batch=8)
    names = run_on(event_loop.event_loop(), _all_at_once(16, timeout=20))
    assert len(set(names)) == 16 and all(name.startswith(event_loop.THREAD_PREFIX) for name in names)


def test_asyncios_own_pool_could_not_and_the_model_says_so(caplog):
    """The check above can fail: the default pool (min(32, cores + 4)) cannot hold 40 requests at once."""
    loop = asyncio.SelectorEventLoop()
    with pytest.raises(threading.BrokenBarrierError):
        run_on(loop, _all_at_once(40, timeout=2))

    async def predict_thread():
        return await asyncio.to_thread(event_loop.warn_if_narrow)

    with caplog.at_level(logging.WARNING, logger="g2i.serving"):
        run_on(asyncio.SelectorEventLoop(), predict_thread())
        run_on(asyncio.SelectorEventLoop(), predict_thread())
    assert [r.message.count(event_loop.FACTORY) for r in caplog.records] == [1]  # once, naming the fix


def test_an_app_loaded_inside_a_running_loop_widens_that_loop():
    """uvicorn --workers loads the app inside its loop, after the factory (or none) made it."""
    async def load_then_serve():
        event_loop.configure(max_batch=4)
        return await _all_at_once(8, timeout=20)

    names = run_on(asyncio.SelectorEventLoop(), load_then_serve())
    assert len(set(names)) == 8 and event_loop.request_threads(4) == 8
