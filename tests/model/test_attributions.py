"""Attributions: exact (base value + attributions = the model's raw score), on the raw readings,
zero for what the model never uses, and pointing at the physics the failure rules follow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from explainer.attributions import (
    LOG_ODDS,
    PROBABILITY,
    Attributor,
    UnsupportedModelError,
    raw_feature_map,
    readings_frame,
)
from model import features as F
from model.bundle import load_bundle
from training import data as D
from training.explain import SUMMARY_FILE, dependence_file, top_features
from training.pipeline import build_pipeline
from training.train import TrainResult

TYPE = F.FEATURE_NAMES.index(F.PRODUCT_TYPE.name)
TORQUE = F.FEATURE_NAMES.index(F.TORQUE.name)
EXACT = 1e-9
pytestmark = pytest.mark.slow  # shap's import alone takes seconds; fits several models

readings = st.lists(
    st.tuples(
        st.tuples(*(st.floats(f.minimum, f.maximum) for f in F.NUMERIC_FEATURES)),
        st.integers(0, len(F.PRODUCT_TYPE.categories) - 1),
    ),
    min_size=1,
    max_size=20,
)


def _arrays(batch: list[tuple[tuple[float, ...], int]]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([r for r, _ in batch], dtype=float), np.array([c for _, c in batch])


def _calibrated(
    estimator: Any, frame: pd.DataFrame, select_k: int | str = "all", method: str = "sigmoid"
) -> Any:
    """A calibrated model shaped like a bundle's (ensemble=False: one base Pipeline)."""
    pipeline = build_pipeline(estimator).set_params(select__k=select_k)
    model = CalibratedClassifierCV(pipeline, method=method, cv=2, ensemble=False)
    return model.fit(frame[list(F.FEATURE_NAMES)], frame[F.TARGET].to_numpy(int))


def _small_estimators() -> dict[str, Any]:
    return {
        "hist_gradient_boosting": HistGradientBoostingClassifier(max_iter=15, random_state=0),
        "random_forest": RandomForestClassifier(n_estimators=10, max_depth=8, random_state=0),
        "logistic_regression": LogisticRegression(max_iter=2000),
    }


@pytest.fixture(scope="module")
def attributors(bundle_path: Path) -> dict[str, Attributor]:
    """The tiny real bundle's (histogram gradient boosting, sigmoid calibration) and one per
    estimator, the trees calibrated isotonically."""
    frame = D.generate(2000, 7)
    built = {"bundle": Attributor.from_bundle(bundle_path)}
    for name, estimator in _small_estimators().items():
        method = "sigmoid" if name == "logistic_regression" else "isotonic"
        model = _calibrated(estimator, frame, method=method)
        built[name] = Attributor(model, name, (0.5, 0.3, 0.2))
    return built


def test_engineered_features_map_to_the_readings_they_are_computed_from() -> None:
    """ENGINEERED_FROM names exactly the readings that move each add_engineered column."""
    assert tuple(F.ENGINEERED_FROM) == F.ENGINEERED_NAMES
    base = np.array([[F.NUMERIC_BY_NAME[n].example for n in F.NUMERIC_NAMES]])
    extra = len(F.NUMERIC_NAMES)
    moved: dict[str, set[str]] = {name: set() for name in F.ENGINEERED_NAMES}
    for i, reading in enumerate(F.NUMERIC_NAMES):
        changed = base.copy()
        changed[0, i] *= 1.5
        delta = F.add_engineered(changed)[0, extra:] != F.add_engineered(base)[0, extra:]
        for name in np.asarray(F.ENGINEERED_NAMES)[delta]:
            moved[str(name)].add(reading)
    assert moved == {name: set(sources) for name, sources in F.ENGINEERED_FROM.items()}


