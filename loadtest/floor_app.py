"""A bare ASGI app answering a fixed JSON body: the floor the benchmark compares against."""

from __future__ import annotations

from typing import Any

BODY = b'{"predictions":[{"failure_probability":0.0,"failure":false}]}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})
