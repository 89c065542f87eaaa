"""HTTP translation only: parse and check the request, call the Predictor, shape the answer."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
import structlog
from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError

from service.errors import (
    InjectedFaultError,
    InvalidInputError,
    MalformedJSONError,
    ModelNotReadyError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    from_validation,
)
from service.predictor import to_arrays
from service.schemas import READING, ErrorResponse, Health, PredictResponse
from service.state import AppState

log = structlog.get_logger("faultline.predictions")
router = APIRouter()


async def get_state(request: Request) -> AppState:
    """async on purpose: FastAPI runs a sync dependency in a thread pool, per request."""
    state: AppState = request.app.state.faultline
    return state


State = Annotated[AppState, Depends(get_state)]

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Malformed JSON."},
    413: {"model": ErrorResponse, "description": "Body larger than the configured limit."},
    415: {"model": ErrorResponse, "description": "Content-Type is not application/json."},
    422: {
        "model": ErrorResponse,
        "description": "A reading or the batch is invalid; `details` "
        "lists each problem with its location and reason.",
    },
    503: {"model": ErrorResponse, "description": "No verified model is loaded (yet)."},
    500: {
        "model": ErrorResponse,
        "description": "Unexpected server error (a bug): no traceback in the body; the stack "
        "is in the log line with the same request id.",
    },
}


async def read_body(declared: str | None, chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The body, refused with 413 past `limit` bytes (also when chunked, without a length)."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"body of {declared} bytes exceeds the limit of {limit} bytes")
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"body exceeds the limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def parse_readings(body: bytes, state: AppState) -> list[dict[str, Any]]:
    """JSON -> validated readings (one reading, or {"instances": [...]})."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSONError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        message = 'body must be a JSON object: one reading or {"instances": [...]}'
        detail = {"loc": ["body"], "reason": "wrong_type", "message": message}
        raise InvalidInputError(message, [detail], [("wrong_type", "body")])
    try:
        if "instances" in payload:
            instances: list[dict[str, Any]] = state.batch_adapter.validate_python(payload)[
                "instances"
            ]
            return instances
        return [READING.validate_python(payload)]
    except ValidationError as exc:
        raise from_validation(exc) from exc


PREDICT_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/Reading"},
                    {"$ref": "#/components/schemas/Batch"},
                ]
            },
        }
    },
}


@router.post(
    "/v1/predict",
    response_model=PredictResponse,
    responses=ERRORS,
    summary="Failure probability and decision for one reading or a batch",
    openapi_extra={"requestBody": PREDICT_BODY},
)
async def predict(request: Request, state: State) -> Response:
    # Served by service.predict_endpoint.PredictEndpoint in front of the router; this route
    # declares the operation (OpenAPI, routing labels) and answers when the app runs without it.
    scope_state = request.scope["state"]
    body = await answer_predict(
        state,
        request.headers.get("content-type", ""),
        request.headers.get("content-length"),
        request.stream(),
        scope_state["request_id"],
        scope_state["log_context"],
    )
    return Response(body, media_type="application/json")


async def answer_predict(
    state: AppState,
    content_type: str,
    content_length: str | None,
    chunks: AsyncIterator[bytes],
    request_id: str,
    context: dict[str, Any],
) -> bytes:
    """The JSON answer of POST /v1/predict; raises ServiceError (-> the JSON error body)."""
    predictor = state.predictor
    if predictor is None:
        raise ModelNotReadyError(state.not_ready_reason)
    context["model_version"] = predictor.version
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaTypeError(
            f"Content-Type must be application/json, got {content_type[:100]!r}"
        )
    settings = state.settings
    readings = parse_readings(
        await read_body(content_length, chunks, settings.max_body_bytes), state
    )
    context["batch_size"] = len(readings)
    if settings.fault_delay_ms:
        await asyncio.sleep(settings.fault_delay_ms / 1000)
    if settings.fault_error_ratio and random.random() < settings.fault_error_ratio:  # noqa: S311
        raise InjectedFaultError("fault injected (FAULTLINE_FAULT_ERROR_RATIO)")
    numeric, codes = to_arrays(readings)
    state.batch_size.observe(len(readings))
    probabilities = (await state.batcher.submit(numeric, codes)).tolist()
    threshold = predictor.threshold
    body = {
        "model_version": predictor.version,
        "request_id": request_id,
        "threshold": threshold,
        "predictions": [
            {"failure_probability": p, "failure": p >= threshold} for p in probabilities
        ],
    }
    if state.sample_rate and random.random() < state.sample_rate:  # noqa: S311
        log.info(
            "prediction",
            model_version=predictor.version,
            inputs=readings,
            outputs=body["predictions"],
        )
    return orjson.dumps(body)


@router.get("/v1/model", responses={503: ERRORS[503]}, summary="Metadata of the loaded bundle")
def model(state: State) -> dict[str, Any]:
    predictor = state.predictor
    if predictor is None:
        raise ModelNotReadyError(state.not_ready_reason)
    meta = predictor.bundle.metadata
    keys = (
        "name",
        "version",
        "created_at",
        "git_commit",
        "estimator",
        "threshold",
        "threshold_objective",
        "metrics",
        "schema",
        "schema_hash",
        "sklearn_version",
        "python_version",
        "data",
        "params",
    )
    return {
        **{k: meta.get(k) for k in keys},
        "bundle_hash": predictor.bundle.bundle_hash,
        "inference_path": predictor.inference_path,
    }


@router.get("/healthz", response_model=Health, summary="Liveness: the process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: ERRORS[503]},
    summary="Readiness: a verified bundle is loaded and warmed",
)
def readyz(state: State) -> Response:
    if state.predictor is None:
        raise ModelNotReadyError(state.not_ready_reason)
    return Response(
        orjson.dumps({"status": "ready", "model_version": state.predictor.version}),
        media_type="application/json",
    )
