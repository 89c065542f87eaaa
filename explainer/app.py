"""The explainer process: POST /v1/explain answers per-feature attributions of the failure
score, for the service to forward to (service/explain.py). Nothing happens at import time.

It reuses the service's validation, error body, request-id middleware, structlog setup and HTTP
RED instrumentation. Attribution work is CPU-bound: it runs in a bounded thread pool, at most
FAULTLINE_EXPLAINER_MAX_PENDING requests at once (503 beyond), each at most
FAULTLINE_EXPLAINER_MAX_BATCH readings, so the event loop and the probes stay responsive.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import structlog
from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, disable_created_metrics
from pydantic import TypeAdapter

from explainer.attributions import Attributions, Attributor
from explainer.config import ExplainerSettings
from explainer.metrics import AttributionWindow, ExplainerMetrics
from model import features as F
from model.bundle import METADATA_FILE, BundleError, resolve_bundle
from service.errors import (
    ModelNotReadyError,
    ServiceError,
    UnsupportedMediaTypeError,
    install_handlers,
)
from service.explainer_client import EXPLAIN_PATH, MODEL_VERSION_HEADER
from service.logging import configure_logging, flush
from service.main import add_http_metrics
from service.middleware import RequestContextMiddleware
from service.predictor import to_arrays
from service.routes import check_payload, healthz, load_json, read_body
from service.schemas import batch_type

log = structlog.get_logger("faultline.explainer")


class ModelVersionConflictError(ServiceError):
    """The caller expects another bundle version (X-Faultline-Model-Version)."""

    status, type = 409, "model_version_mismatch"


class ExplainerBusyError(ServiceError):
    status, type = 503, "explainer_busy"


@dataclass
class ExplainerState:
    """What one explainer app holds; the attributor once loaded."""

    settings: ExplainerSettings
    metrics: ExplainerMetrics
    batch: TypeAdapter[Any]
    pool: ThreadPoolExecutor
    attributor: Attributor | None = None
    version: str = "none"
    not_ready_reason: str = "the model bundle is still loading"
    ready_body: bytes | None = None
    window: AttributionWindow = field(init=False)
    pending: int = 0  # requests computing or waiting for a thread (at most max_pending)

    def __post_init__(self) -> None:
        self.window = AttributionWindow(self.settings.window, len(F.FEATURE_NAMES))


def _load(state: ExplainerState) -> None:
    """Load and verify the bundle, warm the attributor up; on failure stay alive, not ready."""
    try:
        path = resolve_bundle(state.settings.model_dir)
        attributor = Attributor.from_bundle(path)
        # first-call costs before ready; explain() itself checks that attributions add up
        warm = attributor.explain(*to_arrays([F.example_reading()]))
        reference = _reference_mean_abs(path)
    except BundleError as exc:
        _refuse(state, f"model bundle refused: {exc}")
        return
    except Exception as exc:  # a malformed bundle must never take the process down
        log.error("bundle_load_failed", exc_info=exc)
        _refuse(state, f"model bundle unusable: {type(exc).__name__}: {str(exc)[:300]}")
        return
    state.version = warm.model_version
    for feature, value in reference.items():
        state.metrics.reference_mean_abs.labels(state.version, feature).set(value)
    state.metrics.window.labels(state.version).set(0)
    state.metrics.explained.labels(state.version)  # the series exists from the start at 0
    state.attributor = attributor
    state.ready_body = orjson.dumps({"status": "ready", "model_version": state.version})
    log.info("ready", model_version=state.version, bundle=str(path), output=warm.output)


def _reference_mean_abs(path: Path) -> dict[str, float]:
    """Mean |attribution| per feature on held-out data, from the bundle's metadata (absent in
    bundles written before explanations: nothing to publish)."""
    metadata = json.loads((path / METADATA_FILE).read_text())
    explanation = metadata.get("explanation") or {}
    mean_abs = explanation.get("mean_abs") or {}
    return {f: float(mean_abs[f]) for f in F.FEATURE_NAMES if f in mean_abs}


def _refuse(state: ExplainerState, reason: str) -> None:
    state.not_ready_reason = reason
    log.error("bundle_refused", reason=reason, model_dir=str(state.settings.model_dir))


def _compute(attributor: Attributor, readings: list[dict[str, Any]]) -> tuple[Attributions, float]:
    """Attributions of validated readings, and the seconds they took (in a pool thread)."""
    started = time.perf_counter()
    result = attributor.explain(*to_arrays(readings))
    return result, time.perf_counter() - started


def _record(state: ExplainerState, result: Attributions, seconds: float) -> None:
    """Metrics of one explained batch (on the event loop: the window needs no lock)."""
    version = state.version
    metrics = state.metrics
    metrics.duration.labels(version).observe(seconds)
    metrics.explained.labels(version).inc(len(result.raw_scores))
    state.window.add(np.asarray(result.values))
    for feature, value in zip(result.features, state.window.mean().tolist(), strict=True):
        metrics.mean_abs.labels(version, feature).set(value)
    metrics.window.labels(version).set(state.window.count)


def _render(result: Attributions, request_id: str) -> bytes:
    features = list(result.features)
    return orjson.dumps(
        {
            "model_version": result.model_version,
            "request_id": request_id,
            "output": result.output,
            "base_value": float(result.base_value),
            "features": features,
            "explanations": [
                {
                    "failure_probability": probability,
                    "raw_score": raw,
                    "attributions": dict(zip(features, values, strict=True)),
                }
                for probability, raw, values in zip(
                    result.probabilities.tolist(),
                    result.raw_scores.tolist(),
                    result.values.tolist(),
                    strict=True,
                )
            ],
        }
    )


async def explain(request: Request) -> Response:
    """POST /v1/explain: one reading or {"instances": [...]} -> attributions per reading."""
    state: ExplainerState = request.app.state.explainer
    attributor = state.attributor
    if attributor is None:
        raise ModelNotReadyError(state.not_ready_reason)
    request_state = request.scope["state"]
    context = request_state["log_context"]
    context["model_version"] = state.version
    expected = request.headers.get(MODEL_VERSION_HEADER)
    if expected is not None and expected != state.version:  # checked before any work
        raise ModelVersionConflictError(
            f"this explainer serves model version {state.version!r}, not {expected[:100]!r}"
        )
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaTypeError(
            f"Content-Type must be application/json, got {content_type[:100]!r}"
        )
    settings = state.settings
    if state.pending >= settings.max_pending:  # before reading the body: shed load cheaply
        raise ExplainerBusyError(f"{state.pending} explanations already in progress")
    state.pending += 1
    try:
        raw = await read_body(
            request.headers.get("content-length"), request.stream(), settings.max_body_bytes
        )
        limit = settings.max_batch
        readings = check_payload(load_json(raw, limit), state.batch, limit)
        context["batch_size"] = len(readings)
        loop = asyncio.get_running_loop()
        result, seconds = await loop.run_in_executor(state.pool, _compute, attributor, readings)
    finally:
        state.pending -= 1
    _record(state, result, seconds)
    return Response(_render(result, request_state["request_id"]), media_type="application/json")


async def readyz(request: Request) -> Response:
    """Readiness: the bundle is loaded, verified and its attributor warmed."""
    state: ExplainerState = request.app.state.explainer
    if state.ready_body is None:
        raise ModelNotReadyError(state.not_ready_reason)
    return Response(state.ready_body, media_type="application/json")


def create_app(
    settings: ExplainerSettings | None = None, registry: CollectorRegistry | None = None
) -> FastAPI:
    """Build the explainer app; the bundle loads in the lifespan, never at import."""
    settings = settings or ExplainerSettings()
    configure_logging(settings.log_level, settings.log_format)
    disable_created_metrics()
    registry = registry if registry is not None else CollectorRegistry()
    state = ExplainerState(
        settings,
        ExplainerMetrics(registry),
        TypeAdapter(batch_type(settings.max_batch)),
        ThreadPoolExecutor(settings.threads, thread_name_prefix="explain"),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _load(state)
        yield
        state.attributor = state.ready_body = None
        state.not_ready_reason = "shutting down"
        state.pool.shutdown(wait=False, cancel_futures=True)
        log.info("shutdown_complete")
        flush()

    app = FastAPI(
        title="Faultline explainer",
        version="0.1.0",
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # the service's /openapi.json documents /v1/explain
        redirect_slashes=False,
    )
    app.state.explainer = state
    app.state.registry = registry  # exposed on the metrics port (explainer.__main__)
    app.add_api_route(EXPLAIN_PATH, explain, methods=["POST"])
    app.add_api_route("/healthz", healthz, methods=["GET"])
    app.add_api_route("/readyz", readyz, methods=["GET"])
    install_handlers(app)
    add_http_metrics(app, registry)
    app.add_middleware(RequestContextMiddleware, in_flight=state.metrics.in_flight)
    return app
