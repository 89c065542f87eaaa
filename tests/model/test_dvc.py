"""The DVC pipeline (dvc.yaml, params.yaml): its params are the code's defaults, and `dvc repro`
on a fresh clone builds a bundle and re-runs only the stages a changed param reaches."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from model.bundle import list_bundles, verify_bundle
from training.__main__ import app
from training.pipeline import candidate_estimators
from training.train import PARAM_KEYS, TrainConfig, apply_params

ROOT = Path(__file__).resolve().parents[2]
# what a clone needs to run the pipeline: the committed files dvc.yaml reads and writes beside
PIPELINE_FILES = (
    "dvc.yaml",
    "params.yaml",
    ".dvc/config",
    ".dvc/.gitignore",
    ".dvcignore",
    ".gitignore",
    "model",
    "training",
)


def params() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "params.yaml").read_text()))


def cli_default(command: str, option: str) -> Any:
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    return next(p.default for p in group.commands[command].params if p.name == option)


def test_params_yaml_holds_the_code_defaults() -> None:
    """`dvc repro` trains what `make train` trains: change both or neither."""
    config = TrainConfig()
    assert params()["train"] == {
        "seed": config.seed,
        "cv_folds": config.cv_folds,
        "cost_ratio": config.cost_ratio,
        "calibration": list(config.calibration),
        "calibration_folds": config.calibration_folds,
        "candidates": list(config.candidates),
        "grids": {name: grid for name, (_, grid) in candidate_estimators(config.seed).items()},
        "gate": asdict(config.gate),
    }
    assert set(params()["train"]) == set(PARAM_KEYS)
    for stage in ("generate", "evaluate"):
        assert params()[stage] == {k: cli_default(stage, k) for k in ("rows", "seed")}


def test_apply_params_overrides_and_refuses_typos() -> None:
    config = apply_params(
        TrainConfig(), {"seed": 3, "calibration": ["sigmoid"], "gate": {"min_pr_auc": 0.5}}
    )
    assert config == replace(
        TrainConfig(),
        seed=3,
        calibration=("sigmoid",),
        gate=replace(TrainConfig().gate, min_pr_auc=0.5),
    )
    grid = {"model__C": [1.0]}
    assert apply_params(TrainConfig(), {"grids": {"logistic_regression": grid}}).grids == {
        "logistic_regression": grid
    }
    for bad, message in (
        ({"sed": 1}, "unknown training params"),
        ({"gate": {"min_prauc": 0.5}}, "unknown gate limits"),
        ({"grids": {"svm": {}}}, "unknown candidates"),
    ):
        with pytest.raises(ValueError, match=message):
            apply_params(TrainConfig(), bad)


def test_train_cli_options_win_over_the_params_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[TrainConfig] = []

    def capture(*args: Any, **kwargs: Any) -> None:
        seen.append(args[4])
        raise typer.Exit(9)

    monkeypatch.setattr("training.train.train", capture)
    file = tmp_path / "params.yaml"
    file.write_text(yaml.safe_dump({"train": {"seed": 3, "gate": {"min_roc_auc": 0.8}}}))
    args = ["train", "--rows", "200", "--params", str(file), "--seed", "5", "--max-ece", "0.1"]
    assert CliRunner().invoke(app, args).exit_code == 9
    (config,) = seen
    assert config.seed == 5  # the command line wins over the file
    assert config.gate == replace(TrainConfig().gate, min_roc_auc=0.8, max_ece=0.1)
    assert config.cost_ratio == TrainConfig().cost_ratio  # neither: the default


def small_params(path: Path, evaluate_seed: int) -> None:
    """A run of a few seconds: 2,000 rows, one linear model, limits it can meet."""
    values = params()
    values["generate"]["rows"] = 2000
    values["train"].update(
        candidates=["logistic_regression"],
        calibration=["sigmoid"],
        grids={"logistic_regression": {"model__C": [1.0], "select__k": ["all"]}},
    )
    values["train"]["gate"].update(
        min_roc_auc=0.8, min_pr_auc=0.2, max_brier=0.05, max_ece=0.05, max_log_loss=0.2
    )
    values["evaluate"].update(rows=1000, seed=evaluate_seed)
    path.write_text(yaml.safe_dump(values, sort_keys=False))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_dvc_repro_on_a_fresh_clone(tmp_path: Path) -> None:
    source, clone = tmp_path / "source", tmp_path / "clone"
    for name in PIPELINE_FILES:  # the working tree, not HEAD: what this change commits
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    git += ["-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q", str(source)], check=True)
    subprocess.run([*git, "-C", str(source), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(source), "commit", "-qm", "pipeline"], check=True)
    subprocess.run(["git", "clone", "-q", str(source), str(clone)], check=True)
    small_params(clone / "params.yaml", evaluate_seed=7)
    # the stages' `python` is this interpreter; MLflow tracking (tests/model/test_tracking.py)
    # would double the run time
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "PATH": path, "FAULTLINE_TRACK": "0"}

    def dvc(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "dvc", *args],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    first = dvc("repro")
    for stage in ("generate", "validate", "train", "evaluate"):
        assert f"Running stage '{stage}'" in first
    (bundle,) = list_bundles(clone / "artifacts/pipeline/model")
    verify_bundle(bundle)
    assert "up to date" in dvc("status")
    (workspace,) = json.loads(dvc("metrics", "show", "--json")).values()
    evaluated = workspace["data"]["artifacts/pipeline/evaluate.json"]["data"]
    assert evaluated["version"] == bundle.name and evaluated["gate_passed"] is True
    assert (clone / "artifacts/pipeline/evaluation/pr_curve.png").is_file()

    small_params(clone / "params.yaml", evaluate_seed=8)  # read by evaluate only
    assert set(yaml.safe_load(dvc("status", "--json"))) == {"evaluate"}
    second = dvc("repro")
    assert "Running stage 'evaluate'" in second
    for stage in ("generate", "validate", "train"):
        assert f"Stage '{stage}' didn't change, skipping" in second
        assert f"Running stage '{stage}'" not in second
    assert list_bundles(clone / "artifacts/pipeline/model") == [bundle]

    dvc("push")  # the default remote: artifacts/dvc-remote of the clone
    assert any((clone / "artifacts/dvc-remote").rglob("*"))
