"""Shared fixtures: two real bundles, each trained at most once per test session.

- `bundle_path` / `service_settings` / `client`: a bundle trained by the project's own
  `training.train` on 2,000 rows with one fixed setting (no tuning grid), 2-fold sigmoid
  calibration, no report plots and no attributions: a real Pipeline, a
  real serving form that passed the parity check, a verified manifest, in about a second, once
  per run (shared by the test workers). Unit, integration and contract tests use it: they test
  code paths, not how good the model is.
- `trained` / `real_bundle_path` / `real_client`: the real (tuned, calibrated) training on
  6,000 rows, for tests that assert model quality: the model tier and the canary analysis
  (a real stable model against real retrains), both marked slow.
"""

from __future__ import annotations

import ast
import fcntl
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import pandas as pd

    from training.evaluate import QualityGate
    from training.train import TrainResult

# training (scikit-learn, pandas) is imported inside the functions: the pytest-xdist
# controller loads this file too, and would import it for nothing before starting the workers


def module_markers(path: Path) -> set[str]:
    """The marker names a test module applies to all its tests (`pytestmark = pytest.mark.x`
    or a list of them), read from its source without importing it."""
    for node in ast.parse(path.read_bytes()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "pytestmark" for target in node.targets
        ):
            values = node.value.elts if isinstance(node.value, ast.List) else [node.value]
            return {
                value.attr
                for value in values
                if isinstance(value, ast.Attribute)
                and isinstance(value.value, ast.Attribute)
                and value.value.attr == "mark"
            }
    return set()


def deselects_all(expression: str, markers: set[str]) -> bool:
    """Whether a -m expression deselects every test of a module whose tests all carry
    `markers`, whatever markers its tests add: every set of the expression's other names is
    tried (names it does not mention cannot change its value)."""
    from itertools import combinations

    from _pytest.mark.expression import Expression  # pytest's own -m grammar

    compiled = Expression.compile(expression)
    named = set(re.findall(r"[A-Za-z_][\w-]*", expression)) - {"and", "or", "not"}
    others = sorted(named - markers)
    choices = (
        markers.union(added)
        for size in range(len(others) + 1)
        for added in combinations(others, size)
    )
    return not any(compiled.evaluate(_member_of(chosen)) for chosen in choices)


def _member_of(names: set[str]) -> Callable[..., bool]:
    return lambda name, **_kwargs: name in names


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A module whose every test the -m expression deselects is not even imported: the fast
    tier (`make test-fast`) would otherwise import training, skops, Docker and Locust helpers
    for tests it never runs (~3 s per worker)."""
    expression = config.option.markexpr
    if not expression or not collection_path.name.startswith("test_"):
        return None
    if collection_path.suffix != ".py" or not (markers := module_markers(collection_path)):
        return None
    return True if deselects_all(expression, markers) else None


FIXTURE_ROWS = 6000
FIXTURE_SEED = 11
TINY_ROWS = 2000
# The one setting the tiny bundle fits: few small trees. No class weighting: sample-weighted
# binning would take most of the time. 2,000 rows: the drift reference (the 1,200 training
# rows) stays calm enough for the drift tests; fewer rows save little.
TINY_SETTING = {
    "model__max_iter": [15],
    "model__max_leaf_nodes": [7],
    "model__class_weight": [None],
}


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
    from training import data as D
    from training.evaluate import QualityGate
    from training.train import TrainConfig, train

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


def _one_setting(seed: int) -> dict[str, tuple[Any, dict[str, list[Any]]]]:
    """The histogram gradient boosting candidate with a single setting instead of its grid."""
    from training.pipeline import candidate_estimators

    estimator, _grid = candidate_estimators(seed)["hist_gradient_boosting"]
    return {"hist_gradient_boosting": (estimator, TINY_SETTING)}


def _no_plots(
    model: Any, X: Any, y: Any, scores: Any, threshold: float, out_dir: Path, seed: int
) -> list[Path]:
    """In place of `write_plots`: report PNGs are never part of a bundle, and matplotlib would
    be half the tiny bundle's time."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return []


def train_tiny(tmp: Path, rows: int = TINY_ROWS, seed: int = FIXTURE_SEED) -> TrainResult:
    """A real bundle in about a second: `training.train` end to end (validation, one fit per
    fold, calibration, threshold, serving-form export and parity check, bundle write), with
    one setting instead of the tuning grid and no report plots. No quality gate: it is for
    code paths, not for model quality."""
    from training import data as D
    from training import train as T
    from training.evaluate import QualityGate

    config = T.TrainConfig(
        seed=seed,
        cv_folds=2,
        candidates=("hist_gradient_boosting",),
        calibration=("sigmoid",),
        calibration_folds=2,
        n_jobs=1,
        explain=False,  # shap's import alone takes seconds; the explainer tests use `trained`
        gate=QualityGate(
            min_roc_auc=0.0,
            min_pr_auc=0.0,
            min_recall=0.0,
            max_brier=1.0,
            max_ece=1.0,
            max_log_loss=float("inf"),
        ),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(T, "candidate_estimators", _one_setting)
        patch.setattr(T, "write_plots", _no_plots)
        result = T.train(
            D.generate(rows, seed), "tiny", tmp / "models", tmp / "reports", config, lambda _m: None
        )
    assert result.bundle_path is not None, result.gate_failures
    return result


@pytest.fixture(scope="session")
def bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny real bundle, trained once per run: the first test worker that needs it trains
    it, the others wait for it and share it (tests that alter a bundle alter a copy; loading
    verifies the manifest, so a changed shared bundle fails every test that loads it)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's directory, shared by its workers
    written = root / "tiny-bundle-path"
    with (root / "tiny.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not written.exists():
            path = train_tiny(root / "tiny").bundle_path
            assert path is not None
            written.write_text(str(path))
        return Path(written.read_text())


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    """The real bundle (tuned, calibrated), trained once for the whole session."""
    return train_small(tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="session")
def real_bundle_path(trained: TrainResult) -> Path:
    assert trained.bundle_path is not None
    return trained.bundle_path


def _settings(bundle: Path) -> Any:
    from service.config import Settings

    return Settings(
        model_dir=bundle.parent,
        log_format="json",
        drift_min_readings=10,
        drift_update_seconds=0.01,
        drift_window=500,
        prediction_log_sample_rate=0.0,
    )


@pytest.fixture(scope="session")
def service_settings(bundle_path: Path) -> Any:
    """Settings serving the tiny bundle."""
    return _settings(bundle_path)


def _client(settings: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from service.main import create_app

    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def client(service_settings: Any) -> Iterator[Any]:
    """The real app (tiny real bundle, real lifespan) behind a TestClient."""
    yield from _client(service_settings)


@pytest.fixture
def real_client(real_bundle_path: Path) -> Iterator[Any]:
    """The real app serving the real bundle, for assertions about model quality."""
    yield from _client(_settings(real_bundle_path))


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` in an exposition text."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total
