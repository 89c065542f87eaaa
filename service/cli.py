"""`faultline`: serve the model, and judge a canary against stable from Prometheus."""

from __future__ import annotations

import math
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(help="Faultline model service.", no_args_is_help=True, add_completion=False)


@app.callback()
def main() -> None:
    """Faultline: a predictive-maintenance model service with a full observability stack."""


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Bind address (0.0.0.0 in containers).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="HTTP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    model_dir: Annotated[
        Path | None, typer.Option(help="Bundle or models directory (default: FAULTLINE_MODEL_DIR).")
    ] = None,
) -> None:
    """Serve /v1/predict and probes with uvicorn, /metrics on FAULTLINE_METRICS_PORT."""
    import uvicorn

    from service.config import Settings
    from service.protocol import GuardedHttpToolsProtocol

    if model_dir is not None:
        os.environ["FAULTLINE_MODEL_DIR"] = str(model_dir)
    os.environ.setdefault("FAULTLINE_METRICS_HOST", host)  # workers read the same settings
    settings = Settings()  # validate the environment before forking workers
    if settings.metrics_port == port:
        raise typer.BadParameter(f"FAULTLINE_METRICS_PORT must differ from --port ({port})")
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": GuardedHttpToolsProtocol,  # header limits, request timeouts, lossless drain
        "access_log": False,
        "log_config": None,
        "server_header": False,
        # the protocol answers what is left at FAULTLINE_DRAIN_SECONDS; uvicorn cancels later
        "timeout_graceful_shutdown": math.ceil(settings.drain_seconds) + 1,
        "timeout_keep_alive": 15,
    }
    # uvicorn drains, then re-raises the captured SIGTERM with the handler it found installed:
    # make that one a clean exit, so a drained shutdown reports status 0 to Kubernetes/Docker.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    if workers > 1:
        # prometheus_client shares counters between processes through files in this directory;
        # it must be empty at start and set before any worker imports prometheus_client.
        directory = os.environ.setdefault(
            "PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="faultline-metrics-")
        )
        shutil.rmtree(directory, ignore_errors=True)
        Path(directory).mkdir(parents=True, exist_ok=True)
        from prometheus_client import CollectorRegistry, multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        _serve_metrics(settings, registry)  # here, in the supervisor: every worker's files
        uvicorn.run("service.main:create_app_from_env", factory=True, workers=workers, **options)
        return
    from prometheus_client import CollectorRegistry

    from service.main import create_app

    registry = CollectorRegistry()
    application = create_app(settings, registry)
    _serve_metrics(settings, registry)
    uvicorn.run(application, **options)


def _serve_metrics(settings: Any, registry: Any) -> None:
    """/metrics on its own port, in a daemon thread (never on the API port)."""
    if not settings.metrics_port:
        return
    from prometheus_client import start_http_server

    try:
        start_http_server(settings.metrics_port, settings.metrics_host, registry)
    except OSError as exc:
        typer.echo(
            f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port}: {exc}",
            err=True,
        )
        raise typer.Exit(1) from exc


canary = typer.Typer(help="Judge a canary against stable from Prometheus.", no_args_is_help=True)
app.add_typer(canary, name="canary")


@canary.command("analyze")
def canary_analyze(
    prometheus: Annotated[str, typer.Option(help="Prometheus base URL.")],
    selector: Annotated[
        str | None,
        typer.Option(
            help="Label matchers selecting the service's series (default: the checks file's)."
        ),
    ] = None,
    window: Annotated[str, typer.Option(help="Range the checks look back over.")] = "5m",
    definition: Annotated[
        Path | None, typer.Option(help="Checks file (default: prometheus/canary-analysis.yml).")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the outcome.")] = None,
) -> None:
    """Print a per-check table; exit 0 to promote, 1 to roll back, 2 when inconclusive."""
    import json

    import httpx

    from service.canary import (
        DEFINITION,
        EXIT_CODES,
        analyze,
        default_selector,
        load_checks,
        render_table,
    )

    checks = load_checks(definition or DEFINITION)
    selector = selector or default_selector(definition or DEFINITION)
    try:
        verdict, outcomes = analyze(prometheus, selector, window, checks)
    except (httpx.HTTPError, ValueError) as exc:
        typer.echo(f"canary analysis failed: {exc}", err=True)
        raise typer.Exit(EXIT_CODES["inconclusive"]) from exc
    typer.echo(render_table(verdict, outcomes))
    if json_out:
        json_out.write_text(
            json.dumps(
                {
                    "verdict": verdict,
                    "checks": [
                        {
                            "name": o.check.name,
                            "kind": o.check.kind,
                            "value": o.value,
                            "condition": o.check.condition,
                            "result": o.result,
                        }
                        for o in outcomes
                    ],
                },
                indent=2,
            )
        )
    raise typer.Exit(EXIT_CODES[verdict])


@app.command()
def report(
    events: Annotated[
        Path,
        typer.Argument(
            help="JSON-lines service log with sampled `prediction` events "
            "(e.g. `kubectl logs deploy/faultline > events.jsonl`); other lines are skipped."
        ),
    ],
    model_dir: Annotated[
        Path,
        typer.Option(
            envvar="FAULTLINE_MODEL_DIR",
            help="Bundle (or models directory: the newest) whose reference and threshold to use.",
        ),
    ] = Path("artifacts/models"),
    reference: Annotated[
        Path | None,
        typer.Option(
            help="Training data CSV to compare raw values against (default: the bundle's "
            "reference.json, compared as its decile bins)."
        ),
    ] = None,
    labelled: Annotated[
        Path | None,
        typer.Option(
            help="CSV of readings with outcomes (the machine_failure column): also write a "
            "classification-quality report at the bundle's threshold."
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Directory for drift.html/.json (and quality.html/.json).")
    ] = Path("reports"),
) -> None:
    """Offline Evidently reports: data drift of logged predictions vs the bundle's reference."""
    from model.bundle import BundleError
    from service.report import ReportUnavailableError, drift_report, quality_report

    try:
        drift = drift_report(events, model_dir, out, reference)
        quality = quality_report(labelled, model_dir, out) if labelled else None
    except ReportUnavailableError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    except (OSError, ValueError, BundleError) as exc:
        typer.echo(f"report failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    drifted = ", ".join(drift.drifted) or "none"
    typer.echo(f"{drift.html}: {drift.rows} readings; drifted: {drifted}")
    if quality:
        typer.echo(f"{quality.html}: {quality.rows} labelled readings")


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    app()
