"""The micro-batcher with a fake model call: no model, no server, no HTTP."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from itertools import chain
from typing import Any

import numpy as np
import pytest

from service.batching import MicroBatcher

FAIL = -1.0  # a request whose first value is this makes the fake model call raise


class FakeModel:
    """Answers each row with its first value; records every call's rows and thread."""

    def __init__(self) -> None:
        self.calls: list[list[float]] = []
        self.threads: list[str] = []

    def __call__(self, numeric: np.ndarray, type_codes: np.ndarray) -> np.ndarray:
        assert len(numeric) == len(type_codes)
        self.calls.append(numeric[:, 0].tolist())
        self.threads.append(threading.current_thread().name)
        if FAIL in numeric[:, 0]:
            raise RuntimeError("model call failed")
        return numeric[:, 0].copy()


def rows(*values: float) -> tuple[np.ndarray, np.ndarray]:
    """A request of one row per value (the value in the first column identifies the row)."""
    numeric = np.zeros((len(values), 3))
    numeric[:, 0] = values
    return numeric, np.zeros(len(values), dtype=np.int64)


def run(test: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(test())  # type: ignore[arg-type]


def test_coalesced_requests_get_their_own_rows_in_order() -> None:
    model = FakeModel()

    async def scenario() -> list[np.ndarray]:
        batcher = MicroBatcher(model, max_rows=100)
        answers = await asyncio.gather(
            batcher.submit(*rows(1, 2)), batcher.submit(*rows(3)), batcher.submit(*rows(4, 5, 6))
        )
        await batcher.close()
        return answers

    answers = run(scenario)
    assert model.calls == [[1, 2, 3, 4, 5, 6]]  # one call for the three requests
    assert [a.tolist() for a in answers] == [[1, 2], [3], [4, 5, 6]]


def test_a_failing_call_fails_only_its_own_requests() -> None:
    model = FakeModel()

    async def scenario() -> list[Any]:
        batcher = MicroBatcher(model, max_rows=2)  # one request per call
        answers = await asyncio.gather(
            batcher.submit(*rows(1, 2)),
            batcher.submit(*rows(FAIL, 3)),
            batcher.submit(*rows(4, 5)),
            return_exceptions=True,
        )
        later = await batcher.submit(*rows(6))  # the batcher still works afterwards
        await batcher.close()
        return [*answers, later]

    first, failed, third, later = run(scenario)
    assert model.calls == [[1, 2], [FAIL, 3], [4, 5], [6]]
    assert first.tolist() == [1, 2] and third.tolist() == [4, 5] and later.tolist() == [6]
    assert isinstance(failed, RuntimeError) and str(failed) == "model call failed"


def test_a_failure_reaches_every_request_of_the_call() -> None:
    model = FakeModel()

    async def scenario() -> list[Any]:
        batcher = MicroBatcher(model, max_rows=100)
        answers = await asyncio.gather(
            batcher.submit(*rows(1)), batcher.submit(*rows(FAIL)), return_exceptions=True
        )
        await batcher.close()
        return answers

    answers = run(scenario)
    assert model.calls == [[1, FAIL]]
    assert all(isinstance(a, RuntimeError) for a in answers)


def test_a_cancelled_caller_is_skipped_and_the_others_answered() -> None:
    model = FakeModel()

    async def scenario() -> list[Any]:
        batcher = MicroBatcher(model, max_rows=100, window_s=0.05)
        tasks = [asyncio.create_task(batcher.submit(*rows(v, v))) for v in (1, 2, 3)]
        await asyncio.sleep(0)  # all three queued; the drain waits out its window
        tasks[1].cancel()
        answers = await asyncio.gather(*tasks, return_exceptions=True)
        await batcher.close()
        return answers

    first, cancelled, third = run(scenario)
    assert model.calls == [[1, 1, 3, 3]]  # the cancelled request's rows were never sent
    assert isinstance(cancelled, asyncio.CancelledError)
    assert first.tolist() == [1, 1] and third.tolist() == [3, 3]


def test_a_call_of_only_cancelled_callers_is_not_made() -> None:
    model = FakeModel()

    async def scenario() -> np.ndarray:
        batcher = MicroBatcher(model, max_rows=1, window_s=0.05)
        gone = asyncio.create_task(batcher.submit(*rows(1)))
        kept = asyncio.create_task(batcher.submit(*rows(2)))
        await asyncio.sleep(0)
        gone.cancel()
        answer = await kept
        await batcher.close()
        return answer

    assert run(scenario).tolist() == [2]
    assert model.calls == [[2]]


@pytest.mark.parametrize("max_rows", [1, 4, 7])
def test_no_call_is_larger_than_max_rows_unless_one_request_is(max_rows: int) -> None:
    model = FakeModel()
    sizes = [1, 3, 2, 5, 1, 1, 9, 2, 4]
    requests = [rows(*[float(i)] * size) for i, size in enumerate(sizes)]

    async def scenario() -> list[np.ndarray]:
        batcher = MicroBatcher(model, max_rows=max_rows)
        answers = await asyncio.gather(*(batcher.submit(*r) for r in requests))
        await batcher.close()
        return answers

    answers = run(scenario)
    expected = [[float(i)] * size for i, size in enumerate(sizes)]
    assert [a.tolist() for a in answers] == expected
    for call in model.calls:
        assert len(call) <= max_rows or len(set(call)) == 1  # too big: a call of its own
    # requests are taken in order and whole: the calls, joined, are the requests in order
    assert list(chain(*model.calls)) == list(chain(*expected))
    assert len(model.calls) < len(sizes) or max_rows == 1  # coalescing happened


def test_only_calls_above_inline_rows_run_in_the_worker_thread() -> None:
    model = FakeModel()

    async def scenario() -> None:
        batcher = MicroBatcher(model, max_rows=100, inline_rows=4)
        await batcher.submit(*rows(1, 2, 3, 4))
        await batcher.submit(*rows(1, 2, 3, 4, 5))
        await batcher.close()

    run(scenario)
    assert model.threads[0] == threading.main_thread().name  # on the event loop
    assert model.threads[1].startswith("faultline-model")


def test_close_finishes_queued_work() -> None:
    model = FakeModel()

    async def scenario() -> list[asyncio.Task[np.ndarray]]:
        batcher = MicroBatcher(model, max_rows=2, window_s=0.01, inline_rows=1)
        tasks = [asyncio.create_task(batcher.submit(*rows(v, v))) for v in (1, 2, 3)]
        await asyncio.sleep(0)
        await batcher.close()  # queued, not started: still answered before close returns
        assert all(task.done() for task in tasks)
        return tasks

    tasks = run(scenario)
    assert [t.result().tolist() for t in tasks] == [[1, 1], [2, 2], [3, 3]]
    assert len(model.calls) == 3 and all(t.startswith("faultline-model") for t in model.threads)
