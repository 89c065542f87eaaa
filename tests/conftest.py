"""Shared fixtures: one small real bundle trained once per test session."""

from __future__ import annotations

from pathlib import Path

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
) -> TrainResult:
    """Train a real bundle quickly (one candidate) into tmp/models."""
    config = TrainConfig(
        seed=seed,
        candidates=candidates,
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
