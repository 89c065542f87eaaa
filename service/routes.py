"""HTTP translation only: parse and check the request, call the Predictor, shape the answer."""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import AsyncIterator
from typing import Annotated, Any, NoReturn, Union

import orjson
import structlog
from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.routing import APIRoute
from pydantic import TypeAdapter

from service.errors import (
    InjectedFaultError,
    InvalidInputError,
    MalformedJSONError,
    ModelNotReadyError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from service.predictor import Predictor
from service.schemas import (
    READING,
    ErrorResponse,
    ExplainResponse,
    Health,
    PredictResponse,
    Reading,
)
from service.state import AppState
from service.validation import N_FIELDS, validate_readings

log = structlog.get_logger("faultline.predictions")
# Above this body size (~200 readings) a request is "large": large requests do their CPU work
# one at a time (AppState.large_requests) and yield to the event loop between its steps, so a
# loop iteration holds at most one step of one large request (~1 ms for 1,000 readings, ~3 ms
# to parse the largest invalid body) whatever the number of clients: /healthz stays fast while
# many clients send large batches. Small requests take neither the lane nor the yields.
LARGE_BODY = 32_768
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

EXPLAIN_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    422: {
        "model": ErrorResponse,
        "description": "A reading or the batch is invalid (at most FAULTLINE_EXPLAIN_MAX_BATCH "
        "readings); `details` as on /v1/predict.",
    },
    502: {"model": ErrorResponse, "description": "The explainer answered something unusable."},
    503: {
        "model": ErrorResponse,
        "description": "No model loaded; explanations off (FAULTLINE_EXPLAINER_URL empty); the "
        "explainer unreachable, not ready or busy (`explainer_unavailable`); or it serves "
        "another model version (`explainer_version_mismatch`).",
    },
    504: {
        "model": ErrorResponse,
        "description": "No answer from the explainer within FAULTLINE_EXPLAIN_TIMEOUT_SECONDS.",
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
    """JSON -> validated readings (one reading, or {"instances": [...]}); bounded work."""
    return check_readings(load_json(body, state.settings.max_batch), state)


def load_json(body: bytes, max_batch: int) -> Any:
    """The parsed body; 400 when it is not JSON, 422 when its structure is far larger than the
    largest batch's. Both checks run at C speed (~0.3 ms per 512 KiB) where parsing would not:
    ~100,000 tiny arrays take ~100 ms to parse, 40,000 unknown keys ~10 ms."""
    if len(body) > LARGE_BODY:
        containers = body.count(b"{") + body.count(b"[")
        if containers > max_batch + 2:  # {"instances": [{...}, ...]}: max_batch + 2 at most
            _too_large(f"{containers} JSON objects and arrays", max_batch, max_batch + 2)
        # A full batch holds ~2 x max_batch x N_FIELDS ':' and ','; up to twice that still
        # gets per-reading details (readings with a few extra fields are a common mistake)
        separators = body.count(b":") + body.count(b",")
        if separators > 4 * max_batch * N_FIELDS:
            _too_large(f"{separators} keys and values", max_batch, 2 * max_batch * N_FIELDS + 1)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSONError(f"body is not valid JSON: {exc}") from exc


def _too_large(what: str, max_batch: int, most: int) -> NoReturn:
    message = (
        f"body holds {what}; a batch of at most {max_batch} readings of {N_FIELDS} fields "
        f"holds at most {most}"
    )
    detail = {"loc": ["instances"], "reason": "batch_too_large", "message": message}
    raise InvalidInputError(message, [detail], [("batch_too_large", "instances")])


def check_readings(payload: Any, state: AppState) -> list[dict[str, Any]]:
    """Validated readings from a parsed body; 422 (InvalidInputError) otherwise."""
    if not isinstance(payload, dict):
        raise _not_an_object()
    return validate_readings(payload, READING, state.batch_adapter, state.settings.max_batch)


def check_payload(payload: Any, batch: TypeAdapter[Any], max_batch: int) -> list[dict[str, Any]]:
    """check_readings with another batch limit (`batch` validates it): POST /v1/explain."""
    if not isinstance(payload, dict):
        raise _not_an_object()
    return validate_readings(payload, READING, batch, max_batch)


def _not_an_object() -> InvalidInputError:
    message = 'body must be a JSON object: one reading or {"instances": [...]}'
    detail = {"loc": ["body"], "reason": "wrong_type", "message": message}
    return InvalidInputError(message, [detail], [("wrong_type", "body")])


# The declared routes are built once per batch type and shared by every app of the process:
# building one (FastAPI's response and body fields) is most of create_app's time.


@functools.cache
def declare_predict(batch: Any) -> APIRoute:
    """Declare POST /v1/predict, its body typed by the configured batch (the limit is a
    setting): the OpenAPI operation, the router's 405 for other methods, the route label of
    metrics and logs. service.predict_endpoint.PredictEndpoint answers every POST in front of
    the router (with `answer_predict`), so the declared body never runs."""

    return _declare_body_route(
        "/v1/predict",
        batch,
        "service.predict_endpoint.PredictEndpoint",
        response_model=PredictResponse,
        responses=ERRORS,
        summary="Failure probability and decision for one reading or a batch",
    )


@functools.cache
def declare_explain(batch: Any) -> APIRoute:
    """Declare POST /v1/explain like /v1/predict (its batch type carries the explain limit);
    service.explain.ExplainEndpoint answers it."""
    return _declare_body_route(
        "/v1/explain",
        batch,
        "service.explain.ExplainEndpoint",
        response_model=ExplainResponse,
        responses=EXPLAIN_ERRORS,
        summary="Per-feature attributions of the failure score, from the explainer",
    )


def _declare_body_route(path: str, batch: Any, answered_by: str, **options: Any) -> APIRoute:
    """A POST route whose body is one reading or a batch; `answered_by`, an ASGI endpoint in
    front of the router, answers it."""

    async def endpoint(payload: Any) -> Response:
        raise RuntimeError(f"POST {path} is answered by {answered_by}")

    endpoint.__annotations__["payload"] = Annotated[Union[Reading, batch], Body()]  # noqa: UP007
    endpoint.__name__ = path.rsplit("/", 1)[-1]  # the OpenAPI operation id
    declared = APIRouter()
    declared.post(path, **options)(endpoint)
    route = declared.routes[-1]
    assert isinstance(route, APIRoute)
    return route


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
    raw = await read_body(content_length, chunks, settings.max_body_bytes)
    if len(raw) <= LARGE_BODY:
        return await _answer(state, predictor, raw, request_id, context, large=False)
    async with state.large_requests:
        return await _answer(state, predictor, raw, request_id, context, large=True)


async def _answer(
    state: AppState,
    predictor: Predictor,
    raw: bytes,
    request_id: str,
    context: dict[str, Any],
    large: bool,
) -> bytes:
    settings = state.settings
    payload = load_json(raw, settings.max_batch)
    if large:  # let probes and small requests run between the steps of a large request
        await asyncio.sleep(0)
    readings = check_readings(payload, state)
    if large:
        await asyncio.sleep(0)
    context["batch_size"] = len(readings)
    if settings.fault_delay_ms:
        await asyncio.sleep(settings.fault_delay_ms / 1000)
    if settings.fault_error_ratio and random.random() < settings.fault_error_ratio:  # noqa: S311
        raise InjectedFaultError("fault injected (FAULTLINE_FAULT_ERROR_RATIO)")
    answer = await predictor.predict(readings)
    threshold = answer.threshold
    return orjson.dumps(
        {
            "model_version": answer.model_version,
            "request_id": request_id,
            "threshold": threshold,
            "predictions": [  # each decision carries the threshold it was made with
                {"failure_probability": p, "failure": f, "threshold": threshold}
                for p, f in zip(answer.probabilities, answer.failures, strict=True)
            ],
        }
    )


@router.get("/v1/model", responses={503: ERRORS[503]}, summary="Metadata of the loaded bundle")
async def model(state: State) -> Response:
    # async and pre-rendered at load: answered on the event loop, never in the thread pool
    if state.model_body is None:
        raise ModelNotReadyError(state.not_ready_reason)
    return Response(state.model_body, media_type="application/json")


HEALTHY = orjson.dumps({"status": "ok", "model_version": None})


@router.get("/healthz", response_model=Health, summary="Liveness: the process is up")
async def healthz() -> Response:
    return Response(HEALTHY, media_type="application/json")


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: ERRORS[503]},
    summary="Readiness: a verified bundle is loaded and warmed",
)
async def readyz(state: State) -> Response:
    if state.ready_body is None:
        raise ModelNotReadyError(state.not_ready_reason)
    return Response(state.ready_body, media_type="application/json")
