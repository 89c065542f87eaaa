"""The FastAPI application factory. Nothing happens at import time."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import structlog
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, disable_created_metrics
from prometheus_fastapi_instrumentator import Instrumentator, metrics
from prometheus_fastapi_instrumentator.metrics import Info
from pydantic import TypeAdapter

from model.bundle import BundleError
from service import oip
from service.auth import ApiKeyAuth
from service.config import Settings
from service.errors import install_handlers
from service.explain import ExplainEndpoint, declare_oip_explain
from service.explainer_client import ExplainerProxy
from service.logging import configure_logging, flush
from service.metrics import LATENCY_BUCKETS, ServiceMetrics
from service.middleware import RequestContextMiddleware
from service.predict_endpoint import PredictEndpoint
from service.predictor import Predictor
from service.routes import declare_explain, declare_predict, router
from service.schemas import batch_type
from service.state import AppState

log = structlog.get_logger("faultline.service")
UNINSTRUMENTED = ["/metrics", "/healthz", "/readyz", "/docs", "/openapi.json", "/redoc"]
# Methods that may label a series: any other (llhttp accepts ~30, e.g. PROPFIND, MKCOL) is
# answered 404/405 but not counted, so clients cannot create series at will.
COUNTED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# /v1/model without model_details: what a client needs, not the build's provenance
MODEL_KEYS = (
    "name",
    "version",
    "created_at",
    "estimator",
    "threshold",
    "threshold_objective",
    "cost_ratio",
    "calibration",
    "metrics",
    "schema",
    "schema_hash",
)
DETAIL_KEYS = ("git_commit", "sklearn_version", "python_version", "data", "params")


def _load(state: AppState) -> None:
    """Load, verify and warm the bundle; on failure stay alive and not ready, with the reason."""
    settings = state.settings
    try:
        predictor = Predictor.load(
            settings.model_dir,
            state.metrics,
            pinned_hash=settings.bundle_sha256,
            serving_form=settings.serving_form,
            drift_window=settings.drift_window,
            drift_min_readings=settings.drift_min_readings,
            drift_update_seconds=settings.drift_update_seconds,
            drift_max_request_share=settings.drift_max_request_share,
            max_micro_batch=settings.max_micro_batch,
            batch_window_s=settings.batch_window_us / 1e6,
            log_sample_rate=settings.prediction_log_sample_rate,
        )
        predictor.warm_up()
    except BundleError as exc:
        _refuse(state, f"model bundle refused: {exc}")
        return
    except Exception as exc:  # a malformed bundle must never take the process down
        log.error("bundle_load_failed", exc_info=exc)
        _refuse(state, f"model bundle unusable: {type(exc).__name__}: {str(exc)[:300]}")
        return
    predictor.publish_static()
    state.model_body = orjson.dumps(_model_info(predictor, settings.model_details))
    state.ready_body = orjson.dumps({"status": "ready", "model_version": predictor.version})
    state.predictor = predictor
    log.info(
        "ready",
        model_version=predictor.version,
        bundle=str(predictor.bundle.path),
        bundle_hash=predictor.bundle.bundle_hash,
        inference_path=predictor.inference_path,
    )


def _refuse(state: AppState, reason: str) -> None:
    state.not_ready_reason = reason
    state.metrics.ready.labels("none").set(0)
    log.error("bundle_refused", reason=reason, model_dir=str(state.settings.model_dir))


def _model_info(predictor: Predictor, details: bool) -> dict[str, Any]:
    meta = predictor.bundle.metadata
    keys = (*MODEL_KEYS, *DETAIL_KEYS) if details else MODEL_KEYS
    return {
        **{k: meta.get(k) for k in keys},
        "bundle_hash": predictor.bundle.bundle_hash,
        "inference_path": predictor.inference_path,
    }


def _counted(*instrumentations: Any) -> Any:
    """The instrumentator's RED functions, skipped for methods outside COUNTED_METHODS."""

    def instrumentation(info: Info) -> None:
        if info.method in COUNTED_METHODS:
            for record in instrumentations:
                record(info)

    return instrumentation


