"""The transport-free Predictor: load and verify a bundle, then `predict(readings)`, the one
entry point of inference: array conversion, micro-batching with concurrent requests, the model
call, the decision rule, prediction and drift metrics, and the sampled prediction log.

Routes translate HTTP into that call and back; tests and benchmarks use it directly.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from model import features as F
from model.bundle import (
    Bundle,
    BundleIncompatibleError,
    load_bundle,
    load_pipeline,
    resolve_bundle,
)
from model.decision import decide
from model.serving_form import TYPE_CODES, ServingForm, ServingFormError
from service.batching import MicroBatcher
from service.drift import DriftMonitor, ThrottledDrift
from service.metrics import ServiceMetrics

log = structlog.get_logger("faultline.predictor")


_NUMERIC = itemgetter(*F.NUMERIC_NAMES)
_TYPE = itemgetter(F.PRODUCT_TYPE.name)


def to_arrays(readings: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Validated readings -> (numeric matrix in NUMERIC_NAMES order, product type codes)."""
    # itemgetter and map run in C: 40 % less time on the event loop than nested comprehensions
    numeric = np.array(list(map(_NUMERIC, readings)), dtype=float).reshape(len(readings), -1)
    codes = np.fromiter(
        map(TYPE_CODES.__getitem__, map(_TYPE, readings)), dtype=np.intp, count=len(readings)
    )
    return numeric, codes


def to_frame(numeric: np.ndarray, codes: np.ndarray) -> Any:
    """The DataFrame the bundle's Pipeline expects (the reference path; imports pandas)."""
    import pandas as pd

    frame = pd.DataFrame(numeric, columns=list(F.NUMERIC_NAMES))
    frame.insert(0, F.PRODUCT_TYPE.name, np.asarray(F.PRODUCT_TYPE.categories, dtype=object)[codes])
    return frame


@dataclass(frozen=True)
class Predictions:
    """The answers for one request's readings, in their order."""

    model_version: str
    threshold: float
    probabilities: list[float]
    failures: list[bool]  # the decision rule (model.decision.decide) applied to each


