"""Domain metrics (prefix faultline_, base units, all labelled with model_version).

HTTP RED metrics come from prometheus-fastapi-instrumentator (see main.py). Gauges declare how
they combine across worker processes in multiprocess mode (PROMETHEUS_MULTIPROC_DIR).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from model.decision import PROBABILITY_BUCKETS

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
INFERENCE_BUCKETS = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000)


class ServiceMetrics:
    """Every domain metric, registered in the given registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.predictions = Counter(
            "faultline_predictions",
            "Predictions served, by outcome (failure / ok).",
            ["model_version", "outcome"],
            registry=registry,
        )
        self.probability = Histogram(
            "faultline_predicted_probability",
            "Predicted failure probability per reading.",
            ["model_version"],
            buckets=PROBABILITY_BUCKETS,
            registry=registry,
        )
        self.inference = Histogram(
            "faultline_inference_duration_seconds",
            "Time of one model call (a coalesced batch), preprocessing included.",
            ["model_version"],
            buckets=INFERENCE_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "faultline_batch_size",
            "Readings per /v1/predict request.",
            ["model_version"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.model_call_size = Histogram(
            "faultline_model_call_batch_size",
            "Readings per model call after coalescing concurrent requests.",
            ["model_version"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.invalid = Counter(
            "faultline_invalid_requests",
            "Rejected requests by reason and field.",
            ["model_version", "reason", "field"],
            registry=registry,
        )
        self.drift = Gauge(
            "faultline_feature_drift_psi",
            "Population stability index of recent inputs against the bundle's reference.",
            ["model_version", "feature"],
            multiprocess_mode="max",
            registry=registry,
        )
        self.score_shift = Gauge(
            "faultline_prediction_shift_psi",
            "PSI of recent predicted probabilities against the held-out reference scores.",
            ["model_version"],
            multiprocess_mode="max",
            registry=registry,
        )
        self.window = Gauge(
            "faultline_drift_window_readings",
            "Readings in the drift window.",
            ["model_version"],
            multiprocess_mode="sum",
            registry=registry,
        )
        self.reference_probability = Gauge(
            "faultline_reference_probability_ratio",
            "Share of held-out reference scores at or below `le` (cumulative, as a histogram).",
            ["model_version", "le"],
            multiprocess_mode="max",
            registry=registry,
        )
        self.info = Gauge(
            "faultline_model_info",
            "The loaded bundle (always 1).",
            ["model_version", "bundle_hash", "estimator", "inference_path"],
            multiprocess_mode="max",
            registry=registry,
        )
        self.in_flight = Gauge(
            "faultline_http_requests_in_flight",
            "HTTP requests being served right now.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.client_disconnects = Counter(
            "faultline_client_disconnects",
            "Requests whose client disconnected before the answer (status 499, not a 5xx).",
            ["model_version"],
            registry=registry,
        )
        self.protocol_rejections = Counter(
            "faultline_http_protocol_rejections",
            "Connections the HTTP guard answered and closed before or instead of the app, by "
            "reason (header_too_large, too_many_headers, header_timeout, body_timeout, "
            "drain_deadline, malformed_http).",
            ["reason"],
            registry=registry,
        )
        self.auth_failures = Counter(
            "faultline_auth_failures",
            "Requests to /v1/* refused with 401, by reason (missing, invalid).",
            ["reason"],
            registry=registry,
        )
        self.drift_skipped = Counter(
            "faultline_drift_readings_skipped",
            "Readings left out of the drift window because one request may fill only "
            "FAULTLINE_DRIFT_MAX_REQUEST_SHARE of it.",
            ["model_version"],
            registry=registry,
        )
        self.ready = Gauge(
            "faultline_model_ready",
            "1 when the bundle is loaded, verified and warmed.",
            ["model_version"],
            multiprocess_mode="min",
            registry=registry,
        )


def observe_many(histogram: Any, values: np.ndarray) -> None:
    """Histogram.observe for a whole array at once (one bincount instead of N calls).

    Uses the client's bucket internals (stable across prometheus_client releases); falls back
    to observe() per value if they ever change.
    """
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    if bounds is None or buckets is None or len(values) < 8:
        for value in values.tolist():
            histogram.observe(value)
        return
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    for index in np.flatnonzero(counts).tolist():
        buckets[index].inc(int(counts[index]))
    histogram._sum.inc(float(values.sum()))
