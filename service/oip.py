"""The Open Inference Protocol (KServe v2 REST) as a translation layer over the /v1 core.

Columns in (one tensor per feature, BYTES for the product type), the same validation,
`Predictor.predict` (micro-batching, metrics, logs), columns out (`failure_probability` FP64,
`failure` BOOL); errors in the protocol's shape `{"error": "..."}`. The infer operation is
answered by service.predict_endpoint.PredictEndpoint like /v1/predict; metadata and health are
plain routes here. The protocol's document: ../shared/protocols/open-inference-protocol-v2-rest.yaml
(KServe docs/predict-api/v2).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from itertools import chain
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from model import features as F
from service.errors import (
    InvalidInputError,
    ModelNotReadyError,
    ServiceError,
    UnsupportedMediaTypeError,
)
from service.routes import check_readings, load_json, read_body
from service.state import AppState

PROTOCOL_VERSION = "2"
PLATFORM = "faultline"
NUMERIC_TYPES = frozenset(
    {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64"}
    | {"UINT8", "UINT16", "UINT32", "UINT64"}
)
INPUTS = {f.name: "FP64" for f in F.NUMERIC_FEATURES} | {F.PRODUCT_TYPE.name: "BYTES"}
OUTPUTS = {"failure_probability": "FP64", "failure": "BOOL"}
ALL_OUTPUTS = list(OUTPUTS)
INFER_PATHS = (
    "/v2/models/{model_name}/infer",
    "/v2/models/{model_name}/versions/{model_version}/infer",
)
# the binary tensor data extension (tritonclient's default): its header names the JSON part
BINARY_HEADER = b"inference-header-content-length"

router = APIRouter(tags=["Open Inference Protocol v2"])


class OipError(BaseModel):
    """The protocol's error body."""

    error: str


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses of an operation, in the protocol's error shape."""
    text = {
        400: "Invalid inference request (also what /v1 answers 422 for).",
        404: "No such model name or version on this server.",
        413: "Body larger than FAULTLINE_MAX_BODY_BYTES.",
        415: "Not JSON, or the binary tensor data extension.",
        503: "The model is not loaded (yet).",
    }
    return {code: {"model": OipError, "description": text[code]} for code in statuses}


class ModelNotFoundError(ServiceError):
    status, type = 404, "model_not_found"


def error_answer(state: AppState | None, exc: ServiceError) -> tuple[int, bytes]:
    """(status, body) in the protocol's error shape; invalid input is 400, counted as on /v1."""
    if state is not None and exc.status < 500:
        state.count_invalid(exc.reasons)
    status = 400 if exc.status == 422 else exc.status
    return status, orjson.dumps({"error": exc.message})


def _invalid(message: str, reason: str = "wrong_type", field: str = "body") -> InvalidInputError:
    detail = {"loc": ["inputs"], "reason": reason, "message": message}
    return InvalidInputError(message, [detail], [(reason, field)])


def served_model(state: AppState, name: str, version: str | None) -> Any:
    """The Predictor if `name` (and `version`, when given) is what this server serves."""
    if name != state.settings.model_name:
        raise ModelNotFoundError(
            f"unknown model {name[:100]!r}; this server serves {state.settings.model_name!r}"
        )
    predictor = state.predictor
    if predictor is None:
        raise ModelNotReadyError(state.not_ready_reason)
    if version is not None and version != predictor.version:
        raise ModelNotFoundError(
            f"model {name!r} has no version {version[:100]!r}; it serves {predictor.version!r}"
        )
    return predictor


