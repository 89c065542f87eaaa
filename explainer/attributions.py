"""Exact per-reading attributions of a bundle's raw score, on the raw readings a person knows.

What is explained is the base Pipeline's raw score, the value the probability calibrator
takes (sklearn's CalibratedClassifierCV asks for decision_function first, else predict_proba):
log-odds for histogram gradient boosting and logistic regression, the positive-class
probability for a random forest. The calibrated probability is a monotone function of it.

shap computes the attributions on the matrix the estimator sees (after `preprocess` and
`select`): TreeExplainer (path-dependent, exact) for tree ensembles, LinearExplainer for
logistic regression. They are then mapped back to FEATURE_NAMES: a scaled or clipped reading
keeps its own, the one-hot columns go to product_type, each engineered feature is split
equally among the readings it is computed from (model.features.ENGINEERED_FROM), and a column
SelectKBest dropped has none. Every column's share goes somewhere, so for every reading
base_value + values.sum() == raw score; explain() checks it on every call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model import features as F
from model.bundle import load_bundle

LOG_ODDS = "log-odds"
PROBABILITY = "probability"
# far above float64 round-off on a sum of a few hundred tree values, far below any real gap
ADDITIVITY_TOLERANCE = 1e-6
_ONE_HOT = {f"{F.PRODUCT_TYPE.name}_{c}": F.PRODUCT_TYPE.name for c in F.PRODUCT_TYPE.categories}


class UnsupportedModelError(ValueError):
    """The Pipeline holds an estimator or a transformed column this module cannot attribute."""


@dataclass(frozen=True)
class Attributions:
    """The attributions of a batch of readings, in the readings' order."""

    model_version: str
    output: str  # LOG_ODDS | PROBABILITY: the unit of base_value, raw_scores and values
    base_value: float  # the expected raw score over the training data
    raw_scores: np.ndarray  # (n,) the base Pipeline's raw score
    values: np.ndarray  # (n, len(features)) base_value + values.sum(axis=1) == raw_scores
    probabilities: np.ndarray  # (n,) calibrated, as served
    features: tuple[str, ...] = F.FEATURE_NAMES


def raw_feature_map(columns: Sequence[str]) -> np.ndarray:
    """(len(columns), len(FEATURE_NAMES)) shares: how each transformed column's attribution
    is divided among the raw features. Every row sums to 1."""
    index = {name: i for i, name in enumerate(F.FEATURE_NAMES)}
    shares = np.zeros((len(columns), len(F.FEATURE_NAMES)))
    for row, column in enumerate(columns):
        if column in F.NUMERIC_BY_NAME:
            sources: tuple[str, ...] = (column,)
        elif column in F.ENGINEERED_FROM:
            sources = F.ENGINEERED_FROM[column]
        elif column in _ONE_HOT:
            sources = (_ONE_HOT[column],)
        else:
            raise UnsupportedModelError(f"no raw feature is known for column {column!r}")
        for source in sources:
            shares[row, index[source]] += 1.0 / len(sources)
    return shares


def readings_frame(numeric: np.ndarray, codes: np.ndarray) -> pd.DataFrame:
    """(numeric in NUMERIC_NAMES order, product type codes) -> the Pipeline's input frame."""
    numeric = np.asarray(numeric, dtype=float)
    codes = np.asarray(codes)
    if numeric.ndim != 2 or numeric.shape[1] != len(F.NUMERIC_NAMES):
        raise ValueError(f"numeric must be (n, {len(F.NUMERIC_NAMES)}), got {numeric.shape}")
    categories = np.asarray(F.PRODUCT_TYPE.categories, dtype=object)
    if codes.shape != (len(numeric),) or not np.isin(codes, np.arange(len(categories))).all():
        raise ValueError(f"codes must be (n,) integers in [0, {len(categories)})")
    frame = pd.DataFrame(numeric, columns=list(F.NUMERIC_NAMES))
    frame.insert(0, F.PRODUCT_TYPE.name, categories[codes.astype(np.intp)])
    return frame


