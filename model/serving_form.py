"""The bundle's serving form at serving time: predictions that need no scikit-learn.

    serving.json     preprocessing parameters (exact: JSON floats round-trip), the estimator and
                     the probability calibration (isotonic knots or sigmoid coefficients)
    model.onnx       tree ensembles as one float64 ONNX TreeEnsemble node (no pickle, no code)

`ServingForm` replays the fitted Pipeline's float64 operations in the same order (imputation,
engineered features from the raw readings, clipping of the raw readings, scaling, one-hot,
selection, the estimator's score, calibration) and runs trees in ONNX Runtime: all trees for a
whole batch in one C++ call instead of scikit-learn's per-tree Python loop, and a service that
starts without importing scikit-learn, SciPy or pandas. training/export.py writes it and refuses
a bundle whose serving form disagrees with Pipeline.predict_proba; tests/contract proves it again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from model import features as F


def quiet_onnxruntime() -> Any:
    """onnxruntime, with its telemetry off. Since 1.29 every Linux process looks up
    Microsoft's collector (mobile.events.data.microsoft.com) unless ORT_DISABLE_TELEMETRY=1 is
    set before the runtime initializes; a pod must reach nothing but its clients."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime

    onnxruntime.disable_telemetry_events()  # the same for the Windows (ETW) provider
    return onnxruntime


TREES_FILE = "model.onnx"
# 3: engineered features from the raw readings, clipping of the raw readings only, calibration.
# 2 (clip every reading, then engineer; no calibration) is still served. 1 carried a treelite
# checkpoint.
FORMAT_VERSION = 3
SUPPORTED_FORMATS = (2, 3)
CALIBRATION_METHODS = ("isotonic", "sigmoid")
# what the calibrator reads: the estimator's decision function (margin) or its probability
CALIBRATION_INPUTS = ("decision_function", "predict_proba")
# treelite post-processors the serving side applies (sigmoid: HGB; identity*: averaged forests)
POSTPROCESSORS = ("sigmoid", "identity", "identity_multiclass")
# Product type -> one-hot column, in the contract's order (the service maps requests with it)
TYPE_CODES: dict[str, int] = {c: i for i, c in enumerate(F.PRODUCT_TYPE.categories)}


class ServingFormError(Exception):
    """The serving form is missing pieces or of an unknown format."""


def _array(values: list[float] | None) -> np.ndarray | None:
    return None if values is None else np.asarray(values, dtype=float)


class ServingForm:
    """predict_proba(numeric matrix in NUMERIC_NAMES order, type codes) -> probabilities."""

    def __init__(self, spec: dict[str, Any], blobs: dict[str, bytes]) -> None:
        if spec.get("format") not in SUPPORTED_FORMATS:
            raise ServingFormError(f"serving form format {spec.get('format')} is not supported")
        self._engineer_first = spec["format"] >= 3  # format 2 clipped before engineering
        numeric = spec["numeric"]
        if numeric["names"] != list(F.NUMERIC_NAMES) or spec["categories"] != list(
            F.PRODUCT_TYPE.categories
        ):
            raise ServingFormError("serving form was made for other feature columns")
        self._fill = np.asarray(numeric["fill"], dtype=float)
        self._lower = np.asarray(numeric["lower"], dtype=float)
        self._upper = np.asarray(numeric["upper"], dtype=float)
        self._mean = _array(numeric["mean"])
        self._scale = _array(numeric["scale"])
        self._eye = np.eye(len(spec["categories"]))
        self._support = np.asarray(spec["support"], dtype=np.intp)
        self._clipped = len(self._lower)
        estimator = spec["estimator"]
        self.kind = str(estimator.get("source", estimator["kind"]))
        self._model = _load_estimator(estimator, blobs, features=len(self._support))
        calibration = spec.get("calibration") if self._engineer_first else None
        self.calibration = "none" if calibration is None else str(calibration.get("method"))
        self._calibrate = None if calibration is None else Calibration(calibration)

    @classmethod
    def from_bundle_dir(cls, spec: dict[str, Any], bundle_dir: Path) -> ServingForm:
        """Load the serving form's files from a (verified) bundle directory."""
        names = [spec["estimator"]["file"]] if "file" in spec.get("estimator", {}) else []
        return cls(spec, {name: (bundle_dir / name).read_bytes() for name in names})

    def transform(self, numeric: np.ndarray, type_codes: np.ndarray) -> np.ndarray:
        X = np.where(np.isnan(numeric), self._fill, numeric)
        if self._engineer_first:  # the physics from the raw readings, then bound the readings
            X = F.add_engineered(X)
            X[:, : self._clipped] = np.clip(X[:, : self._clipped], self._lower, self._upper)
        else:
            X = F.add_engineered(np.clip(X, self._lower, self._upper))
        if self._mean is not None:
            X = X - self._mean
        if self._scale is not None:
            X = X / self._scale
        X = np.hstack([X, self._eye[type_codes]])
        return np.ascontiguousarray(X[:, self._support])

    def predict_proba(self, numeric: np.ndarray, type_codes: np.ndarray) -> np.ndarray:
        X = self.transform(numeric, type_codes)
        if self._calibrate is None:
            return self._model(X)
        return self._calibrate(self._model, X)


