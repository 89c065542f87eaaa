"""The Pipeline's own transformers: what a bundle's skops Pipeline needs besides scikit-learn.

Training builds Pipelines with them (training/pipeline.py); loading a bundle's Pipeline (the
reference inference path) needs them importable, so they live here, beside the bundle format,
not in training. Their skops type names are in model.bundle.TRUSTED_TYPES.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from model import features as F


class IQRClipper(TransformerMixin, BaseEstimator):
    """Clip columns to [Q1 - k*IQR, Q3 + k*IQR] learned on the training data.

    k defaults to 3 (only extreme outliers): the failure rules live in the tails of torque,
    speed and wear, so a tighter clip would erase the signal along with sensor glitches.
    `columns`: clip only the first `columns` columns (the raw readings), pass the rest (the
    engineered physics, computed from the unclipped readings) through unchanged; None clips all.
    """

    def __init__(self, k: float = 3.0, columns: int | None = None) -> None:
        self.k = k
        self.columns = columns

    def _clipped(self, X: np.ndarray) -> int:
        columns = getattr(self, "columns", None)  # bundles written before `columns` existed
        return X.shape[1] if columns is None else int(columns)

    def fit(self, X: np.ndarray, y: Any = None) -> IQRClipper:
        X = np.asarray(X, dtype=float)
        q1, q3 = np.nanpercentile(X[:, : self._clipped(X)], [25, 75], axis=0)
        iqr = q3 - q1
        self.lower_ = q1 - self.k * iqr
        self.upper_ = q3 + self.k * iqr
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, ["lower_", "upper_"])
        X = np.array(X, dtype=float)  # a copy: the clip is written in place
        n = self._clipped(X)
        X[:, :n] = np.clip(X[:, :n], self.lower_, self.upper_)
        return X

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        if input_features is not None:
            return np.asarray(input_features, dtype=object)
        names = [*F.NUMERIC_NAMES, *F.ENGINEERED_NAMES][: self.n_features_in_]
        return np.asarray(names, dtype=object)


class EngineeredFeatures(TransformerMixin, BaseEstimator):
    """Append the physics the failure modes depend on: temperature difference, power, strain."""

    def fit(self, X: np.ndarray, y: Any = None) -> EngineeredFeatures:
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return F.add_engineered(np.asarray(X, dtype=float))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        base = list(input_features) if input_features is not None else list(F.NUMERIC_NAMES)
        return np.asarray([*base, *F.ENGINEERED_NAMES], dtype=object)