class Attributor:
    """One loaded model and its explainer; build once per process, explain many times."""

    def __init__(
        self, model: Any, model_version: str, product_mix: Sequence[float] | None = None
    ) -> None:
        """`model`: a bundle's CalibratedClassifierCV(ensemble=False) or a bare Pipeline.
        `product_mix`: the product-type shares logistic regression's reference point uses
        (a bundle's reference profile); uniform when None. Trees need no reference data."""
        self._model = model
        self._pipeline = _base_pipeline(model)
        self._transform = self._pipeline[:-1]  # preprocess and select
        self._estimator = self._pipeline[-1]
        columns = [str(c) for c in self._transform.get_feature_names_out()]
        self._shares = raw_feature_map(columns)
        # the calibrator calibrates the last class (sklearn's pos_label for two classes)
        positive = self._model.classes_[-1]
        self._positive = int(np.flatnonzero(self._estimator.classes_ == positive)[0])
        self._decision = hasattr(self._estimator, "decision_function")
        self.output = LOG_ODDS if self._decision else PROBABILITY
        self.model_version = model_version
        self._explainer = _shap_explainer(self._estimator, columns, product_mix)

    @classmethod
    def from_bundle(cls, path: Path) -> Attributor:
        """Verify and load a bundle (model.bundle.load_bundle) and build its explainer."""
        bundle = load_bundle(path)
        mix = bundle.reference["categorical"][F.PRODUCT_TYPE.name]["proportions"]
        return cls(bundle.pipeline, bundle.version, mix)

    def explain(self, numeric: np.ndarray, codes: np.ndarray) -> Attributions:
        """Attributions of readings given as service.predictor.to_arrays makes them."""
        return self.explain_frame(readings_frame(numeric, codes))

    def explain_frame(self, frame: pd.DataFrame) -> Attributions:
        """Attributions of readings as a frame with the FEATURE_NAMES columns (training)."""
        X = np.asarray(self._transform.transform(frame), dtype=float)
        raw = self._raw_score(X)
        columns, base = self._shap(X)
        values = columns @ self._shares
        gap = float(np.max(np.abs(base + values.sum(axis=1) - raw), initial=0.0))
        if gap > ADDITIVITY_TOLERANCE:
            raise UnsupportedModelError(
                f"attributions miss the model's raw score by {gap:.3g}: not exact for "
                f"{type(self._estimator).__name__}"
            )
        return Attributions(
            model_version=self.model_version,
            output=self.output,
            base_value=base,
            raw_scores=raw,
            values=values,
            probabilities=self._calibrated(raw, frame),
        )

    def _calibrated(self, raw: np.ndarray, frame: pd.DataFrame) -> np.ndarray:
        """The served probability; from the raw score when the calibrator is a plain map
        (what _CalibratedClassifier.predict_proba does for two classes), sparing a second pass
        through the preprocessing."""
        pairs = getattr(self._model, "calibrated_classifiers_", None)
        if pairs is None or pairs[0].method not in ("sigmoid", "isotonic"):
            return np.asarray(self._model.predict_proba(frame)[:, -1], dtype=float)
        probabilities = np.asarray(pairs[0].calibrators[0].predict(raw), dtype=float)
        probabilities[(probabilities > 1.0) & (probabilities <= 1.0 + 1e-5)] = 1.0
        return probabilities

    def _raw_score(self, X: np.ndarray) -> np.ndarray:
        if self._decision:
            return np.asarray(self._estimator.decision_function(X), dtype=float)
        return np.asarray(self._estimator.predict_proba(X)[:, self._positive], dtype=float)

    def _shap(self, X: np.ndarray) -> tuple[np.ndarray, float]:
        """(n, transformed columns) attributions of the positive class and the base value."""
        if self._explainer.__class__.__name__ == "TreeExplainer":
            # we check additivity ourselves, against the model's own score, in explain()
            values = np.asarray(self._explainer.shap_values(X, check_additivity=False))
        else:
            values = np.asarray(self._explainer.shap_values(X))
        base = np.ravel(self._explainer.expected_value)
        if values.ndim == 3:  # one output per class (random forest)
            return values[:, :, self._positive], float(base[self._positive])
        return values, float(base[0])  # one output: the positive class's


def _base_pipeline(model: Any) -> Any:
    """The Pipeline whose raw score the calibrator takes (ensemble=False: exactly one)."""
    calibrated = getattr(model, "calibrated_classifiers_", None)
    if calibrated is None:
        return model
    if len(calibrated) != 1:
        raise UnsupportedModelError("a calibrated ensemble has several raw scores; need one")
    return calibrated[0].estimator


def _shap_explainer(estimator: Any, columns: list[str], product_mix: Sequence[float] | None) -> Any:
    """shap's exact explainer for the estimator."""
    import shap

    kind = type(estimator).__name__
    if kind in ("HistGradientBoostingClassifier", "RandomForestClassifier"):
        # path-dependent: exact, needs no background data (the trees' own training counts)
        return shap.TreeExplainer(estimator, feature_perturbation="tree_path_dependent")
    if kind == "LogisticRegression":
        # Reference point: the training mean of every scaled column (0 after StandardScaler)
        # and the product-type mix; value_i = coef_i * (x_i - mean_i)
        mix = np.full(len(_ONE_HOT), 1.0 / len(_ONE_HOT)) if product_mix is None else product_mix
        by_column = dict(zip(_ONE_HOT, np.asarray(mix, dtype=float), strict=True))
        mean = np.array([by_column.get(c, 0.0) for c in columns])
        return shap.LinearExplainer(estimator, (mean, np.eye(len(columns))))
    raise UnsupportedModelError(f"no exact explainer for {kind}")
