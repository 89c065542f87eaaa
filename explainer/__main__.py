"""`python -m explainer`: serve POST /v1/explain and probes, /metrics on its own port."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(help="Faultline explainer.", add_completion=False)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Bind address (0.0.0.0 in containers).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="HTTP port.")] = 8001,
    model_dir: Annotated[
        Path | None,
        typer.Option(
            help="Bundle or models directory, the newest bundle explained (default: "
            "FAULTLINE_EXPLAINER_MODEL_DIR, then FAULTLINE_MODEL_DIR)."
        ),
    ] = None,
) -> None:
    """Explain the bundle's failure scores: POST /v1/explain, /healthz, /readyz on --port;
    /metrics on FAULTLINE_EXPLAINER_METRICS_PORT."""
    import uvicorn
    from prometheus_client import CollectorRegistry, start_http_server

    from explainer.app import create_app
    from explainer.config import ExplainerSettings

    overrides: dict[str, Any] = {"model_dir": model_dir} if model_dir is not None else {}
    settings = ExplainerSettings(**overrides)
    if settings.metrics_port == port:
        raise typer.BadParameter(f"FAULTLINE_EXPLAINER_METRICS_PORT must differ from --port {port}")
    if host != "127.0.0.1" and "metrics_host" not in settings.model_fields_set:
        settings = settings.model_copy(update={"metrics_host": host})
    registry = CollectorRegistry()
    application = create_app(settings, registry)
    if settings.metrics_port:
        try:
            start_http_server(settings.metrics_port, settings.metrics_host, registry)
        except OSError as exc:
            typer.echo(f"cannot serve metrics on port {settings.metrics_port}: {exc}", err=True)
            raise typer.Exit(1) from exc
    # uvicorn re-raises the SIGTERM it captured after draining: a clean exit (status 0)
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        application,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=15,
    )


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    app()
