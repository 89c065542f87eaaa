"""Domain metrics (prefix faultline_, base units, all labelled with model_version).

HTTP RED metrics come from prometheus-fastapi-instrumentator (see main.py). Gauges declare how
they combine across worker processes in multiprocess mode (PROMETHEUS_MULTIPROC_DIR).
"""

from __future__ import annotations

import math
import os
import threading
from bisect import bisect_left
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.utils import floatToGoString

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
        self.probability = ArrayHistogram(
            "faultline_predicted_probability",
            "Predicted failure probability per reading.",
            ["model_version"],
            PROBABILITY_BUCKETS,
            registry,
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


class ArrayHistogram:
    """A histogram observed a whole array at a time: one bincount per model call instead of an
    observe() per reading, exposed through prometheus_client's public custom-collector API.

    In multiprocess mode (PROMETHEUS_MULTIPROC_DIR, `faultline serve --workers N`) values must
    live in the client's shared files, which only its own metric classes write: there it is a
    plain Histogram, observed value by value.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: list[str],
        buckets: tuple[float, ...],
        registry: CollectorRegistry,
    ) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self.bounds = np.asarray([*buckets, math.inf] if buckets[-1] != math.inf else buckets)
        self.bound_list = self.bounds.tolist()
        self._lock = threading.Lock()  # model calls run on the loop or in the worker thread
        self._children: dict[tuple[str, ...], ArrayHistogramChild] = {}
        self._shared: Histogram | None = None
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            self._shared = Histogram(
                name, documentation, labelnames, buckets=buckets, registry=registry
            )
        else:
            registry.register(self)

    def labels(self, *values: str) -> ArrayHistogramChild:
        with self._lock:
            if values not in self._children:
                shared = self._shared.labels(*values) if self._shared is not None else None
                self._children[values] = ArrayHistogramChild(self, shared)
            return self._children[values]

    def describe(self) -> list[HistogramMetricFamily]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> list[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        with self._lock:
            for values, child in self._children.items():
                cumulative = np.cumsum(child.counts).tolist()
                family.add_metric(
                    list(values),
                    [(floatToGoString(b), c) for b, c in zip(self.bounds, cumulative, strict=True)],
                    child.total,
                )
        return [family]


class ArrayHistogramChild:
    """One label set of an ArrayHistogram."""

    def __init__(self, parent: ArrayHistogram, shared: Any) -> None:
        self._parent, self._shared = parent, shared
        self.counts = np.zeros(len(parent.bounds), dtype=np.int64)
        self.total = 0.0

    def observe_many(self, values: np.ndarray) -> None:
        if self._shared is not None:
            for value in values.tolist():
                self._shared.observe(value)
            return
        if len(values) == 1:  # a single reading: bisect beats numpy's per-call overhead
            value = float(values[0])
            index = bisect_left(self._parent.bound_list, value)
            with self._parent._lock:
                self.counts[index] += 1
                self.total += value
            return
        # bucket i counts values in (bound[i-1], bound[i]]: Prometheus's `le` semantics
        counts = np.bincount(
            np.searchsorted(self._parent.bounds, values, side="left"),
            minlength=len(self._parent.bounds),
        )
        total = float(values.sum())
        with self._parent._lock:
            self.counts += counts
            self.total += total
