"""Drift bookkeeping: queued per model call, binned per interval, equal to binning at once."""

from __future__ import annotations

import numpy as np

from model import features as F
from service.drift import DriftMonitor, ThrottledDrift
from service.predictor import to_arrays
from training import data as D
from training.reference import build_reference

FRAME = D.generate(3000, 42)
REFERENCE = build_reference(FRAME[:2000], FRAME[2000:], np.linspace(0, 1, 1000), 0.5)
NUMERIC, CODES = to_arrays(FRAME[list(F.FEATURE_NAMES)].to_dict(orient="records"))
SCORES = np.random.default_rng(0).random(len(FRAME))


def test_queued_binning_equals_binning_each_call() -> None:
    direct = DriftMonitor(REFERENCE, window=500)
    published: list[tuple[dict[str, float], int]] = []
    throttled = ThrottledDrift(
        DriftMonitor(REFERENCE, window=500), lambda v, n: published.append((v, n)), 3600, 10
    )
    for start in range(0, 1200, 7):  # many small model calls
        part = slice(start, start + 7)
        direct.observe(NUMERIC[part], CODES[part], SCORES[part])
        throttled.observe(NUMERIC[part], CODES[part], SCORES[part])
    assert not published  # first call: 7 readings < 10 needed; then the interval holds back
    throttled.publish()
    values, readings = published[-1]
    assert readings == direct.readings == 500
    assert values == direct.snapshot()


def test_the_queue_is_bounded_by_the_window() -> None:
    throttled = ThrottledDrift(DriftMonitor(REFERENCE, window=100), lambda v, n: None, 3600, 10)
    for start in range(0, 1000, 10):
        throttled.observe(NUMERIC[start : start + 10], CODES[start : start + 10], SCORES[:10])
        assert throttled._queued_rows < 100 + 10
    assert throttled.monitor.readings == 100


def test_drifted_inputs_raise_psi() -> None:
    monitor = DriftMonitor(REFERENCE, window=1000)
    monitor.observe(NUMERIC[2000:], CODES[2000:], SCORES[2000:])
    calm = monitor.snapshot()[F.TORQUE.name]
    shifted = NUMERIC[2000:].copy()
    shifted[:, F.NUMERIC_NAMES.index(F.TORQUE.name)] += 15.0
    monitor.observe(shifted, CODES[2000:], SCORES[2000:])
    assert calm < 0.05 < 0.25 < monitor.snapshot()[F.TORQUE.name]


def test_a_batch_that_fills_the_window_midway_keeps_counts_exact() -> None:
    """Regression: a batch straddling the moment the ring fills left stale rows counted."""
    monitor, exact = DriftMonitor(REFERENCE, window=500), DriftMonitor(REFERENCE, window=500)
    for start in range(0, 1204, 7):
        monitor.observe(NUMERIC[start : start + 7], CODES[start : start + 7], SCORES[:7])
        assert all(int(c.sum()) == monitor.readings for c in monitor._counts)
    exact.observe(NUMERIC[704:1204], CODES[704:1204], SCORES[:500])  # the last 500 readings
    features = [*F.NUMERIC_NAMES, F.PRODUCT_TYPE.name]
    assert [monitor.snapshot()[f] for f in features] == [exact.snapshot()[f] for f in features]
