"""Train/serve parity: the API and the serving form give the Pipeline's probabilities."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from model import features as F
from model.bundle import SERVING_FILE, load_bundle
from model.serving_form import ServingForm
from tests.conftest import train_small
from training import data as D
from training.export import check_parity, export_serving

ROWS = D.generate(400, 77)[list(F.FEATURE_NAMES)]


PARITY = 1e-12  # the serving form replays the calibrated Pipeline to rounding
# readings above the old 2,194 rpm clip, at both sides of the 3,500 W rule, and at the bounds
EXTREME = pd.DataFrame(
    {
        F.PRODUCT_TYPE.name: ["L", "M", "H", "L", "M", "H", "L", "M"],
        F.AIR_TEMPERATURE.name: [300.0, 298.1, 303.0, 250.0, 350.0, 300.0, 301.2, 299.0],
        F.PROCESS_TEMPERATURE.name: [310.0, 306.5, 313.0, 250.0, 370.0, 309.0, 309.5, 310.0],
        F.ROTATIONAL_SPEED.name: [2700.0, 2700.0, 2886.0, 0.0, 5000.0, 1300.0, 1379.0, 2300.0],
        F.TORQUE.name: [11.0, 13.5, 4.0, 0.0, 150.0, 70.0, 55.0, 15.0],
        F.TOOL_WEAR.name: [10.0, 200.0, 250.0, 0.0, 400.0, 230.0, 100.0, 0.0],
    }
)


def test_api_probabilities_equal_pipeline(client: TestClient, bundle_path: Path) -> None:
    pipeline = load_bundle(bundle_path).pipeline
    expected = pipeline.predict_proba(ROWS)[:, 1]
    threshold = load_bundle(bundle_path).threshold
    body = client.post("/v1/predict", json={"instances": ROWS.to_dict(orient="records")}).json()
    served = np.array([p["failure_probability"] for p in body["predictions"]])
    np.testing.assert_allclose(served, expected, rtol=0, atol=PARITY)
    assert [p["failure"] for p in body["predictions"]] == list(expected >= threshold)
    # every decision carries the threshold it was made with
    assert {p["threshold"] for p in body["predictions"]} == {threshold}


def _calibrated(estimator: str, method: str) -> Any:
    from sklearn.calibration import CalibratedClassifierCV

    from training.pipeline import build_pipeline, candidate_estimators

    model, _grid = candidate_estimators(0)[estimator]
    if estimator == "random_forest":
        model.set_params(n_estimators=20, max_depth=8)
    frame = D.generate(3000, 5)
    calibrated = CalibratedClassifierCV(build_pipeline(model), method=method, cv=3, ensemble=False)
    return calibrated.fit(frame[list(F.FEATURE_NAMES)], frame[F.TARGET])


@pytest.mark.slow  # fits six calibrated models on 3,000 rows
@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
@pytest.mark.parametrize(
    "estimator", ["logistic_regression", "random_forest", "hist_gradient_boosting"]
)
def test_calibrated_serving_form_matches_to_1e_12(estimator: str, method: str) -> None:
    """The exported calibration (isotonic knots / sigmoid coefficients on the estimator's
    margin or probability) replays scikit-learn's CalibratedClassifierCV exactly."""
    model = _calibrated(estimator, method)
    spec, files = export_serving(model)
    assert spec["format"] == 3
    assert spec["calibration"]["method"] == method
    compiled = ServingForm(spec, files)
    assert compiled.calibration == method
    assert check_parity(model, compiled, pd.concat([ROWS, EXTREME], ignore_index=True)) <= PARITY


@pytest.mark.slow
@pytest.mark.parametrize(
    "estimator", ["logistic_regression", "random_forest", "hist_gradient_boosting"]
)
def test_serving_form_matches_pipeline_for_every_candidate(estimator: str, tmp_path: Path) -> None:
    from training.evaluate import QualityGate

    result = train_small(
        tmp_path,
        rows=3000,
        candidates=(estimator,),
        gate=QualityGate(0.5, 0.05, 0.0, 1.0, 1.0, 10.0),
    )
    assert result.bundle_path is not None
    assert (result.bundle_path / SERVING_FILE).is_file()
    bundle = load_bundle(result.bundle_path)
    spec, files = export_serving(bundle.pipeline)
    model = ServingForm(spec, files)
    extreme = ROWS.copy()
    extreme.loc[:5, F.TORQUE.name] = [0.0, 150.0, 0.0, 150.0, 75.0, 1.0]
    extreme = pd.concat([extreme, EXTREME], ignore_index=True)
    assert check_parity(bundle.pipeline, model, extreme) <= PARITY
    served = ServingForm.from_bundle_dir(bundle.serving or {}, result.bundle_path)
    assert served.calibration == bundle.metadata["calibration"]["method"] != "none"
    assert check_parity(bundle.pipeline, served, ROWS) <= PARITY


@pytest.mark.slow  # a fresh interpreter loading the bundle
def test_serving_a_bundle_loads_no_training_library(bundle_path: Path) -> None:
    """The serving form needs numpy and ONNX Runtime only: fast start, small image surface."""
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; from prometheus_client import CollectorRegistry; "
        "from service.metrics import ServiceMetrics; from service.predictor import Predictor; "
        f"p = Predictor.load(Path({str(bundle_path)!r}), ServiceMetrics(CollectorRegistry())); "
        "p.warm_up(); print(p.inference_path); "
        "bad = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'sklearn', 'scipy', 'pandas', 'skops', 'treelite', 'onnx', 'mlflow'}); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == "serving-form-HistGradientBoostingClassifier"


def test_a_format_2_serving_form_still_serves() -> None:
    """Bundles written before calibration (format 2: clip every reading, then engineer)."""
    from sklearn.linear_model import LogisticRegression

    from training.pipeline import EngineeredFeatures, IQRClipper, build_pipeline

    pipeline = build_pipeline(LogisticRegression(max_iter=2000))
    numeric = pipeline.named_steps["preprocess"].transformers[0][1]
    numeric.steps[1:3] = [("clip", IQRClipper()), ("engineer", EngineeredFeatures())]
    frame = D.generate(2000, 3)
    pipeline.fit(frame[list(F.FEATURE_NAMES)], frame[F.TARGET])
    fitted = pipeline.named_steps["preprocess"].named_transformers_["numeric"].named_steps
    model = pipeline.named_steps["model"]
    spec = {
        "format": 2,
        "numeric": {
            "names": list(F.NUMERIC_NAMES),
            "fill": fitted["impute"].statistics_.tolist(),
            "lower": fitted["clip"].lower_.tolist(),
            "upper": fitted["clip"].upper_.tolist(),
            "engineered": list(F.ENGINEERED_NAMES),
            "mean": fitted["scale"].mean_.tolist(),
            "scale": fitted["scale"].scale_.tolist(),
        },
        "categories": list(F.PRODUCT_TYPE.categories),
        "support": pipeline.named_steps["select"].get_support(indices=True).tolist(),
        "estimator": {
            "kind": "logistic",
            "coef": model.coef_[0].tolist(),
            "intercept": float(model.intercept_[0]),
        },
    }
    compiled = ServingForm(spec, {})
    assert compiled.calibration == "none"
    assert check_parity(pipeline, compiled, pd.concat([ROWS, EXTREME], ignore_index=True)) <= 1e-12
