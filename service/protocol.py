"""uvicorn's httptools protocol with the limits a hostile client must not get around.

- Request line + headers: at most FAULTLINE_MAX_HEADER_BYTES bytes and FAULTLINE_MAX_HEADERS
  fields (431), complete within FAULTLINE_HEADER_TIMEOUT_SECONDS of their first byte (or of the
  connection opening) (408). httptools alone buffers a header that never ends without limit.
- Body: complete within FAULTLINE_BODY_TIMEOUT_SECONDS of the headers (408).
- Drain (SIGTERM): uvicorn closes idle keep-alive connections at once, so a request a client
  has just written on one is lost. Here an idle connection stays open for
  FAULTLINE_DRAIN_IDLE_SECONDS; what arrives is answered with `Connection: close`. At
  FAULTLINE_DRAIN_SECONDS a request still unanswered gets the JSON error body (408 when its
  body is incomplete, 503 otherwise) instead of uvicorn's plain-text 500 on cancellation.

- Probes: `GET /healthz` and `GET /readyz` are answered right here, from the app's state, when
  their headers arrive (then the connection closes): no ASGI task, no turn in the event loop's
  queue behind the steps of other requests, so they stay fast while the loop is busy.

Every refusal is the JSON error body, closes the connection and is counted in
faultline_http_protocol_rejections_total{reason}. Deadlines are checked by one sweep per
SWEEP_SECONDS over all connections, so a request only stores a timestamp (no timer per request).
The app's lifespan state ({"faultline": AppState}) gives the settings and metrics.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import structlog
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from service.config import Settings
from service.errors import ABORTED
from service.routes import HEALTHY

PROBES = (b"/healthz", b"/readyz")

SWEEP_SECONDS = 0.25
log = structlog.get_logger("faultline.http")


class _RefusedError(Exception):
    """Raised in a parser callback to stop parsing a request the guard refuses."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol plus header limits, request timeouts and a lossless drain."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._app = app_state.get("faultline")
        settings = self._app.settings if self._app is not None else Settings.model_construct()
        self._max_head = settings.max_header_bytes
        self._max_headers = settings.max_headers
        self._head_timeout = settings.header_timeout_seconds
        self._body_timeout = settings.body_timeout_seconds
        self._drain_idle = settings.drain_idle_seconds
        self._drain_seconds = settings.drain_seconds
        self._in_head = True  # between requests, or reading a request line and headers
        self._head_bytes = 0
        self._deadline: float | None = None
        self._probe = False  # this request is a probe answered by the protocol
        self._draining = False
        self._refusal: tuple[int, str, str] | None = None

    # --- connection and parser callbacks -----------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline = self.loop.time() + self._head_timeout  # a first request must come
        if getattr(self.server_state, "faultline_sweeper", None) is None:
            sweeper = self.loop.create_task(_sweep(self.server_state, self.loop))
            self.server_state.faultline_sweeper = sweeper  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            if self._deadline is None:
                self._deadline = self.loop.time() + self._head_timeout
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self._max_head and not self.transport.is_closing():
            self._refusal = (431, "header_too_large", "request line and headers are too large")
            self.send_400_response("")

    def on_headers_complete(self) -> None:
        # counted here, not per header (no extra call per header): the list is bounded by
        # max_header_bytes meanwhile
        if len(self.headers) > self._max_headers:
            self._refusal = (431, "too_many_headers", "too many header fields")
            raise _RefusedError
        self._in_head = False
        self._deadline = self.loop.time() + self._body_timeout
        probe = self.url in PROBES and self._app is not None and self._idle()
        if probe and self.parser.get_method() == b"GET":
            self._probe = True
            self._answer_probe()
            return
        super().on_headers_complete()
        if self._draining and self.cycle is not None:
            self.cycle.keep_alive = False  # answered, then closed: the drain loses nothing

    def on_body(self, body: bytes) -> None:
        if not self._probe:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._probe:
            self._probe = False
        else:
            super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0
        self._deadline = None

    def send_400_response(self, msg: str) -> None:
        status, reason, message = self._refusal or (400, "malformed_http", "invalid HTTP request")
        self._count(reason)
        self._write_error(status, reason, message)

    def _idle(self) -> bool:
        """No request of this connection is being answered (a probe answer cannot overtake)."""
        return self.cycle is None or self.cycle.response_complete

    def _answer_probe(self) -> None:
        state = self._app
        assert state is not None  # checked by the caller
        if self.url == b"/healthz":
            status, body = 200, HEALTHY
        elif state.ready_body is not None:
            status, body = 200, state.ready_body
        else:
            status = 503
            error = {"type": "model_not_ready", "message": state.not_ready_reason, "details": None}
            body = orjson.dumps({"error": error})
        self._write(status, body)

    # --- deadlines ---------------------------------------------------------------------------
    def check_deadline(self, now: float) -> None:
        """Called by the sweep: refuse a request (or close a silent connection) past its time."""
        if self._deadline is None or now < self._deadline or self.transport.is_closing():
            return
        self._deadline = None
        if self._in_head:
            self._count("header_timeout")
            if self._head_bytes:
                self._write_error(408, "request_timeout", "request headers took too long")
            else:  # a connection that never sent a request: nothing to answer
                self.transport.close()
        else:
            self._abort(408, "body_timeout", "request body took too long")

    def _abort(self, status: int, reason: str, message: str) -> None:
        """Answer the request in progress ourselves; the app sees a disconnect."""
        self._count(reason)
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            self.transport.close()
            return
        if cycle.response_started:  # half an answer is out: only closing is left
            self.transport.close()
            return
        request_state = cycle.scope.get("state", {})
        request_state[ABORTED] = status  # the app records this status, not a 499
        error_type = "request_timeout" if status == 408 else "shutting_down"
        self._write_error(status, error_type, message, request_state.get("request_id"))
        cycle.disconnected = True  # the app's receive() returns http.disconnect
        cycle.message_event.set()

    # --- drain -------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: keep idle connections a moment, answer, then close."""
        self._draining = True
        self.loop.call_later(self._drain_seconds, self._drain_deadline)
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False
        elif self._drain_idle:
            self.loop.call_later(self._drain_idle, self._close_if_idle)
        else:
            self._close_if_idle()

    def _close_if_idle(self) -> None:
        idle = self.cycle is None or self.cycle.response_complete
        if idle and not self._head_bytes and not self.transport.is_closing():
            self.transport.close()

    def _drain_deadline(self) -> None:
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            self.transport.close()
        elif cycle.more_body:
            self._abort(408, "drain_deadline", "server shutting down; request body incomplete")
        else:
            self._abort(503, "drain_deadline", "server shutting down; retry")

    # --- helpers -----------------------------------------------------------------------------
    def _count(self, reason: str) -> None:
        if self._app is not None:
            self._app.metrics.protocol_rejections.labels(reason).inc()
        client = f"{self.client[0]}:{self.client[1]}" if self.client else None
        log.info("http_rejected", reason=reason, client=client)

    def _write_error(
        self, status: int, error_type: str, message: str, request_id: str | None = None
    ) -> None:
        """The JSON error body, written by the protocol itself, then close."""
        body = orjson.dumps({"error": {"type": error_type, "message": message, "details": None}})
        self._write(status, body, request_id)

    def _write(self, status: int, body: bytes, request_id: str | None = None) -> None:
        """A complete JSON answer written by the protocol itself, then close."""
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"content-type: application/json\r\n")
        head.append(b"content-length: %d\r\nconnection: close\r\n" % len(body))
        if status == 503:
            head.append(b"retry-after: 5\r\n")
        if request_id:
            head += [b"x-request-id: ", request_id.encode(), b"\r\n"]
        head.append(b"\r\n")
        if not self.transport.is_closing():
            self.transport.write(b"".join(head) + body)
            self.transport.close()


async def _sweep(server_state: ServerState, loop: asyncio.AbstractEventLoop) -> None:
    """Enforce every connection's deadline, a few times a second."""
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        now = loop.time()
        for connection in list(server_state.connections):
            check = getattr(connection, "check_deadline", None)
            if check is not None:
                check(now)
