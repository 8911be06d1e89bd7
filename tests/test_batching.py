"""RequestBatcher: concurrent requests share batches, bounded in size, and a failure stays with its request."""

from __future__ import annotations

import threading
import time

import pytest

from g2i.serving.batching import RequestBatcher


class Recorder:
    """A stand-in generator that records each batch: outputs are the items doubled, slowly (like a model)."""

    def __init__(self, seconds: float = 0.05, fail_on=None):
        self.calls: list[tuple] = []
        self.seconds = seconds
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def __call__(self, key, items):
        with self.lock:
            self.calls.append((key, list(items)))
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"row {self.fail_on} cannot be generated")
        time.sleep(self.seconds)
        return [2 * item for item in items]


def submit_all(batcher, requests):
    """Submit every (key, items) from its own thread at once; returns the results (or errors) in order."""
    results = [None] * len(requests)
    barrier = threading.Barrier(len(requests))

    def client(i):
        barrier.wait()
        try:
            results[i] = batcher.submit(*requests[i])
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            results[i] = exc

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a request never returned"
    return results


def test_concurrent_requests_are_coalesced_into_few_batches_and_each_gets_its_own_rows():
    model = Recorder()
    batcher = RequestBatcher(model, max_batch=8, window_s=1.0)              # a full batch does not wait
    requests = [("k", [10 * i, 10 * i + 1]) for i in range(8)]            # 8 clients x 2 rows
    results = submit_all(batcher, requests)
    assert results == [[20 * i, 20 * i + 2] for i in range(8)]
    # 16 rows in batches of 8, not 8 calls (the burst's first request may run alone: no client was seen before it)
    assert batcher.batches == len(model.calls) <= 3
    assert all(len(items) <= 8 for _, items in model.calls)


def test_batches_never_mix_settings_and_never_exceed_max_batch():
    model = Recorder(seconds=0.01)
    batcher = RequestBatcher(model, max_batch=3, window_s=0.1)
    requests = [(("steps", i % 2), [i, i + 100]) for i in range(6)]
    results = submit_all(batcher, requests)
    assert results == [[2 * i, 2 * (i + 100)] for i in range(6)]
    for key, items in model.calls:
        assert len(items) <= 3 and all(key == ("steps", item % 100 % 2) for item in items)


def test_a_request_larger_than_max_batch_runs_alone_and_whole():
    model = Recorder(seconds=0.0)
    batcher = RequestBatcher(model, max_batch=2, window_s=0.0)
    assert batcher.submit("k", [1, 2, 3, 4, 5]) == [2, 4, 6, 8, 10]
    assert model.calls == [("k", [1, 2, 3, 4, 5])]


def test_a_failing_row_fails_its_own_request_only():
    model = Recorder(fail_on=31)
    batcher = RequestBatcher(model, max_batch=16, window_s=0.2)
    requests = [("k", [10 * i, 10 * i + 1]) for i in range(5)]
    results = submit_all(batcher, requests)
    assert isinstance(results[3], ValueError) and "row 31" in str(results[3])
    assert [r for i, r in enumerate(results) if i != 3] == [[20 * i, 20 * i + 2] for i in (0, 1, 2, 4)]
    # and the batcher keeps serving afterwards
    assert batcher.submit("k", [7]) == [14]


def test_a_lone_request_waits_no_longer_than_the_window():
    batcher = RequestBatcher(Recorder(seconds=0.0), max_batch=8, window_s=0.05)
    start = time.perf_counter()
    assert batcher.submit("k", [1]) == [2]
    assert time.perf_counter() - start < 1.0


def test_a_lone_client_never_waits_for_the_window():
    """One client's requests in turn run at once: no other client is about, so waiting would only add latency."""
    batcher = RequestBatcher(Recorder(seconds=0.0), max_batch=8, window_s=0.5)
    start = time.perf_counter()
    assert [batcher.submit("k", [i]) for i in range(5)] == [[2 * i] for i in range(5)]
    assert time.perf_counter() - start < 0.5          # five 0.5 s windows would take 2.5 s


def test_two_clients_in_turn_share_batches_once_both_are_seen():
    model = Recorder(seconds=0.05)
    batcher = RequestBatcher(model, max_batch=8, window_s=0.3)
    results = [[], []]
    barrier = threading.Barrier(2)

    def client(c):
        barrier.wait()
        for i in range(5):
            results[c].append(batcher.submit("k", [10 * c + i]))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == [[[2 * i] for i in range(5)], [[20 + 2 * i] for i in range(5)]]
    assert batcher.batches <= 7                        # 10 requests: after the first batch, the two go together


@pytest.mark.parametrize("kwargs", [{"max_batch": 0, "window_s": 0.01}, {"max_batch": 4, "window_s": -1.0}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        RequestBatcher(Recorder(), **kwargs)


def test_clients_in_step_wait_only_for_their_round_and_stay_in_full_batches():
    """Eight clients, each back after its own delay (10 to 94 ms, like HTTP and encoding): every batch after
    the first waits for the round's last client, then runs all eight at once; it does not sit out the rest
    of the window (0.3 s), and no client is left behind for a half-size batch (a convoy)."""
    model = Recorder(seconds=0.15)
    spans: list[tuple[float, float]] = []

    def timed(key, items):
        began = time.perf_counter()
        out = model(key, items)
        spans.append((began, time.perf_counter()))
        return out

    batcher = RequestBatcher(timed, max_batch=16, window_s=0.3)
    barrier = threading.Barrier(8)

    def client(c):
        barrier.wait()
        for i in range(5):
            assert batcher.submit("k", [100 * c + i]) == [2 * (100 * c + i)]
            time.sleep(0.01 + 0.012 * c)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    sizes = [len(items) for _, items in model.calls]
    # the first batch takes whoever is there; its stragglers join the next, and from then on all eight go
    # together (the first batch's clients finish a round early, hence a last short batch)
    assert sum(sizes) == 40 and sizes[1:5] == [8, 8, 8, 8] and len(sizes) <= 6, sizes
    waits = sorted(began - ended for (_, ended), (began, _) in zip(spans, spans[1:]))
    assert waits[len(waits) // 2] < 0.2, waits        # the slowest client is back after ~0.1 s; the window is 0.3
