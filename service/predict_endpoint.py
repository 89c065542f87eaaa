"""POST /v1/predict as plain ASGI, in front of FastAPI's router.

FastAPI's per-request machinery (route matching, Request object, dependency solving, response
class, exception middleware) costs about as much as everything /v1/predict itself does. This
layer is the one implementation of the hot operation (`routes.answer_predict`, with the error
bodies of `errors.service_error_answer`); the FastAPI route only declares it (OpenAPI, 405 for
other methods, the route label). It sits inside the instrumentator's middleware (HTTP RED metrics)
and the request-context middleware (request id, canonical log line), so both see it as usual.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import (
    CLIENT_CLOSED_BODY,
    ServiceError,
    UnsupportedMediaTypeError,
    client_gone_status,
    service_error_answer,
    unexpected_error_answer,
)
from service.oip import BINARY_HEADER, answer_infer, error_answer
from service.routes import answer_predict
from service.state import AppState

JSON = (b"content-type", b"application/json")


class ClientGoneError(Exception):
    """The client disconnected before sending its whole body: nobody to answer."""


async def body_chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGoneError
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


class PredictEndpoint:
    """Serves POST /v1/predict and the OIP infer paths; passes everything else on to FastAPI."""

    def __init__(
        self, app: ASGIApp, state: AppState, route: Any, infer_routes: tuple[Any, ...]
    ) -> None:
        self.app = app
        self.state = state
        self.route = route  # the FastAPI routes: logs and metrics name them as usual
        self.path = route.path
        self.infer_routes = infer_routes  # /v2/models/{name}/infer, .../versions/{v}/infer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == self.path:
            oip = False
            scope["route"] = self.route
        elif path.startswith("/v2/models/") and path.endswith("/infer"):
            oip = True
            scope["route"] = self.infer_routes[path.count("/") == 6]
        else:
            await self.app(scope, receive, send)
            return
        content_type, content_length, binary = b"", None, False
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                content_length = value.decode("latin-1")
            elif name == BINARY_HEADER:
                binary = True
        request_state = scope["state"]
        headers = [JSON]
        try:
            if binary:
                raise UnsupportedMediaTypeError(
                    "the binary tensor data extension is not supported: send JSON tensors "
                    "(tritonclient: binary_data=False)"
                )
            request = (
                content_type.decode("latin-1"),
                content_length,
                body_chunks(receive),
                request_state["request_id"],
                request_state["log_context"],
            )
            if oip:
                body = await answer_infer(self.state, path, *request)
            else:
                body = await answer_predict(self.state, *request)
            status = 200
        except ClientGoneError:
            # Nobody will read an answer (the server drops it), but the metrics and the log
            # line record its status: 499, not the 500 of a response never started.
            status, body = client_gone_status(self.state, scope), CLIENT_CLOSED_BODY
        except ServiceError as exc:
            if oip:
                status, body = error_answer(self.state, exc)
            else:
                status, body, extra = service_error_answer(self.state, exc)
                headers += [(k.lower().encode(), v.encode()) for k, v in extra]
        except Exception as exc:  # never a traceback to the client; the stack goes to the log
            status, body = 500, unexpected_error_answer(exc)
            if oip:
                body = orjson.dumps({"error": orjson.loads(body)["error"]["message"]})
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