def test_each_column_is_shared_out_whole_equally_and_unknown_columns_are_refused() -> None:
    columns = [*F.NUMERIC_NAMES, *F.ENGINEERED_NAMES, "product_type_L", "product_type_H"]
    shares = raw_feature_map(columns)
    assert np.allclose(shares.sum(axis=1), 1.0)
    power = shares[columns.index("power_w")]
    assert power[TORQUE] == power[F.FEATURE_NAMES.index(F.ROTATIONAL_SPEED.name)] == 0.5
    assert shares[-2:, TYPE].tolist() == [1.0, 1.0]
    assert shares[columns.index(F.TOOL_WEAR.name)].tolist() == [
        float(n == F.TOOL_WEAR.name) for n in F.FEATURE_NAMES
    ]
    with pytest.raises(UnsupportedModelError, match="vibration"):
        raw_feature_map([*columns, "vibration"])


@pytest.mark.parametrize(
    "name", ["bundle", "hist_gradient_boosting", "random_forest", "logistic_regression"]
)
def test_base_value_plus_attributions_is_the_models_own_raw_score(
    attributors: dict[str, Attributor], name: str
) -> None:
    attributor = attributors[name]
    model = attributor._model
    pipeline = model.calibrated_classifiers_[0].estimator

    # the bundle's model gets the most examples; the others are there for their explainers
    examples = 20 if name == "bundle" else 8

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(readings)
    def check(batch: list[tuple[tuple[float, ...], int]]) -> None:
        numeric, codes = _arrays(batch)
        result = attributor.explain(numeric, codes)
        frame = readings_frame(numeric, codes)
        if name == "random_forest":
            own = pipeline.predict_proba(frame)[:, 1]
            assert result.output == PROBABILITY
        else:
            own = pipeline.decision_function(frame)
            assert result.output == LOG_ODDS
        assert result.values.shape == (len(batch), len(F.FEATURE_NAMES))
        assert result.features == F.FEATURE_NAMES
        np.testing.assert_allclose(result.raw_scores, own, rtol=0, atol=EXACT)
        total = result.base_value + result.values.sum(axis=1)
        np.testing.assert_allclose(total, result.raw_scores, rtol=0, atol=EXACT)
        served = model.predict_proba(frame)[:, 1]
        np.testing.assert_allclose(result.probabilities, served, rtol=0, atol=1e-12)

    check()


# a constant product type: sklearn warns that its columns are constant, which is the point
CONSTANT = ("ignore:Features .* are constant", "ignore:invalid value encountered in divide")


@pytest.mark.filterwarnings(*CONSTANT)
@pytest.mark.parametrize("name", ["hist_gradient_boosting", "random_forest"])
def test_a_feature_the_trees_never_split_on_gets_exactly_zero(name: str) -> None:
    """Trained where every product is of type L, the trees cannot split on the type: its
    attribution is exactly zero for readings of every type. The same readings on trees trained
    on all types get a nonzero one (the assertion can tell)."""
    frame = D.generate(2000, 3)
    only_l = frame.assign(**{F.PRODUCT_TYPE.name: "L"})
    unused = Attributor(_calibrated(_small_estimators()[name], only_l), "l-only")
    used = Attributor(_calibrated(_small_estimators()[name], frame), "all-types")
    numeric = frame[list(F.NUMERIC_NAMES)].to_numpy(float)[:300]
    codes = np.arange(300) % len(F.PRODUCT_TYPE.categories)
    assert np.all(unused.explain(numeric, codes).values[:, TYPE] == 0.0)
    assert np.any(used.explain(numeric, codes).values[:, TYPE] != 0.0)


