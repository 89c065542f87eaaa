"""Export a fitted Pipeline to the bundle's serving form (model/serving_form.py reads it).

`export_serving` reads the fitted, calibrated model of training.pipeline and writes the
preprocessing parameters, the estimator (coefficients, or trees as ONNX via training/tree_onnx.py)
and the calibration; `check_parity` is how training refuses a bundle whose serving form
disagrees with Pipeline.predict_proba.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from model import features as F
from model.serving_form import (
    CALIBRATION_METHODS,
    FORMAT_VERSION,
    TREES_FILE,
    TYPE_CODES,
    ServingForm,
    quiet_onnxruntime,
)

PARITY_TOLERANCE = 1e-9  # training refuses a bundle beyond this; tests/contract hold 1e-12


class UnsupportedPipelineError(Exception):
    """The Pipeline has a step the exporter does not know; the service uses the Pipeline."""


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


def check_parity(pipeline: Any, model: ServingForm, frame: Any) -> float:
    """Largest probability gap between the serving form and the Pipeline on `frame`."""
    numeric = frame[list(F.NUMERIC_NAMES)].to_numpy(dtype=float)
    codes = np.asarray([TYPE_CODES[v] for v in frame[F.PRODUCT_TYPE.name]], dtype=np.intp)
    fast = model.predict_proba(numeric, codes)
    slow = pipeline.predict_proba(frame[list(F.FEATURE_NAMES)])[:, 1]
    return float(np.max(np.abs(fast - slow)))