def _column(tensor: Any, max_batch: int) -> tuple[str, list[Any], int]:
    """(name, flat values, rank) of one request input, its shape and datatype checked."""
    if type(tensor) is not dict:
        raise _invalid("each input must be an object with name, shape, datatype and data")
    name, shape = tensor.get("name"), tensor.get("shape")
    datatype, data = tensor.get("datatype"), tensor.get("data")
    if type(name) is not str or name not in INPUTS:
        raise _invalid(
            f"unknown input {str(name)[:100]!r}; inputs are {sorted(INPUTS)}",
            "unknown_field",
            "unknown",
        )
    # [N] or [N, 1]; written out (no generator): this runs per tensor on the hot path
    if not (
        type(shape) is list
        and (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1 and type(shape[1]) is int))
        and type(shape[0]) is int
    ):
        raise _invalid(f"input {name!r}: shape must be [N] or [N, 1], got {str(shape)[:100]}")
    if not 1 <= shape[0] <= max_batch:
        reason = "empty_batch" if shape[0] < 1 else "batch_too_large"
        raise _invalid(f"input {name!r}: {shape[0]} rows; 1 to {max_batch} allowed", reason, name)
    if datatype != INPUTS[name] and (INPUTS[name] == "BYTES" or datatype not in NUMERIC_TYPES):
        expected = "BYTES" if INPUTS[name] == "BYTES" else "a numeric type"
        raise _invalid(
            f"input {name!r}: datatype {str(datatype)[:20]!r}, expected {expected}",
            "wrong_type",
            name,
        )
    if type(data) is not list:
        raise _invalid(f"input {name!r}: data must be a list")
    if data and type(data[0]) is list:  # row-major nested form, [[v], [v], ...]
        if not all(type(row) is list and len(row) == 1 for row in data):
            raise _invalid(f"input {name!r}: nested data must match shape [N, 1]")
        data = list(chain.from_iterable(data))
    if len(data) != shape[0]:
        raise _invalid(f"input {name!r}: {len(data)} values for shape {shape}")
    return name, data, len(shape)


