"""The bundle's serving form: a fitted Pipeline exported so that predicting needs no scikit-learn.

    serving.json     preprocessing parameters (exact: JSON floats round-trip) and the estimator
    model.onnx       tree ensembles as one float64 ONNX TreeEnsemble node (no pickle, no code)

`export_serving` (training side) reads the fitted Pipeline; `CompiledModel` (serving side)
replays the same float64 operations in the same order (imputation, clipping, engineered
features, scaling, one-hot, selection) and runs trees in ONNX Runtime (training/tree_onnx.py):
all trees for a whole batch in one C++ call instead of scikit-learn's per-tree Python loop, and
a service that starts without importing scikit-learn, SciPy or pandas. Training refuses to
write a bundle whose serving form disagrees with Pipeline.predict_proba (check_parity);
tests/contract proves it again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from training import features as F

TREES_FILE = "model.onnx"
FORMAT_VERSION = 2  # 1 carried a treelite checkpoint
PARITY_TOLERANCE = 1e-6
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


def export_serving(pipeline: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    """(serving.json content, extra files) for a fitted Pipeline from training.pipeline."""
    steps = dict(pipeline.named_steps)
    _expect(list(steps) == ["preprocess", "select", "model"], f"steps {list(steps)}")
    transformers = {name: (est, cols) for name, est, cols in steps["preprocess"].transformers_}
    numeric, numeric_cols = transformers["numeric"]
    categorical, cat_cols = transformers["type"]
    _expect(list(numeric_cols) == list(F.NUMERIC_NAMES), "numeric column order")
    _expect(list(cat_cols) == [F.PRODUCT_TYPE.name], "categorical column")
    num = numeric.named_steps
    _expect(list(num) == ["impute", "clip", "engineer", "scale"], f"numeric steps {list(num)}")
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
        import onnxruntime
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
            "onnxruntime_version": onnxruntime.__version__,
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
        if spec.get("format") != FORMAT_VERSION:
            raise ServingFormError(f"serving form format {spec.get('format')} is not supported")
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
        estimator = spec["estimator"]
        self.kind = str(estimator.get("source", estimator["kind"]))
        self._model = _load_estimator(estimator, blobs, features=len(self._support))

    @classmethod
    def from_bundle_dir(cls, spec: dict[str, Any], bundle_dir: Path) -> CompiledModel:
        """Load the serving form's files from a (verified) bundle directory."""
        names = [spec["estimator"]["file"]] if "file" in spec.get("estimator", {}) else []
        return cls(spec, {name: (bundle_dir / name).read_bytes() for name in names})

    def transform(self, numeric: np.ndarray, type_codes: np.ndarray) -> np.ndarray:
        X = np.where(np.isnan(numeric), self._fill, numeric)
        X = F.add_engineered(np.clip(X, self._lower, self._upper))
        if self._mean is not None:
            X = X - self._mean
        if self._scale is not None:
            X = X / self._scale
        X = np.hstack([X, self._eye[type_codes]])
        return np.ascontiguousarray(X[:, self._support])

    def predict_proba(self, numeric: np.ndarray, type_codes: np.ndarray) -> np.ndarray:
        return self._model(self.transform(numeric, type_codes))


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

        def logistic(X: np.ndarray) -> np.ndarray:
            return _expit(X @ coef + intercept)

        return logistic
    if spec["kind"] == "trees":
        return OnnxTrees(
            blobs[spec["file"]],
            features=features,
            postprocessor=str(spec["postprocessor"]),
            base_score=float(spec["base_score"]),
            as_float32=bool(spec.get("input_float32", False)),
        )
    raise ServingFormError(f"unknown estimator kind {spec['kind']!r}")


class OnnxTrees:
    """The ensemble in ONNX Runtime: one thread, no spinning (one worker process per core)."""

    def __init__(
        self, model: bytes, features: int, postprocessor: str, base_score: float, as_float32: bool
    ) -> None:
        import onnxruntime

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

    def __call__(self, X: np.ndarray) -> np.ndarray:
        if self._as_float32:  # scikit-learn's decision trees compare float32 inputs
            X = X.astype(np.float32).astype(np.float64)
        raw = self._session.run(None, {self._input: X})[0][:, 0] + self._base_score
        return _expit(raw) if self._sigmoid else np.asarray(raw)


def check_parity(pipeline: Any, model: CompiledModel, frame: Any) -> float:
    """Largest probability gap between the serving form and the Pipeline on `frame`."""
    numeric = frame[list(F.NUMERIC_NAMES)].to_numpy(dtype=float)
    codes = np.asarray([TYPE_CODES[v] for v in frame[F.PRODUCT_TYPE.name]], dtype=np.intp)
    fast = model.predict_proba(numeric, codes)
    slow = pipeline.predict_proba(frame[list(F.FEATURE_NAMES)])[:, 1]
    return float(np.max(np.abs(fast - slow)))
