"""Train/serve parity: the API and the serving form give the Pipeline's probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import train_small
from training import data as D
from training import features as F
from training.bundle import SERVING_FILE, load_bundle
from training.serving import CompiledModel, check_parity, export_serving

ROWS = D.generate(400, 77)[list(F.FEATURE_NAMES)]


def test_api_probabilities_equal_pipeline(client: TestClient, bundle_path: Path) -> None:
    pipeline = load_bundle(bundle_path).pipeline
    expected = pipeline.predict_proba(ROWS)[:, 1]
    threshold = load_bundle(bundle_path).threshold
    body = client.post("/v1/predict", json={"instances": ROWS.to_dict(orient="records")}).json()
    served = np.array([p["failure_probability"] for p in body["predictions"]])
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-6)
    assert [p["failure"] for p in body["predictions"]] == list(expected >= threshold)


@pytest.mark.slow
@pytest.mark.parametrize(
    "estimator", ["logistic_regression", "random_forest", "hist_gradient_boosting"]
)
def test_serving_form_matches_pipeline_for_every_candidate(estimator: str, tmp_path: Path) -> None:
    from training.evaluate import QualityGate

    result = train_small(
        tmp_path, rows=3000, candidates=(estimator,), gate=QualityGate(0.5, 0.05, 0.0)
    )
    assert result.bundle_path is not None
    assert (result.bundle_path / SERVING_FILE).is_file()
    bundle = load_bundle(result.bundle_path)
    spec, files = export_serving(bundle.pipeline)
    model = CompiledModel(spec, files)
    extreme = ROWS.copy()
    extreme.loc[:5, F.TORQUE.name] = [0.0, 150.0, 0.0, 150.0, 75.0, 1.0]
    assert check_parity(bundle.pipeline, model, extreme) <= 1e-6
    served = CompiledModel.from_bundle_dir(bundle.serving or {}, result.bundle_path)
    assert check_parity(bundle.pipeline, served, ROWS) <= 1e-6


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
    assert result.stdout.splitlines()[0] == "compiled-HistGradientBoostingClassifier"