class Calibration:
    """The exported calibrator: replays scikit-learn's _CalibratedClassifier.predict_proba."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.method = spec.get("method")
        self.source = spec.get("input")
        if self.method not in CALIBRATION_METHODS or self.source not in CALIBRATION_INPUTS:
            raise ServingFormError(f"unknown calibration {self.method!r} on {self.source!r}")
        if self.method == "isotonic":
            self._x = np.asarray(spec["x"], dtype=float)
            self._y = np.asarray(spec["y"], dtype=float)
            if (
                self._x.ndim != 1
                or self._x.shape != self._y.shape
                or len(self._x) == 0
                or not (np.all(np.isfinite(self._x)) and np.all(np.isfinite(self._y)))
                or np.any(np.diff(self._x) < 0)
                or np.any((self._y < 0) | (self._y > 1))
            ):
                raise ServingFormError("isotonic calibration knots are malformed")
        else:
            self._a, self._b = float(spec["a"]), float(spec["b"])
            if not (np.isfinite(self._a) and np.isfinite(self._b)):
                raise ServingFormError("sigmoid calibration coefficients are not finite")

    def __call__(self, model: Any, X: np.ndarray) -> np.ndarray:
        score = model.margin(X) if self.source == "decision_function" else model(X)
        # both stay within [0, 1]: scikit-learn's rounding of values just above 1 never applies
        if self.method == "isotonic":
            # IsotonicRegression(out_of_bounds="clip") interpolates linearly between its knots
            # and holds the end values outside them, as np.interp does
            return np.interp(score, self._x, self._y)
        return _expit(-(self._a * score + self._b))  # scikit-learn's _SigmoidCalibration


def _expit(z: np.ndarray) -> np.ndarray:
    """scipy's expit, as scikit-learn uses, without importing scipy: 1 / (1 + e^-z)."""
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


def _load_estimator(
    spec: dict[str, Any], blobs: dict[str, bytes], features: int
) -> Callable[[np.ndarray], np.ndarray]:
    if spec["kind"] == "logistic":
        coef = np.asarray(spec["coef"], dtype=float)
        intercept = float(spec["intercept"])
        if coef.shape != (features,):
            raise ServingFormError(f"{coef.size} coefficients for {features} features")

        return Logistic(coef, intercept)
    if spec["kind"] == "trees":
        return OnnxTrees(
            blobs[spec["file"]],
            features=features,
            postprocessor=str(spec["postprocessor"]),
            base_score=float(spec["base_score"]),
            as_float32=bool(spec.get("input_float32", False)),
        )
    raise ServingFormError(f"unknown estimator kind {spec['kind']!r}")


class Logistic:
    """Logistic regression: a dot product (margin) and its sigmoid."""

    def __init__(self, coef: np.ndarray, intercept: float) -> None:
        self._coef = coef.reshape(-1, 1)  # a matrix product, as scikit-learn computes it
        self._intercept = intercept

    def margin(self, X: np.ndarray) -> np.ndarray:
        return np.asarray((X @ self._coef)[:, 0] + self._intercept)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return _expit(self.margin(X))


class OnnxTrees:
    """The ensemble in ONNX Runtime: one thread, no spinning (one worker process per core)."""

    def __init__(
        self, model: bytes, features: int, postprocessor: str, base_score: float, as_float32: bool
    ) -> None:
        onnxruntime = quiet_onnxruntime()
        if postprocessor not in POSTPROCESSORS:
            raise ServingFormError(f"unknown post-processor {postprocessor!r}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            self._session = onnxruntime.InferenceSession(
                model, options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ServingFormError(f"ONNX model refused by ONNX Runtime: {exc}") from exc
        # the one signature the exporter writes: X double [rows, features] -> Y double [rows, 1]
        signature = [
            (arg.type, arg.shape[1:])
            for arg in (*self._session.get_inputs(), *self._session.get_outputs())
        ]
        if signature != [("tensor(double)", [features]), ("tensor(double)", [1])]:
            raise ServingFormError(f"ONNX model signature {signature} is not trees over {features}")
        self._input = self._session.get_inputs()[0].name
        self._sigmoid = postprocessor == "sigmoid"
        self._base_score = base_score
        self._as_float32 = as_float32

    def margin(self, X: np.ndarray) -> np.ndarray:
        """The ensemble's raw score (HGB's decision_function; a forest's probability)."""
        if self._as_float32:  # scikit-learn's decision trees compare float32 inputs
            X = X.astype(np.float32).astype(np.float64)
        return np.asarray(self._session.run(None, {self._input: X})[0][:, 0] + self._base_score)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        raw = self.margin(X)
        return _expit(raw) if self._sigmoid else raw
