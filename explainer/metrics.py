"""The explainer's metrics (prefix faultline_, labelled model_version), and the rolling window
of attributions behind faultline_attribution_mean_abs."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

EXPLAIN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ExplainerMetrics:
    """Every explainer metric, registered in the given registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.mean_abs = Gauge(
            "faultline_attribution_mean_abs",
            "Mean |attribution| per raw feature over the last FAULTLINE_EXPLAINER_WINDOW "
            "explained readings.",
            ["model_version", "feature"],
            registry=registry,
        )
        self.reference_mean_abs = Gauge(
            "faultline_attribution_reference_mean_abs",
            "Mean |attribution| per raw feature on the bundle's held-out data (its metadata).",
            ["model_version", "feature"],
            registry=registry,
        )
        self.window = Gauge(
            "faultline_attribution_window_readings",
            "Readings in the attribution window.",
            ["model_version"],
            registry=registry,
        )
        self.explained = Counter(
            "faultline_explained_readings",
            "Readings explained.",
            ["model_version"],
            registry=registry,
        )
        self.duration = Histogram(
            "faultline_explain_duration_seconds",
            "Attribution compute time of one request (its whole batch).",
            ["model_version"],
            buckets=EXPLAIN_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "faultline_http_requests_in_flight",
            "HTTP requests being served right now.",
            registry=registry,
        )


class AttributionWindow:
    """|attribution| of the last `size` explained readings (a ring buffer) and their mean."""

    def __init__(self, size: int, features: int) -> None:
        self.rows = np.zeros((size, features))
        self.next = 0  # the row the next reading goes to
        self.count = 0

    def add(self, values: np.ndarray) -> None:
        """Add a batch's attributions (n, features); only its last `size` rows can stay."""
        size = len(self.rows)
        recent = np.abs(values[-size:])
        self.rows[(self.next + np.arange(len(recent))) % size] = recent
        self.next = (self.next + len(recent)) % size
        self.count = min(size, self.count + len(recent))

    def mean(self) -> np.ndarray:
        """Mean |attribution| per feature (filled rows are 0..count-1 until the first wrap)."""
        return np.asarray(self.rows[: self.count].mean(axis=0))
