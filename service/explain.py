"""POST /v1/explain (and the OIP's /v2/models/{name}/explain) on the service: validate like
/v1/predict, then ask the explainer.

The explainer (`python -m explainer`, its own Deployment or process) holds the attribution
libraries; the service only forwards validated readings over one pooled HTTP client
(service/explainer_client.py), so the service's image and /v1/predict's speed stay as they are.
`ExplainEndpoint` sits inside `PredictEndpoint`, which answers /v1/predict before it: nothing is
added to predict's path. Every failure of the explainer is a 502/503/504 JSON error, never a 500.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Response
from fastapi.routing import APIRoute
from pydantic import TypeAdapter
from starlette.types import ASGIApp, Receive, Scope, Send

from service import oip
from service.errors import (
    CLIENT_CLOSED_BODY,
    ExplainerError,
    ExplainerUnavailableError,
    InvalidInputError,
    ModelNotReadyError,
    ServiceError,
    UnsupportedMediaTypeError,
    client_gone_status,
    service_error_answer,
    unexpected_error_answer,
)
from service.explainer_client import EXPLAIN_PATH
from service.predict_endpoint import JSON, ClientGoneError, body_chunks
from service.routes import LARGE_BODY, check_payload, load_json, read_body

if TYPE_CHECKING:
    from service.state import AppState


async def answer_explain(
    state: AppState,
    batch: TypeAdapter[Any],
    content_type: str,
    content_length: str | None,
    chunks: AsyncIterator[bytes],
    request_id: str,
    context: dict[str, Any],
) -> bytes:
    """The JSON answer of POST /v1/explain; raises ServiceError (-> the JSON error body)."""
    predictor = state.predictor
    if predictor is None:
        raise ModelNotReadyError(state.not_ready_reason)
    context["model_version"] = predictor.version
    explainer = state.explainer
    if explainer is None:
        raise ExplainerUnavailableError("explanations are off: FAULTLINE_EXPLAINER_URL is empty")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaTypeError(
            f"Content-Type must be application/json, got {content_type[:100]!r}"
        )
    settings = state.settings
    limit = settings.explain_max_batch
    raw = await read_body(content_length, chunks, settings.max_body_bytes)
    if len(raw) <= LARGE_BODY:
        readings = check_payload(load_json(raw, limit), batch, limit)
    else:  # parsing a large (hence invalid) body: one at a time, as /v1/predict does
        async with state.large_requests:
            readings = check_payload(load_json(raw, limit), batch, limit)
    context["batch_size"] = len(readings)
    return await explainer.explain(readings, predictor.version, request_id)


OIP_EXPLAIN_PATH = "/v2/models/{model_name}/explain"
OIP_OUTPUTS = {"failure_probability": "FP64", "raw_score": "FP64", "attributions": "FP64"}


async def answer_oip_explain(
    state: AppState,
    batch: TypeAdapter[Any],
    path: str,
    content_type: str,
    content_length: str | None,
    chunks: AsyncIterator[bytes],
    request_id: str,
    context: dict[str, Any],
) -> bytes:
    """POST /v2/models/{name}/explain: an OIP inference request in, the attributions as OIP
    outputs (`attributions` is [N, features], the features' order in `parameters`)."""
    parts = path.split("/")  # "", "v2", "models", name, "explain"
    if len(parts) != 5:
        raise oip.ModelNotFoundError(f"no explain endpoint at {path[:200]!r}")
    predictor = oip.served_model(state, parts[3], None)
    context["model_version"] = predictor.version
    explainer = state.explainer
    if explainer is None:
        raise ExplainerUnavailableError("explanations are off: FAULTLINE_EXPLAINER_URL is empty")
    media = content_type.split(";")[0].strip().lower()
    if media not in ("", "application/json"):
        raise UnsupportedMediaTypeError(
            f"Content-Type must be application/json, got {media[:100]!r}"
        )
    limit = state.settings.explain_max_batch
    raw = await read_body(content_length, chunks, state.settings.max_body_bytes)
    payload = load_json(raw, limit)
    if type(payload) is dict:  # every output is answered: `outputs` names infer's
        payload.pop("outputs", None)
    readings, _rank, _names = oip.to_readings(payload, limit)
    try:
        check_payload({"instances": readings}, batch, limit)  # the same validation as /v1
    except InvalidInputError as exc:  # locations in this protocol's terms: rows of inputs
        exc.message = exc.message.replace("instances.", "row ", 1)
        raise
    context["batch_size"] = len(readings)
    answer = orjson.loads(await explainer.explain(readings, predictor.version, request_id))
    try:
        features, explanations = answer["features"], answer["explanations"]
        data = {
            "failure_probability": [e["failure_probability"] for e in explanations],
            "raw_score": [e["raw_score"] for e in explanations],
            # row-major [N, features], as the protocol's flat tensor data
            "attributions": [e["attributions"][f] for e in explanations for f in features],
        }
        parameters = {
            "output": answer["output"],
            "base_value": answer["base_value"],
            "features": features,
        }
    except (KeyError, TypeError) as exc:
        raise ExplainerError("the explainer's answer is not an explanation") from exc
    n = len(readings)
    given = payload.get("id")
    return orjson.dumps(
        {
            "model_name": parts[3],
            "model_version": predictor.version,
            "id": given if type(given) is str else request_id,
            "parameters": parameters,
            "outputs": [
                {
                    "name": name,
                    "datatype": datatype,
                    "shape": [n, len(features)] if name == "attributions" else [n],
                    "data": data[name],
                }
                for name, datatype in OIP_OUTPUTS.items()
            ],
        }
    )


@functools.cache  # built once per process, shared by every app (service.routes says why)
def declare_oip_explain() -> APIRoute:
    """Declare POST /v2/models/{model_name}/explain (OpenAPI, 405, the route label);
    ExplainEndpoint answers it in front of the router."""

    async def explain(model_name: str) -> Response:
        raise RuntimeError("POST .../explain is answered by service.explain.ExplainEndpoint")

    declared = APIRouter()
    declared.add_api_route(
        OIP_EXPLAIN_PATH,
        explain,
        methods=["POST"],
        summary="Explanation (OIP): one tensor per feature in, attributions per reading out",
        tags=list(oip.router.tags),
        responses={
            **oip.errors(400, 404, 413, 415, 503),
            502: {"model": oip.OipError, "description": "The explainer answered nothing usable."},
            504: {"model": oip.OipError, "description": "No answer from the explainer in time."},
        },
    )
    route = declared.routes[-1]
    assert isinstance(route, APIRoute)
    return route


class ExplainEndpoint:
    """Serves POST /v1/explain and /v2/models/{name}/explain; passes everything else on."""

    def __init__(
        self,
        app: ASGIApp,
        state: AppState,
        route: Any,
        oip_route: Any,
        batch: TypeAdapter[Any],
    ) -> None:
        self.app = app
        self.state = state
        self.batch = batch  # validates {"instances": [...]} up to FAULTLINE_EXPLAIN_MAX_BATCH
        self.route = route  # the declared FastAPI routes: the labels of metrics and logs
        self.oip_route = oip_route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == EXPLAIN_PATH:
            oip_request = False
            scope["route"] = self.route
        elif path.startswith("/v2/models/") and path.endswith("/explain"):
            oip_request = True
            scope["route"] = self.oip_route
        else:
            await self.app(scope, receive, send)
            return
        content_type, content_length = b"", None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                content_length = value.decode("latin-1")
        request_state = scope["state"]
        headers = [JSON]
        try:
            request = (
                content_type.decode("latin-1"),
                content_length,
                body_chunks(receive),
                request_state["request_id"],
                request_state["log_context"],
            )
            if oip_request:
                body = await answer_oip_explain(self.state, self.batch, path, *request)
            else:
                body = await answer_explain(self.state, self.batch, *request)
            status = 200
        except ClientGoneError:
            status, body = client_gone_status(self.state, scope), CLIENT_CLOSED_BODY
        except ServiceError as exc:
            if oip_request:
                status, body = oip.error_answer(self.state, exc)
            else:
                status, body, extra = service_error_answer(self.state, exc)
                headers += [(k.lower().encode(), v.encode()) for k, v in extra]
        except Exception as exc:  # never a traceback to the client; the stack goes to the log
            status, body = 500, unexpected_error_answer(exc)
            if oip_request:
                body = orjson.dumps({"error": orjson.loads(body)["error"]["message"]})
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