def create_app(
    settings: Settings | None = None, registry: CollectorRegistry | None = None
) -> FastAPI:
    """Build the app; the bundle loads in the lifespan, never at import."""
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)
    disable_created_metrics()  # *_created series double the exposition for no dashboard use
    registry = registry if registry is not None else CollectorRegistry()
    batch = batch_type(settings.max_batch)
    state = AppState(settings, ServiceMetrics(registry), TypeAdapter(batch))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        _load(state)
        if settings.explainer_url:
            state.explainer = ExplainerProxy(
                settings.explainer_url,
                settings.explain_timeout_seconds,
                settings.explain_max_connections,
            )
        # Everything loaded so far lives until shutdown: move it out of the collector's sight,
        # and collect the oldest generation rarely. Full collections over FastAPI's and the
        # model's objects otherwise stall requests for tens of milliseconds (p99 40 ms -> 7 ms).
        gc.collect()
        gc.freeze()
        gc.set_threshold(10_000, 20, 1_000)
        # the state is also the server's (lifespan state): service.protocol finds its limits
        # and metrics there
        yield {"faultline": state}
        predictor, state.predictor = state.predictor, None
        state.ready_body = state.model_body = None
        state.not_ready_reason = "shutting down"
        if predictor is not None:
            await predictor.batcher.close()
        explainer, state.explainer = state.explainer, None
        if explainer is not None:
            await explainer.aclose()
        log.info("shutdown_complete")
        flush()

    app = FastAPI(
        title="Faultline",
        version="0.1.0",
        summary="Predictive-maintenance model service: machine failure probability per reading.",
        lifespan=lifespan,
        # Observability is Prometheus + structlog; FastAPI's built-in OpenTelemetry hooks would
        # cost a provider lookup per request for nothing.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
        # no Swagger UI / ReDoc (they load from a public CDN); the schema only when enabled
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.openapi else None,
        # no 307 to the slash-less path: its Location would be built from the Host header
        redirect_slashes=False,
    )
    app.state.faultline = state
    app.state.registry = registry  # exposed on the metrics port (service.cli), never here
    # The hot operations first: the instrumentator looks up every request's route template by
    # walking the app's routes in order, and would flatten an included router anew per request
    # (~12 us per request for the OIP router's 8 routes): routes are added as the app's own.
    predict_route = declare_predict(batch)
    infer_routes = oip.declare_infer()
    explain_batch = batch_type(settings.explain_max_batch, "ExplainBatch")
    explain_route = declare_explain(explain_batch)
    oip_explain_route = declare_oip_explain()
    app.router.routes.extend([predict_route, *infer_routes, explain_route, oip_explain_route])
    for module_router in (router, oip.router):
        app.router.routes.extend(module_router.routes)
    install_handlers(app)
    # inside PredictEndpoint, which answers /v1/predict first: no cost on predict's path
    app.add_middleware(
        ExplainEndpoint,
        state=state,
        route=explain_route,
        oip_route=oip_explain_route,
        batch=TypeAdapter(explain_batch),
    )
    # innermost of the three: the instrumentator and the request context see it like a route
    app.add_middleware(PredictEndpoint, state=state, route=predict_route, infer_routes=infer_routes)
    keys = settings.api_key_list()
    if keys:  # outside the predict endpoint, inside the metrics: 401s are counted
        app.add_middleware(ApiKeyAuth, keys=keys, failures=state.metrics.auth_failures)
    add_http_metrics(app, registry)  # /metrics is served on its own port (service.cli)
    app.add_middleware(RequestContextMiddleware, in_flight=state.metrics.in_flight)
    return app


def add_http_metrics(app: FastAPI, registry: CollectorRegistry) -> None:
    """HTTP RED metrics of every counted route (the explainer's app uses it too)."""
    instrumentator = Instrumentator(
        should_group_status_codes=False,
        should_ignore_untemplated=True,
        excluded_handlers=UNINSTRUMENTED,
        # its in-progress gauge ignores `registry` (lands in the global one, never exposed
        # here): the request middleware owns faultline_http_requests_in_flight instead
        should_instrument_requests_inprogress=False,
        registry=registry,
    )
    # RED only: requests by status, and latency by handler. The default set also keeps request
    # and response size summaries and a second, unlabelled latency histogram that no dashboard
    # or rule reads: four more label lookups and observations per request.
    instrumentator.add(
        _counted(
            metrics.requests(registry=registry),
            metrics.latency(
                buckets=LATENCY_BUCKETS,
                should_include_status=False,
                registry=registry,
            ),
        )
    )
    instrumentator.instrument(app)


def create_app_from_env() -> FastAPI:
    """uvicorn factory entry point (`service.main:create_app_from_env`)."""
    return create_app(Settings())
