"""The ONNX tree export answers exactly as scikit-learn, including its awkward corners."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from model.serving_form import OnnxTrees
from training.tree_onnx import TreeExportError, from_treelite

RNG = np.random.default_rng(5)
X = RNG.normal(size=(600, 5))
Y = (X[:, 0] + 0.5 * X[:, 1] ** 2 + RNG.normal(scale=0.5, size=600) > 0.8).astype(int)
X_NAN = X.copy()
X_NAN[RNG.random(X.shape) < 0.1] = np.nan  # HGB learns where missing values go


def _served(estimator: Any, float32: bool) -> OnnxTrees:
    import treelite

    model, postprocessor, base_score = from_treelite(treelite.sklearn.import_model(estimator))
    return OnnxTrees(model, X.shape[1], postprocessor, base_score, as_float32=float32)


@pytest.mark.parametrize(
    ("estimator", "train_x", "float32"),
    [
        (HistGradientBoostingClassifier(max_iter=30, random_state=0), X, False),
        (HistGradientBoostingClassifier(max_iter=30, random_state=0), X_NAN, False),
        # no split has enough samples: every tree is a single leaf
        (HistGradientBoostingClassifier(max_iter=5, min_samples_leaf=400), X, False),
        (RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0), X, True),
        # a stump forest with single-leaf trees mixed in
        (RandomForestClassifier(n_estimators=10, min_samples_split=700, random_state=0), X, True),
    ],
    ids=["hgb", "hgb-missing-values", "hgb-single-leaf", "rf", "rf-single-leaf"],
)
def test_probabilities_equal_scikit_learn(
    estimator: Any, train_x: np.ndarray, float32: bool
) -> None:
    estimator.fit(train_x, Y)
    probe = np.vstack([train_x, RNG.normal(scale=3, size=(200, 5))])
    expected = estimator.predict_proba(probe)[:, 1]
    served = _served(estimator, float32)(np.ascontiguousarray(probe))
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-12)


def test_values_on_a_threshold_go_left_as_in_scikit_learn() -> None:
    estimator = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(X, Y)
    thresholds = [
        node["num_threshold"]
        for predictor in estimator._predictors
        for node in predictor[0].nodes
        if not node["is_leaf"]
    ]
    probe = np.tile(X[:1], (len(thresholds), 1))
    features = [
        int(node["feature_idx"])
        for predictor in estimator._predictors
        for node in predictor[0].nodes
        if not node["is_leaf"]
    ]
    probe[np.arange(len(thresholds)), features] = thresholds  # exactly on each split
    expected = estimator.predict_proba(probe)[:, 1]
    np.testing.assert_allclose(_served(estimator, False)(probe), expected, rtol=0, atol=1e-12)


def test_a_multiclass_forest_is_refused() -> None:
    import treelite

    labels = np.digitize(X[:, 0], [-0.5, 0.5])  # three classes
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, labels)
    with pytest.raises(TreeExportError):
        from_treelite(treelite.sklearn.import_model(forest))


def test_a_model_of_another_width_is_refused() -> None:
    import treelite

    from model.serving_form import ServingFormError

    estimator = HistGradientBoostingClassifier(max_iter=3).fit(X, Y)
    model, postprocessor, base_score = from_treelite(treelite.sklearn.import_model(estimator))
    with pytest.raises(ServingFormError, match="signature"):
        OnnxTrees(model, X.shape[1] + 1, postprocessor, base_score, as_float32=False)
    with pytest.raises(ServingFormError, match="refused"):
        OnnxTrees(b"not an onnx model", X.shape[1], postprocessor, base_score, as_float32=False)


@pytest.mark.parametrize("train_x", [X, X_NAN], ids=["hgb", "hgb-missing-values"])
def test_margin_equals_the_decision_function(train_x: np.ndarray) -> None:
    """Calibration reads HGB's raw score: it must match decision_function, not only after the
    sigmoid (which flattens differences in the tails)."""
    estimator = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(train_x, Y)
    probe = np.vstack([train_x, RNG.normal(scale=3, size=(200, 5))])
    served = _served(estimator, False).margin(np.ascontiguousarray(probe))
    np.testing.assert_allclose(served, estimator.decision_function(probe), rtol=0, atol=1e-12)
