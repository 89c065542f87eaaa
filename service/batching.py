"""Coalesce concurrent requests into one model call (adaptive micro-batching).

Requests queue their rows; one drain task takes everything queued into the next model call.
While the loop is busy (parsing other requests, or running a call), new requests keep
queueing, so under load per-call overhead is shared; at low load a request runs at once (no
added latency). Calls run on the event loop, and only very large ones (over `inline_rows`) in
a single worker thread. An optional window waits a few hundred microseconds more to build
larger batches.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

ModelCall = Callable[[np.ndarray, np.ndarray], np.ndarray]
Pending = tuple[np.ndarray, np.ndarray, asyncio.Future[np.ndarray]]


class MicroBatcher:
    """submit(numeric, type_codes) -> probabilities, sharing model calls between requests."""

    def __init__(
        self, call: ModelCall, max_rows: int, window_s: float = 0.0, inline_rows: int = 1024
    ) -> None:
        self._call = call
        self._inline_rows = inline_rows
        self._max_rows = max_rows
        self._window = window_s
        self._pending: deque[Pending] = deque()  # popleft is O(1); list.pop(0) moves every item
        self._worker: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="faultline-model")

    async def submit(self, numeric: np.ndarray, type_codes: np.ndarray) -> np.ndarray:
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._pending.append((numeric, type_codes, future))
        if self._worker is None:
            self._worker = asyncio.create_task(self._drain())
        return await future

    def _take(self) -> list[Pending]:
        taken: list[Pending] = []
        rows = 0
        while self._pending and (not taken or rows + len(self._pending[0][0]) <= self._max_rows):
            item = self._pending.popleft()
            rows += len(item[0])
            taken.append(item)
        return taken

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            if self._window:
                await asyncio.sleep(self._window)
            while self._pending:
                batch = self._take()
                live = [item for item in batch if not item[2].done()]  # skip cancelled callers
                if not live:
                    continue
                numeric = live[0][0] if len(live) == 1 else np.vstack([b[0] for b in live])
                codes = live[0][1] if len(live) == 1 else np.concatenate([b[1] for b in live])
                try:
                    if len(numeric) <= self._inline_rows:
                        # under ~0.6 ms in ONNX Runtime: cheaper on the loop than a thread
                        # hand-off, which on a busy core can wait a whole GIL switch interval
                        # (5 ms) for its answer
                        result = self._call(numeric, codes)
                    else:
                        result = await loop.run_in_executor(
                            self._executor, self._call, numeric, codes
                        )
                except Exception as exc:  # hand the failure to every waiting request
                    for _, _, future in live:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                start = 0
                for rows, _, future in live:
                    if not future.done():
                        future.set_result(result[start : start + len(rows)])
                    start += len(rows)
        finally:
            self._worker = None

    async def close(self) -> None:
        """Finish every queued request, then stop the worker thread."""
        while self._worker is not None:
            await asyncio.shield(self._worker)
        self._executor.shutdown(wait=True)
