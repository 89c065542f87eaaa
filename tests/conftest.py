"""Shared fixtures: one small real bundle trained once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from training import data as D
from training.evaluate import QualityGate
from training.train import TrainConfig, TrainResult, train

FIXTURE_ROWS = 6000
FIXTURE_SEED = 11


def train_small(
    tmp: Path,
    rows: int = FIXTURE_ROWS,
    seed: int = FIXTURE_SEED,
    frame: pd.DataFrame | None = None,
    gate: QualityGate | None = None,
    candidates: tuple[str, ...] = ("hist_gradient_boosting",),
    calibration: tuple[str, ...] = ("isotonic", "sigmoid"),
) -> TrainResult:
    """Train a real bundle quickly (one candidate) into tmp/models."""
    config = TrainConfig(
        seed=seed,
        candidates=candidates,
        calibration=calibration,
        calibration_folds=3,  # 5 by default; 3 keeps the session fixture fast
        n_jobs=1,
        gate=gate or QualityGate(min_roc_auc=0.9, min_pr_auc=0.5, min_recall=0.3),
    )
    data = frame if frame is not None else D.generate(rows, seed)
    return train(data, "test", tmp / "models", tmp / "reports", config, progress=lambda _m: None)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    """A real bundle, trained once for the whole session."""
    return train_small(tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="session")
def bundle_path(trained: TrainResult) -> Path:
    assert trained.bundle_path is not None
    return trained.bundle_path


@pytest.fixture(scope="session")
def service_settings(bundle_path: Path) -> Any:
    from service.config import Settings

    return Settings(
        model_dir=bundle_path.parent,
        log_format="json",
        drift_min_readings=10,
        drift_update_seconds=0.01,
        drift_window=500,
        prediction_log_sample_rate=0.0,
    )


@pytest.fixture
def client(service_settings: Any) -> Iterator[Any]:
    """The real app (real bundle, real lifespan) behind a TestClient."""
    from fastapi.testclient import TestClient

    from service.main import create_app

    with TestClient(create_app(service_settings), raise_server_exceptions=False) as test_client:
        yield test_client


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` in an exposition text."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total