@pytest.mark.filterwarnings(*CONSTANT)
def test_columns_selection_dropped_get_zero_and_the_sum_still_holds() -> None:
    """SelectKBest keeps 8 of 11 columns: a constant product type scores lowest, so the three
    one-hot columns go, and logistic regression (which would weigh any column it kept) gives
    product_type nothing."""
    frame = D.generate(2000, 5).assign(**{F.PRODUCT_TYPE.name: "M"})
    model = _calibrated(LogisticRegression(max_iter=2000), frame, select_k=8)
    pipeline = model.calibrated_classifiers_[0].estimator
    kept = pipeline[:-1].get_feature_names_out()
    assert not any(str(c).startswith(F.PRODUCT_TYPE.name) for c in kept), kept
    numeric = D.generate(50, 6)[list(F.NUMERIC_NAMES)].to_numpy(float)
    result = Attributor(model, "k8").explain(numeric, np.arange(50) % 3)
    assert np.all(result.values[:, TYPE] == 0.0)
    total = result.base_value + result.values.sum(axis=1)
    np.testing.assert_allclose(total, result.raw_scores, rtol=0, atol=EXACT)


def test_torque_past_the_overstrain_rule_gets_the_larger_torque_attribution(
    attributors: dict[str, Attributor],
) -> None:
    """Type L fails by overstrain when tool wear x torque > 11,000 min Nm (training/data.py):
    190 min at 60 Nm is 11,400; at 40 Nm, 7,600. Speed 1,400 rpm keeps both clear of the power
    (3.5-9 kW) and heat-dissipation (< 1,380 rpm) rules."""
    air = np.array([298.0, 300.0, 302.0])
    normal = np.column_stack(
        [air, air + 10.0, np.full(3, 1400.0), np.full(3, 40.0), np.full(3, 190.0)]
    )
    strained = normal.copy()
    strained[:, F.NUMERIC_NAMES.index(F.TORQUE.name)] = 60.0
    codes = np.zeros(3, dtype=int)
    attributor = attributors["bundle"]
    calm = attributor.explain(normal, codes)
    strain = attributor.explain(strained, codes)
    assert np.all(strain.values[:, TORQUE] > calm.values[:, TORQUE] + 0.5)
    assert np.all(strain.probabilities > calm.probabilities)


def test_malformed_readings_are_refused(attributors: dict[str, Attributor]) -> None:
    attributor = attributors["bundle"]
    good = np.array([[300.0, 310.0, 1500.0, 40.0, 100.0]])
    with pytest.raises(ValueError, match="numeric"):
        attributor.explain(good[:, :4], np.array([0]))
    with pytest.raises(ValueError, match="codes"):
        attributor.explain(good, np.array([3]))
    with pytest.raises(ValueError, match="codes"):
        attributor.explain(good, np.array([0, 1]))


def test_the_bundle_records_the_explanation_reference(real_bundle_path: Path) -> None:
    """What the explainer process publishes as its reference: computed on the test split,
    with the base value the explainer itself finds."""
    metadata = load_bundle(real_bundle_path).metadata
    explanation = metadata["explanation"]
    attributor = Attributor.from_bundle(real_bundle_path)
    assert explanation["output"] == attributor.output == LOG_ODDS
    assert set(explanation["mean_abs"]) == set(F.FEATURE_NAMES)
    assert all(v >= 0 for v in explanation["mean_abs"].values())
    assert explanation["rows"] == metadata["metrics"]["test"]["rows"]
    reading = np.array([[300.0, 310.0, 1500.0, 40.0, 100.0]])
    base = attributor.explain(reading, np.array([1])).base_value
    assert explanation["base_value"] == pytest.approx(base, abs=EXACT)


def test_training_writes_the_attribution_reports(trained: TrainResult) -> None:
    mean_abs = trained.metadata["explanation"]["mean_abs"]
    expected = [SUMMARY_FILE, *(dependence_file(f) for f in top_features(mean_abs))]
    assert [p.name for p in trained.attribution_plots] == expected
    assert all(
        p.parent == trained.report_dir and p.stat().st_size > 10_000
        for p in trained.attribution_plots
    )
    card = (trained.report_dir / "model_card.md").read_text()
    assert "## Attributions (held-out)" in card
    for name in expected:
        assert f"]({name})" in card
    for feature, value in mean_abs.items():
        assert f"| {feature} | {value:.4f} |" in card
