"""POST /v1/predict as plain ASGI, in front of FastAPI's router.

FastAPI's per-request machinery (route matching, Request object, dependency solving, response
class, exception middleware) costs about as much as everything /v1/predict itself does. This
layer answers the one hot operation directly, with the same core (`routes.answer_predict`) and
the same error bodies (`errors.service_error_answer`) as the FastAPI route, which still declares
the operation for OpenAPI. It sits inside the instrumentator's middleware (HTTP RED metrics)
and the request-context middleware (request id, canonical log line), so both see it as usual.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import (
    CLIENT_CLOSED_BODY,
    ServiceError,
    client_gone_status,
    service_error_answer,
    unexpected_error_answer,
)
from service.routes import answer_predict
from service.state import AppState

JSON = (b"content-type", b"application/json")


class ClientGoneError(Exception):
    """The client disconnected before sending its whole body: nobody to answer."""


async def _body_chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGoneError
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


class PredictEndpoint:
    """Serves POST /v1/predict; passes everything else on to the FastAPI app."""

    def __init__(self, app: ASGIApp, state: AppState, route: Any) -> None:
        self.app = app
        self.state = state
        self.route = route  # the FastAPI route: logs and metrics name it as usual
        self.path = route.path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        content_type, content_length = b"", None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                content_length = value.decode("latin-1")
        request_state = scope["state"]
        headers = [JSON]
        try:
            body = await answer_predict(
                self.state,
                content_type.decode("latin-1"),
                content_length,
                _body_chunks(receive),
                request_state["request_id"],
                request_state["log_context"],
            )
            status = 200
        except ClientGoneError:
            # Nobody will read an answer (the server drops it), but the metrics and the log
            # line record its status: 499, not the 500 of a response never started.
            status, body = client_gone_status(self.state, scope), CLIENT_CLOSED_BODY
        except ServiceError as exc:
            status, body, extra = service_error_answer(self.state, exc)
            headers += [(k.lower().encode(), v.encode()) for k, v in extra]
        except Exception as exc:  # never a traceback to the client; the stack goes to the log
            status, body = 500, unexpected_error_answer(exc)
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
