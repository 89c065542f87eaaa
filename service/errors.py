"""Domain errors carry their status; one handler turns any of them into the JSON error body."""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from model import features as F

log = structlog.get_logger("faultline.errors")

# pydantic error type -> our bounded `reason` label
REASONS = {
    "missing": "missing_field",
    "extra_forbidden": "unknown_field",
    "greater_than_equal": "out_of_range",
    "less_than_equal": "out_of_range",
    "finite_number": "not_finite",
    "literal_error": "invalid_category",
    "too_long": "batch_too_large",
    "too_short": "empty_batch",
}
KNOWN_FIELDS = {*F.FEATURE_NAMES, "instances"}
INTERNAL_MESSAGE = "internal error; see the logs for the request id"
CLIENT_CLOSED = 499  # nginx's "client closed request": outside 5xx, so outside the SLO
ABORTED = "aborted_status"  # scope["state"] key: the HTTP guard answered this request itself
CLIENT_CLOSED_BODY = orjson.dumps(
    {
        "error": {
            "type": "client_closed_request",
            "message": "the client disconnected before the request was complete",
            "details": None,
        }
    }
)


class ServiceError(Exception):
    """Base: status, stable type code, message, details, and (reason, field) pairs for metrics."""

    status = 500
    type = "internal"

    def __init__(
        self, message: str, details: Any = None, reasons: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.reasons = reasons or [(self.type, "body")]


class InvalidInputError(ServiceError):
    status, type = 422, "invalid_input"


class MalformedJSONError(ServiceError):
    status, type = 400, "malformed_json"


class UnsupportedMediaTypeError(ServiceError):
    status, type = 415, "unsupported_media_type"


class PayloadTooLargeError(ServiceError):
    status, type = 413, "body_too_large"


class ModelNotReadyError(ServiceError):
    status, type = 503, "model_not_ready"


class InjectedFaultError(ServiceError):
    status, type = 503, "injected_fault"


class ExplainerUnavailableError(ServiceError):
    """Explanations are off, or the explainer is unreachable, not ready or busy."""

    status, type = 503, "explainer_unavailable"


class ExplainerVersionMismatchError(ServiceError):
    """The explainer serves another bundle than this service (e.g. during a rollout)."""

    status, type = 503, "explainer_version_mismatch"


class ExplainerTimeoutError(ServiceError):
    status, type = 504, "explainer_timeout"


class ExplainerError(ServiceError):
    """The explainer answered something other than explanations or a known refusal."""

    status, type = 502, "explainer_error"


def error_response(
    status: int,
    type_: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The one JSON error body."""
    body = {"error": {"type": type_, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


def unexpected_error_answer(exc: Exception) -> bytes:
    """Log the stack (with the request id from the context) and return the 500 body."""
    log.error("unhandled_error", exc_info=exc)
    body = {"error": {"type": "internal", "message": INTERNAL_MESSAGE, "details": None}}
    return orjson.dumps(body)


def client_gone_status(state: Any, scope: Any) -> int:
    """Status to record for a request whose client is gone: 499, or what the guard answered."""
    aborted: int | None = scope.get("state", {}).get(ABORTED)
    if aborted is not None:
        return aborted
    if state is not None:
        state.count_client_gone()
    return CLIENT_CLOSED


def service_error_answer(state: Any, exc: ServiceError) -> tuple[int, bytes, list[tuple[str, str]]]:
    """(status, JSON error body, extra headers) for a ServiceError; counts rejected input."""
    if state is not None and exc.status < 500:
        state.count_invalid(exc.reasons)
    headers = [("Retry-After", "5")] if exc.status == 503 else []
    body = {"error": {"type": exc.type, "message": exc.message, "details": exc.details}}
    return exc.status, orjson.dumps(body), headers


def install_handlers(app: FastAPI) -> None:
    """Map every exception class to the JSON error body; never a bare 500 for client input."""

    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> Response:
        status, body, headers = service_error_answer(
            getattr(request.app.state, "faultline", None), exc
        )
        return Response(body, status, dict(headers), media_type="application/json")

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(
            422,
            "invalid_input",
            "request validation failed",
            [{"loc": [str(p) for p in e["loc"]], "message": e["msg"]} for e in exc.errors()][:50],
        )

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> Response:
        # nobody reads this answer: its status is what metrics and the log line record
        status = client_gone_status(getattr(request.app.state, "faultline", None), request.scope)
        return Response(CLIENT_CLOSED_BODY, status, media_type="application/json")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(
            exc.status_code, type_, str(exc.detail), headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        return Response(unexpected_error_answer(exc), 500, media_type="application/json")
