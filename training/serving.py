"""The bundle's serving form: a fitted Pipeline exported so that predicting needs no scikit-learn.

    serving.json     preprocessing parameters (exact: JSON floats round-trip), the estimator and
                     the probability calibration (isotonic knots or sigmoid coefficients)
    model.onnx       tree ensembles as one float64 ONNX TreeEnsemble node (no pickle, no code)

`export_serving` (training side) reads the fitted, calibrated model; `CompiledModel` (serving
side) replays the same float64 operations in the same order (imputation, engineered features
from the raw readings, clipping of the raw readings, scaling, one-hot, selection, the
estimator's score, calibration) and runs trees in ONNX Runtime (training/tree_onnx.py):
all trees for a whole batch in one C++ call instead of scikit-learn's per-tree Python loop, and
a service that starts without importing scikit-learn, SciPy or pandas. Training refuses to
write a bundle whose serving form disagrees with Pipeline.predict_proba (check_parity);
tests/contract proves it again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from training import features as F


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
PARITY_TOLERANCE = 1e-9  # training refuses a bundle beyond this; tests/contract hold 1e-12
CALIBRATION_METHODS = ("isotonic", "sigmoid")
# what the calibrator reads: the estimator's decision function (margin) or its probability
CALIBRATION_INPUTS = ("decision_function", "predict_proba")
# treelite post-processors the serving side applies (sigmoid: HGB; identity*: averaged forests)
POSTPROCESSORS = ("sigmoid", "identity", "identity_multiclass")
# Product type -> one-hot column, in the contract's order (the service maps requests with it)
TYPE_CODES: dict[str, int] = {c: i for i, c in enumerate(F.PRODUCT_TYPE.categories)}


class UnsupportedPipelineError(Exception):
    """The Pipeline has a step the exporter does not know; the service uses the Pipeline."""


class ServingFormError(Exception):
    """The serving form is missing pieces or of an unknown format."""


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise UnsupportedPipelineError(what)


def _floats(values: Any) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=float).ravel()]


def _export_calibration(model: Any) -> tuple[Any, dict[str, Any] | None]:
    """(the fitted Pipeline, calibration spec) of a calibrated model, or (model, None)."""
    if type(model).__name__ != "CalibratedClassifierCV":
        return model, None
    _expect(len(model.calibrated_classifiers_) == 1, "one calibrated classifier (ensemble=False)")
    pair = model.calibrated_classifiers_[0]
    pipeline = pair.estimator
    _expect(pair.method in CALIBRATION_METHODS, f"calibration method {pair.method}")
    _expect(len(pair.calibrators) == 1, "one calibrator (binary)")
    calibrator = pair.calibrators[0]
    # scikit-learn calibrates the first response method the estimator has
    source = "decision_function" if hasattr(pipeline, "decision_function") else "predict_proba"
    spec: dict[str, Any] = {"method": pair.method, "input": source}
    if pair.method == "isotonic":
        _expect(
            calibrator.increasing is True and calibrator.out_of_bounds == "clip",
            "increasing isotonic calibration that clips out-of-range scores",
        )
        spec["x"] = _floats(calibrator.X_thresholds_)
        spec["y"] = _floats(calibrator.y_thresholds_)
    else:
        spec["a"] = float(calibrator.a_)
        spec["b"] = float(calibrator.b_)
    return pipeline, spec


def export_serving(model: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    """(serving.json content, extra files) for a fitted (calibrated) Pipeline of
    training.pipeline."""
    pipeline, calibration = _export_calibration(model)
    steps = dict(pipeline.named_steps)
    _expect(list(steps) == ["preprocess", "select", "model"], f"steps {list(steps)}")
    transformers = {name: (est, cols) for name, est, cols in steps["preprocess"].transformers_}
    numeric, numeric_cols = transformers["numeric"]
    categorical, cat_cols = transformers["type"]
    _expect(list(numeric_cols) == list(F.NUMERIC_NAMES), "numeric column order")
    _expect(list(cat_cols) == [F.PRODUCT_TYPE.name], "categorical column")
    num = numeric.named_steps
    _expect(list(num) == ["impute", "engineer", "clip", "scale"], f"numeric steps {list(num)}")
    _expect(num["clip"].columns == len(F.NUMERIC_NAMES), "clipping of the raw readings only")
    scaler = num["scale"]
    onehot = categorical.named_steps["onehot"]
    _expect(
        [str(c) for c in onehot.categories_[0]] == list(F.PRODUCT_TYPE.categories),
        "one-hot categories",
    )
    _expect(onehot.drop_idx_ is None, "one-hot drop")
    spec: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "numeric": {
            "names": list(F.NUMERIC_NAMES),
            "fill": _floats(num["impute"].statistics_),
            "lower": _floats(num["clip"].lower_),
            "upper": _floats(num["clip"].upper_),
            "engineered": list(F.ENGINEERED_NAMES),
            "mean": _floats(scaler.mean_) if scaler.with_mean else None,
            "scale": _floats(scaler.scale_) if scaler.with_std else None,
        },
        "categories": list(F.PRODUCT_TYPE.categories),
        "support": [int(i) for i in steps["select"].get_support(indices=True)],
    }
    if calibration is not None:
        spec["calibration"] = calibration
    estimator = steps["model"]
    _expect(list(getattr(estimator, "classes_", [])) == [0, 1], "binary 0/1 classes")
    name = type(estimator).__name__
    files: dict[str, bytes] = {}
    if name == "LogisticRegression":
        spec["estimator"] = {
            "kind": "logistic",
            "coef": _floats(estimator.coef_[0]),
            "intercept": float(estimator.intercept_[0]),
        }
    elif name in ("HistGradientBoostingClassifier", "RandomForestClassifier"):
        import treelite

        from training.tree_onnx import TreeExportError, from_treelite

        try:
            files[TREES_FILE], postprocessor, base_score = from_treelite(
                treelite.sklearn.import_model(estimator)
            )
        except TreeExportError as exc:
            raise UnsupportedPipelineError(str(exc)) from exc
        spec["estimator"] = {
            "kind": "trees",
            "file": TREES_FILE,
            "source": name,
            "postprocessor": postprocessor,
            "base_score": base_score,
            "treelite_version": treelite.__version__,
            "onnxruntime_version": quiet_onnxruntime().__version__,
            # scikit-learn's decision trees compare float32 inputs; HGB compares float64
            "input_float32": name == "RandomForestClassifier",
        }
    else:
        raise UnsupportedPipelineError(f"estimator {name}")
    return spec, files


def _array(values: list[float] | None) -> np.ndarray | None:
    return None if values is None else np.asarray(values, dtype=float)


class CompiledModel:
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
    def from_bundle_dir(cls, spec: dict[str, Any], bundle_dir: Path) -> CompiledModel:
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


def check_parity(pipeline: Any, model: CompiledModel, frame: Any) -> float:
    """Largest probability gap between the serving form and the Pipeline on `frame`."""
    numeric = frame[list(F.NUMERIC_NAMES)].to_numpy(dtype=float)
    codes = np.asarray([TYPE_CODES[v] for v in frame[F.PRODUCT_TYPE.name]], dtype=np.intp)
    fast = model.predict_proba(numeric, codes)
    slow = pipeline.predict_proba(frame[list(F.FEATURE_NAMES)])[:, 1]
    return float(np.max(np.abs(fast - slow)))