class Predictor:
    """A loaded bundle plus its fastest verified inference path."""

    def __init__(
        self,
        bundle: Bundle,
        metrics: ServiceMetrics,
        serving_form: bool = True,
        drift_window: int = 2000,
        drift_min_readings: int = 200,
        drift_update_seconds: float = 1.0,
        drift_max_request_share: float = 1.0,
        max_micro_batch: int = 256,
        batch_window_s: float = 0.0,
        log_sample_rate: float = 0.0,
    ) -> None:
        self.bundle = bundle
        self.version = bundle.version
        self.threshold = bundle.threshold
        self.metrics = metrics
        self.serving_form: ServingForm | None = None
        if serving_form and bundle.serving is not None:
            try:
                self.serving_form = ServingForm.from_bundle_dir(bundle.serving, bundle.path)
            except (ServingFormError, KeyError, ValueError, RuntimeError) as exc:
                log.warning("serving_form_unusable", reason=str(exc))
        self.pipeline = bundle.pipeline
        if self.serving_form is None and self.pipeline is None:
            self.pipeline = load_pipeline(bundle.path)  # imports scikit-learn: slower start
        self.drift = ThrottledDrift(
            DriftMonitor(bundle.reference, drift_window),
            self._publish_drift,
            drift_update_seconds,
            drift_min_readings,
            max_per_request=max(1, int(drift_max_request_share * drift_window)),
            skipped=metrics.drift_skipped.labels(bundle.version),
        )
        self._inference = metrics.inference.labels(self.version)
        self._call_size = metrics.model_call_size.labels(self.version)
        # children bound once: a labels() lookup per model call is hot-path work
        self._failures = metrics.predictions.labels(self.version, "failure")
        self._oks = metrics.predictions.labels(self.version, "ok")
        self._probability = metrics.probability.labels(self.version)
        self._batch_size = metrics.batch_size.labels(self.version)
        self.log_sample_rate = log_sample_rate
        self.batcher = MicroBatcher(self.model_call, max_micro_batch, batch_window_s)

    @classmethod
    def load(
        cls, path: Path, metrics: ServiceMetrics, pinned_hash: str | None = None, **options: Any
    ) -> Predictor:
        """Resolve (newest bundle in a directory), verify, load; raises BundleError."""
        bundle = load_bundle(
            resolve_bundle(path),
            with_pipeline=not options.get("serving_form", True),
            pinned_hash=pinned_hash,
        )
        return cls(bundle, metrics, **options)

    @property
    def inference_path(self) -> str:
        return f"serving-form-{self.serving_form.kind}" if self.serving_form else "sklearn-pipeline"

    def predict_proba(self, numeric: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Failure probabilities, no side effects."""
        if self.serving_form is not None:
            return self.serving_form.predict_proba(numeric, codes)
        if self.pipeline is None:
            raise BundleIncompatibleError("no usable inference path")
        return np.asarray(self.pipeline.predict_proba(to_frame(numeric, codes))[:, 1])

    async def predict(self, readings: list[dict[str, Any]]) -> Predictions:
        """Validated readings -> their predictions (shares a model call with concurrent ones)."""
        numeric, codes = to_arrays(readings)
        self._batch_size.observe(len(readings))
        scores = await self.batcher.submit(numeric, codes)
        self.drift.observe(numeric, codes, scores)  # per request: its share is capped
        predictions = Predictions(
            self.version,
            self.threshold,
            scores.tolist(),
            decide(scores, self.threshold).tolist(),
        )
        if self.log_sample_rate and random.random() < self.log_sample_rate:  # noqa: S311
            log.info(
                "prediction",
                model_version=self.version,
                inputs=readings,
                outputs=[
                    {"failure_probability": p, "failure": f}
                    for p, f in zip(predictions.probabilities, predictions.failures, strict=True)
                ],
            )
        return predictions

    def model_call(self, numeric: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """One (coalesced) model call with its metrics (drift is recorded per request)."""
        started = time.perf_counter()
        probabilities = self.predict_proba(numeric, codes)
        self._inference.observe(time.perf_counter() - started)
        self._call_size.observe(len(probabilities))
        failures = int(np.count_nonzero(decide(probabilities, self.threshold)))
        self._failures.inc(failures)
        self._oks.inc(len(probabilities) - failures)
        self._probability.observe_many(probabilities)
        return probabilities

    def warm_up(self) -> None:
        """Run the documented example reading once (first-call costs before ready)."""
        numeric, codes = to_arrays([F.example_reading()])
        probability = self.predict_proba(numeric, codes)
        if not np.all(np.isfinite(probability)) or not 0 <= probability[0] <= 1:
            raise BundleIncompatibleError(f"warm-up produced an invalid probability {probability}")

    def publish_static(self) -> None:
        """Info, readiness and reference gauges (once, after warm-up)."""
        self.metrics.info.labels(
            self.version,
            self.bundle.bundle_hash[:16],
            self.bundle.metadata.get("estimator", "unknown"),
            self.inference_path,
        ).set(1)
        score = self.bundle.reference["score"]
        cumulative = np.cumsum(score["proportions"])
        cumulative = cumulative / cumulative[-1]  # a CDF ends at exactly 1 (float sums may not)
        for bound, share in zip(score["bucket_upper_bounds"], cumulative, strict=True):
            self.metrics.reference_probability.labels(self.version, str(bound)).set(float(share))
        self.metrics.ready.labels(self.version).set(1)

    def _publish_drift(self, values: dict[str, float], readings: int) -> None:
        for column, value in values.items():
            if column == "score":
                self.metrics.score_shift.labels(self.version).set(value)
            else:
                self.metrics.drift.labels(self.version, column).set(value)
        self.metrics.window.labels(self.version).set(readings)
