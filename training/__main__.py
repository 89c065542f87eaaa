"""`python -m training`: generate, download, validate, train, evaluate and hash bundles."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from model import features as F
from model.bundle import sha256_file
from training import data as D
from training.gate import QualityGate as QualityGateDefaults

if TYPE_CHECKING:
    from training.train import TrainConfig

app = typer.Typer(
    help="Faultline training CLI: data -> validated Pipeline -> verified bundle.",
    no_args_is_help=True,
    add_completion=False,
)
# Off a terminal (CI, logs), rich would wrap at 80 columns and split lines and paths.
console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

ModelsDir = Annotated[Path, typer.Option(help="Where bundles are written.")]
ArtifactsDir = Annotated[Path, typer.Option(help="Reports and the local MLflow store.")]
Seed = Annotated[int, typer.Option(help="Random seed: same data and seed, same model.")]
MinRocAuc = Annotated[float, typer.Option(help="Quality gate: minimum held-out ROC-AUC.")]
MinPrAuc = Annotated[float, typer.Option(help="Quality gate: minimum held-out PR-AUC.")]
MinRecall = Annotated[
    float, typer.Option(help="Quality gate: minimum held-out recall at the threshold.")
]
MaxBrier = Annotated[float, typer.Option(help="Quality gate: maximum held-out Brier score.")]
MaxEce = Annotated[
    float, typer.Option(help="Quality gate: maximum expected calibration error (10 bins).")
]
MaxLogLoss = Annotated[float, typer.Option(help="Quality gate: maximum held-out log loss.")]
MetricsFile = Annotated[
    Path | None,
    typer.Option(
        "--metrics",
        help="Also write the metrics to this JSON file (a fixed path for `dvc metrics`).",
    ),
]


def _load(data: Path | None, rows: int, seed: int) -> tuple[D.pd.DataFrame, str]:
    if data is None:
        with console.status(f"generating {rows} synthetic rows (seed {seed})"):
            return D.generate(rows, seed), f"synthetic AI4I 2020 generator (seed {seed})"
    if not data.is_file():
        raise typer.BadParameter(f"{data} does not exist", param_hint="--data")
    try:
        frame = D.load_dataset(data)
    except ValueError as exc:  # wrong delimiter, not the UCI format, unreadable CSV
        console.print(f"[red]cannot read {data}:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    _warn_if_not_published(data, frame)
    return frame, f"file {data.name} (sha256 {sha256_file(data)[:16]}...)"


def _warn_if_not_published(path: Path, frame: D.pd.DataFrame) -> None:
    """A file named like the UCI file must have the published row and label counts."""
    mismatch = D.published_mismatch(path, frame)
    if mismatch:
        console.print(f"[yellow]WARNING[/yellow] {mismatch}", highlight=False)


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


def _read_params(path: Path, section: str) -> dict[str, Any]:
    """The `section` mapping of a YAML params file (params.yaml of the DVC pipeline)."""
    import yaml

    if not path.is_file():
        raise typer.BadParameter(f"{path} does not exist", param_hint="--params")
    loaded = yaml.safe_load(path.read_text()) or {}
    value = loaded.get(section, {}) if isinstance(loaded, dict) else None
    if not isinstance(value, dict):
        raise typer.BadParameter(f"'{section}' in {path} is not a mapping", param_hint="--params")
    return value


def _with_params(ctx: typer.Context, config: TrainConfig, path: Path) -> TrainConfig:
    """`config` with the params file's `train` section, except options given on the command
    line: command line, then params file, then the defaults in code."""
    from training.train import apply_params

    # by name: Typer vendors its own click, whose ParameterSource is not click's
    given = {
        n for n in ctx.params if getattr(ctx.get_parameter_source(n), "name", "") == "COMMANDLINE"
    }
    # the options are named like the params keys (seed, cost_ratio, ...; gate: min_roc_auc, ...)
    section = {k: v for k, v in _read_params(path, "train").items() if k not in given}
    if isinstance(section.get("gate"), dict):
        section["gate"] = {k: v for k, v in section["gate"].items() if k not in given}
    try:
        return apply_params(config, section)
    except (TypeError, ValueError) as exc:
        raise typer.BadParameter(f"{path}: {exc}", param_hint="--params") from exc


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="CSV file to write.")] = Path("data/synthetic.csv"),
    rows: Annotated[int, typer.Option(min=2, help="Number of readings.")] = 10_000,
    seed: Seed = 42,
) -> None:
    """Write a synthetic AI4I 2020 dataset (deterministic per seed)."""
    frame = D.generate(rows, seed)
    D.save_dataset(frame, out)
    console.print(f"wrote {len(frame)} rows to {out} (failure share {frame[F.TARGET].mean():.2%})")


@app.command()
def download(
    out: Annotated[Path, typer.Option(help="Where to write ai4i2020.csv.")] = Path(
        "data/ai4i2020.csv"
    ),
    sha256: Annotated[
        str | None,
        typer.Option(
            help="Expected SHA-256 of ai4i2020.csv; default: the pin in <out>.sha256 if present."
        ),
    ] = None,
    url: Annotated[str, typer.Option(help="Archive URL (UCI ML repository).")] = D.UCI_URL,
) -> None:
    """Fetch the real UCI AI4I 2020 dataset, verify it, and pin its checksum."""
    pin = out.with_name(out.name + ".sha256")
    expected = sha256 or (pin.read_text().split()[0] if pin.is_file() else None)
    with console.status(f"downloading {url}"):
        try:
            path, digest = D.download_uci(out, expected, url)
        except (OSError, ValueError) as exc:
            console.print(f"[red]download failed:[/red] {exc}")
            raise typer.Exit(1) from exc
    if not pin.is_file():
        pin.write_text(f"{digest}  {out.name}\n")
        console.print(f"pinned sha256 {digest} in {pin} (commit it to detect later changes)")
    console.print(f"verified {path} (sha256 {digest})")


@app.command("validate")
def validate_cmd(
    data: Annotated[Path, typer.Argument(help="Dataset: UCI CSV or a generated CSV.")],
    report_file: Annotated[
        Path | None,
        typer.Option(
            "--report", help="Also write the report as JSON to this file (the DVC stage's output)."
        ),
    ] = None,
) -> None:
    """Validate a dataset and print the report; exit 1 when it has errors."""
    from training.validate import validate

    if not data.is_file():
        raise typer.BadParameter(f"{data} does not exist", param_hint="DATA")
    try:
        frame = D.load_dataset(data)
    except ValueError as exc:  # wrong delimiter, not the UCI format, unreadable CSV
        console.print(f"[red]data validation FAILED:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    _warn_if_not_published(data, frame)
    report = validate(frame)
    console.print(report.render(), highlight=False)
    if report_file is not None:
        _write_json(
            report_file,
            {
                "ok": report.ok,
                "rows": report.rows,
                "positive_share": report.positive_share,
                "errors": len(report.errors),
                "warnings": len(report.findings) - len(report.errors),
                "findings": [f.render() for f in report.findings],
            },
        )
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def train(
    ctx: typer.Context,
    data: Annotated[Path | None, typer.Option(help="Dataset file; default: synthetic.")] = None,
    rows: Annotated[int, typer.Option(min=100, help="Synthetic rows when no --data.")] = 10_000,
    seed: Seed = 42,
    models_dir: ModelsDir = Path("artifacts/models"),
    artifacts_dir: ArtifactsDir = Path("artifacts"),
    candidates: Annotated[
        str,
        typer.Option(
            help="Comma-separated candidates: logistic_regression, random_forest, "
            "hist_gradient_boosting."
        ),
    ] = "logistic_regression,random_forest,hist_gradient_boosting",
    min_roc_auc: MinRocAuc = 0.95,
    min_pr_auc: MinPrAuc = 0.75,
    min_recall: MinRecall = 0.5,
    max_brier: MaxBrier = QualityGateDefaults.max_brier,
    max_ece: MaxEce = QualityGateDefaults.max_ece,
    max_log_loss: MaxLogLoss = QualityGateDefaults.max_log_loss,
    cost_ratio: Annotated[
        float,
        typer.Option(
            min=0.001,
            help="Cost of a missed failure in false alarms: a reading is flagged when its "
            "calibrated P(failure) >= 1 / (1 + ratio) (10 -> 0.091).",
        ),
    ] = 10.0,
    calibration: Annotated[
        str,
        typer.Option(
            help="Calibration methods to try (comma-separated: isotonic, sigmoid); the best "
            "validation log loss wins."
        ),
    ] = "isotonic,sigmoid",
    track: Annotated[
        bool, typer.Option(envvar="FAULTLINE_TRACK", help="Record the run in MLflow.")
    ] = True,
    jobs: Annotated[int, typer.Option(help="Parallel CV jobs (-1: all cores).")] = -1,
    params: Annotated[
        Path | None,
        typer.Option(
            help="YAML params file (the DVC pipeline's params.yaml): its `train` section sets "
            "seed, candidates, grids, calibration, cost ratio and gate; options given on the "
            "command line win over it, and it wins over the defaults."
        ),
    ] = None,
    metrics_file: MetricsFile = None,
) -> None:
    """Train, evaluate and gate a model; write a verified bundle when it passes."""
    from training.evaluate import QualityGate, verdict
    from training.train import TrainConfig
    from training.train import train as run_training
    from training.validate import DataValidationError

    started = time.perf_counter()
    config = TrainConfig(
        seed=seed,
        cost_ratio=cost_ratio,
        calibration=tuple(c.strip() for c in calibration.split(",") if c.strip()),
        n_jobs=jobs,
        candidates=tuple(c.strip() for c in candidates.split(",") if c.strip()),
        gate=QualityGate(min_roc_auc, min_pr_auc, min_recall, max_brier, max_ece, max_log_loss),
    )
    if params is not None:
        config = _with_params(ctx, config, params)
    frame, source = _load(data, rows, config.seed)
    try:
        result = run_training(
            frame,
            source,
            models_dir,
            artifacts_dir / "reports",
            config,
            progress=lambda m: console.print(m, highlight=False),
        )
    except DataValidationError as exc:
        console.print("[red]training refused: the data failed validation (no bundle written)")
        raise typer.Exit(2) from exc
    _print_metrics(result.metrics["test"], "held-out test")
    if metrics_file is not None:
        _write_json(
            metrics_file,
            {"version": result.version, "gate_passed": not result.gate_failures, **result.metrics},
        )
    if track:
        from training.tracking import log_run

        with console.status("recording the run in MLflow"):
            flat = {
                f"test_{k}": v for k, v in result.metrics["test"].items() if isinstance(v, float)
            }
            fidelity = result.metadata["fidelity"]
            for name, figures in fidelity["features"].items():
                flat[f"fidelity_ks_{name}"] = figures["ks"]
                flat[f"fidelity_psi_{name}"] = figures["psi"]
            flat["fidelity_speed_torque_corr"] = fidelity["speed_torque_corr"]
            run_id = log_run(
                artifacts_dir,
                result.version,
                {
                    **result.metadata["params"],
                    "estimator": result.metadata["estimator"],
                    "threshold": result.metadata["threshold"],
                    "calibration_method": result.metadata["calibration"]["method"],
                },
                {**flat, "gate_passed": float(not result.gate_failures)},
                sorted(result.report_dir.iterdir()),
                result.bundle_path,
                {"data_sha256": result.metadata["data"]["sha256"]},
            )
        console.print(f"MLflow run {run_id}")
    console.print(f"reports: {result.report_dir}")
    if result.gate_failures:
        console.print(f"[red]{verdict(result.gate_failures)} (no bundle written)", highlight=False)
        raise typer.Exit(3)
    console.print(f"bundle: {result.bundle_path}")
    console.print(f"wall time {time.perf_counter() - started:.1f} s")


@app.command()
def evaluate(
    bundle: Annotated[Path, typer.Option(help="Bundle directory or models dir (newest).")] = Path(
        "artifacts/models"
    ),
    data: Annotated[Path | None, typer.Option(help="Dataset; default: fresh synthetic.")] = None,
    rows: Annotated[int, typer.Option(min=100, help="Synthetic rows when no --data.")] = 5_000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data.")] = 7,
    out: Annotated[Path, typer.Option(help="Where plots go.")] = Path("artifacts/evaluations"),
    version_dir: Annotated[
        bool,
        typer.Option(
            help="Write into OUT/<bundle version>/, or (--no-version-dir) into OUT itself: "
            "fixed paths, which `dvc plots diff` compares across commits."
        ),
    ] = True,
    min_roc_auc: MinRocAuc | None = None,
    min_pr_auc: MinPrAuc | None = None,
    min_recall: MinRecall | None = None,
    max_brier: MaxBrier | None = None,
    max_ece: MaxEce | None = None,
    max_log_loss: MaxLogLoss | None = None,
    metrics_file: MetricsFile = None,
) -> None:
    """Re-score an existing (verified) bundle on a dataset: metrics, plots and the gate verdict.

    The gate is the one recorded in the bundle (each option overrides one limit); exit 3 when
    the bundle fails it on this data, 0 when it passes.
    """
    from dataclasses import asdict, fields

    from model.bundle import BundleError, load_bundle, resolve_bundle
    from training.evaluate import QualityGate, compute_metrics, verdict, write_plots

    try:
        loaded = load_bundle(resolve_bundle(bundle))
    except BundleError as exc:
        console.print(f"[red]cannot use bundle:[/red] {exc}")
        raise typer.Exit(2) from exc
    frame, source = _load(data, rows, seed)
    X, y = frame[list(F.FEATURE_NAMES)], frame[F.TARGET].to_numpy(int)
    scores = loaded.pipeline.predict_proba(X)[:, 1]
    metrics = compute_metrics(y, scores, loaded.threshold)
    recorded = loaded.metadata.get("params", {}).get("gate", {})
    limits = {f.name: recorded[f.name] for f in fields(QualityGate) if f.name in recorded}
    overrides = {
        "min_roc_auc": min_roc_auc,
        "min_pr_auc": min_pr_auc,
        "min_recall": min_recall,
        "max_brier": max_brier,
        "max_ece": max_ece,
        "max_log_loss": max_log_loss,
    }
    gate = QualityGate(**{**limits, **{k: v for k, v in overrides.items() if v is not None}})
    failures = gate.failures(metrics)
    target = out / loaded.version if version_dir else out
    write_plots(loaded.pipeline, X, y, scores, loaded.threshold, target, seed)
    (target / "metrics.json").write_text(
        json.dumps({**metrics, "gate": asdict(gate), "gate_failures": failures}, indent=2)
    )
    if metrics_file is not None:
        _write_json(
            metrics_file, {"version": loaded.version, "gate_passed": not failures, **metrics}
        )
    _print_metrics(metrics, f"{loaded.version} on {source}")
    console.print(f"plots: {target}")
    style = "red" if failures else "green"
    console.print(f"[{style}]{verdict(failures)}[/{style}]", highlight=False)
    raise typer.Exit(3 if failures else 0)


@app.command("hash")
def hash_cmd(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory or models dir (newest).")] = Path(
        "artifacts/models"
    ),
) -> None:
    """Verify a bundle and print its hash (the value FAULTLINE_BUNDLE_SHA256 pins)."""
    from model.bundle import BundleError, resolve_bundle, verify_bundle

    try:
        path = resolve_bundle(bundle)
        digest = verify_bundle(path)
    except BundleError as exc:
        console.print(f"[red]cannot use bundle:[/red] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"{path.name}: verified")
    typer.echo(digest)


def _print_metrics(metrics: dict[str, object], title: str) -> None:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    keys = ("roc_auc", "pr_auc", "f1", "precision", "recall", "brier", "log_loss", "ece")
    for key in (*keys, "mean_predicted", "positive_share", "threshold"):
        if key in metrics:
            table.add_row(key, f"{metrics[key]:.4f}")
    table.add_row("confusion", str(metrics["confusion_matrix"]))
    Console(width=None if sys.stdout.isatty() else 160).print(table)


if __name__ == "__main__":
    app()
