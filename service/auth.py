"""Optional API-key / bearer-token authentication for /v1/* (pure ASGI, off unless configured).

Keys come from FAULTLINE_API_KEYS_FILE (one per line, so a Kubernetes Secret can be mounted)
and/or FAULTLINE_API_KEYS. A request presents one as `Authorization: Bearer <key>` or
`X-API-Key: <key>`. Keys are compared as SHA-256 digests with hmac.compare_digest against every
configured key, so the time taken says nothing about how much of a key was right.
"""

from __future__ import annotations

import hashlib
import hmac

import orjson
from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

PROTECTED_PREFIX = "/v1/"
CHALLENGE = b'Bearer realm="faultline"'


def _digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


def _unauthorized(message: str) -> bytes:
    body = {"error": {"type": "unauthorized", "message": message, "details": None}}
    return orjson.dumps(body)


MISSING = _unauthorized("this endpoint needs an API key: Authorization: Bearer <key>")
INVALID = _unauthorized("the API key is not valid")


class ApiKeyAuth:
    """401 with the JSON error body and WWW-Authenticate unless /v1/* carries a valid key."""

    def __init__(self, app: ASGIApp, keys: list[str], failures: Counter) -> None:
        self.app = app
        self._digests = [_digest(key.encode()) for key in keys]
        self._missing = failures.labels("missing")
        self._invalid = failures.labels("invalid")

    def _valid(self, presented: bytes) -> bool:
        digest = _digest(presented)
        matched = False
        for known in self._digests:  # always all of them: no early exit to time
            matched |= hmac.compare_digest(digest, known)
        return matched

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIX):
            await self.app(scope, receive, send)
            return
        presented = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, credential = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    presented = credential.strip()
            elif name == b"x-api-key":
                presented = value.strip()
        if presented and self._valid(presented):
            await self.app(scope, receive, send)
            return
        (self._invalid if presented else self._missing).inc()
        body = INVALID if presented else MISSING
        headers = [
            (b"content-type", b"application/json"),
            (b"www-authenticate", CHALLENGE),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})
