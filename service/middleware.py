"""Pure-ASGI middleware: request id, and one canonical log line per request."""

from __future__ import annotations

import itertools
import os
import re
import time
from typing import Any

import structlog
from prometheus_client import Gauge
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = b"x-request-id"
SAFE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
QUIET_PATHS = {"/healthz", "/readyz", "/metrics"}  # logged at debug: probes are noise

log = structlog.get_logger("faultline.access")
_PREFIX = os.urandom(6).hex()  # per process: ids stay unique across replicas and restarts
_SEQUENCE = itertools.count(1)


def new_request_id() -> str:
    """A unique id, cheaper than uuid4 (no syscall per request)."""
    return f"{_PREFIX}-{next(_SEQUENCE):x}"


class RequestContextMiddleware:
    """Binds the request id (accepted from X-Request-ID when safe), echoes it, logs one line."""

    def __init__(self, app: ASGIApp, in_flight: Gauge) -> None:
        self.app = app
        self.in_flight = in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v for k, v in scope["headers"] if k == REQUEST_ID_HEADER), None)
        request_id = (
            incoming.decode() if incoming and SAFE_REQUEST_ID.match(incoming) else new_request_id()
        )
        context: dict[str, Any] = {}  # the route adds model_version, batch_size, ...
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["log_context"] = context
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER, request_id.encode()),
                ]
            await send(message)

        self.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.in_flight.dec()
            path = scope["path"]
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            emit = log.debug if path in QUIET_PATHS and status < 400 else log.info
            emit(
                "request",
                method=scope["method"],
                route=route,
                status=status,
                latency_ms=round((time.perf_counter() - started) * 1000, 3),
                **context,
            )
            structlog.contextvars.clear_contextvars()