def to_readings(payload: Any, max_batch: int) -> tuple[list[dict[str, Any]], int, list[str]]:
    """(readings, output rank, requested outputs) from an inference request."""
    if type(payload) is not dict or type(payload.get("inputs")) is not list:
        raise _invalid('body must be an inference request: {"inputs": [...]}')
    inputs = payload["inputs"]
    if len(inputs) > len(INPUTS):
        raise _invalid(
            f"{len(inputs)} inputs; the model takes {len(INPUTS)}", "unknown_field", "unknown"
        )
    columns: dict[str, list[Any]] = {}
    rank = 1
    for tensor in inputs:
        name, data, rank = _column(tensor, max_batch)
        if name in columns:
            raise _invalid(f"input {name!r} given twice")
        columns[name] = data
    missing = [name for name in INPUTS if name not in columns]
    if missing:
        raise _invalid(f"missing inputs {missing}", "missing_field", missing[0])
    rows = {len(v) for v in columns.values()}
    if len(rows) != 1:
        raise _invalid(f"inputs have different row counts {sorted(rows)}")
    names = ALL_OUTPUTS
    wanted = payload.get("outputs")
    if wanted:  # a subset of the outputs (most clients ask for none: all of them)
        if type(wanted) is not list or len(wanted) > len(OUTPUTS):
            message = f"outputs must be a list of at most {len(OUTPUTS)} of {sorted(OUTPUTS)}"
            raise _invalid(message)
        names = [str(o.get("name")) if type(o) is dict else "" for o in wanted]
        if any(n not in OUTPUTS for n in names) or len(set(names)) < len(names):
            message = f"outputs {str(names)[:200]}: each at most once, of {sorted(OUTPUTS)}"
            raise _invalid(message)
    keys = list(columns)
    readings = [dict(zip(keys, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    return readings, rank, names


async def answer_infer(
    state: AppState,
    path: str,
    content_type: str,
    content_length: str | None,
    chunks: AsyncIterator[bytes],
    request_id: str,
    context: dict[str, Any],
) -> bytes:
    """The JSON inference response for POST /v2/models/{name}[/versions/{v}]/infer."""
    parts = path.split("/")  # "", "v2", "models", name, ["versions", version,] "infer"
    if len(parts) not in (5, 7) or (len(parts) == 7 and parts[4] != "versions"):
        raise ModelNotFoundError(f"no inference endpoint at {path[:200]!r}")
    predictor = served_model(state, parts[3], parts[5] if len(parts) == 7 else None)
    context["model_version"] = predictor.version
    media = content_type.split(";")[0].strip().lower()
    if media not in ("", "application/json"):
        raise UnsupportedMediaTypeError(
            f"Content-Type must be application/json, got {media[:100]!r}"
        )
    raw = await read_body(content_length, chunks, state.settings.max_body_bytes)
    payload = load_json(raw, state.settings.max_batch)
    readings, rank, outputs = to_readings(payload, state.settings.max_batch)
    try:
        check_readings({"instances": readings}, state)  # the same validation as /v1
    except InvalidInputError as exc:  # locations in this protocol's terms: rows of inputs
        exc.message = exc.message.replace("instances.", "row ", 1)
        raise
    context["batch_size"] = len(readings)
    answer = await predictor.predict(readings)
    shape = [len(readings)] if rank == 1 else [len(readings), 1]
    data = {"failure_probability": answer.probabilities, "failure": answer.failures}
    request_given = payload.get("id")
    return orjson.dumps(
        {
            "model_name": parts[3],
            "model_version": predictor.version,
            "id": request_given if type(request_given) is str else request_id,
            "parameters": {"threshold": answer.threshold},
            "outputs": [
                {"name": name, "datatype": OUTPUTS[name], "shape": shape, "data": data[name]}
                for name in outputs
            ],
        }
    )


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.faultline
    return state


def _metadata(state: AppState, name: str, version: str | None) -> Response:
    try:
        predictor = served_model(state, name, version)
    except ServiceError as exc:
        return Response(error_answer(None, exc)[1], exc.status, media_type="application/json")
    return _json(
        {
            "name": name,
            "versions": [predictor.version],
            "platform": PLATFORM,
            "inputs": [{"name": n, "datatype": t, "shape": [-1]} for n, t in INPUTS.items()],
            "outputs": [{"name": n, "datatype": t, "shape": [-1]} for n, t in OUTPUTS.items()],
        }
    )


def _ready(state: AppState, name: str, version: str | None) -> Response:
    try:
        served_model(state, name, version)
    except ServiceError as exc:
        return Response(error_answer(None, exc)[1], exc.status, media_type="application/json")
    return _json({"name": name, "ready": True})


@router.get("/v2/health/live", summary="Server live (OIP)")
async def live() -> Response:
    return _json({"live": True})


@router.get(
    "/v2/health/ready",
    summary="Server ready (OIP): 503 until the model is loaded",
    responses=errors(503),
)
async def ready(request: Request) -> Response:
    state = _state(request)
    return _json({"ready": state.predictor is not None}, 200 if state.predictor else 503)


@router.get("/v2", summary="Server metadata (OIP)")
@router.get("/v2/", include_in_schema=False)  # the protocol document's spelling
async def server_metadata(request: Request) -> Response:
    return _json({"name": PLATFORM, "version": request.app.version, "extensions": []})


@router.get(
    "/v2/models/{model_name}",
    summary="Model metadata (OIP)",
    responses=errors(404, 503),
)
async def model_metadata(request: Request, model_name: str) -> Response:
    return _metadata(_state(request), model_name, None)


@router.get(
    "/v2/models/{model_name}/versions/{model_version}",
    summary="Model metadata (OIP)",
    responses=errors(404, 503),
)
async def version_metadata(request: Request, model_name: str, model_version: str) -> Response:
    return _metadata(_state(request), model_name, model_version)


@router.get(
    "/v2/models/{model_name}/ready", summary="Model ready (OIP)", responses=errors(404, 503)
)
async def model_ready(request: Request, model_name: str) -> Response:
    return _ready(_state(request), model_name, None)


@router.get(
    "/v2/models/{model_name}/versions/{model_version}/ready",
    summary="Model ready (OIP)",
    responses=errors(404, 503),
)
async def version_ready(request: Request, model_name: str, model_version: str) -> Response:
    return _ready(_state(request), model_name, model_version)


INFER_SUMMARY = "Inference (OIP): one tensor per feature in, probability and decision out"


@functools.cache  # built once per process, shared by every app (service.routes says why)
def declare_infer() -> tuple[APIRoute, APIRoute]:
    """Declare the infer operations (OpenAPI, 405 for other methods, the route label of
    metrics and logs); service.predict_endpoint.PredictEndpoint answers every POST to them in
    front of the router, so the declared bodies never run."""

    async def infer(model_name: str) -> Response:
        raise RuntimeError("POST .../infer is answered by PredictEndpoint, not the router")

    async def infer_version(model_name: str, model_version: str) -> Response:
        raise RuntimeError("POST .../infer is answered by PredictEndpoint, not the router")

    options: dict[str, Any] = {
        "methods": ["POST"],
        "summary": INFER_SUMMARY,
        "tags": list(router.tags),
        "responses": errors(400, 404, 413, 415, 503),
    }
    declared = APIRouter()
    declared.add_api_route(INFER_PATHS[0], infer, **options)
    declared.add_api_route(INFER_PATHS[1], infer_version, **options)
    first, second = declared.routes
    assert isinstance(first, APIRoute)
    assert isinstance(second, APIRoute)
    return first, second
