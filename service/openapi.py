"""The OpenAPI document: FastAPI's, plus the request schemas /v1/predict validates by hand.

/v1/predict reads its body itself (size limit, strict parsing; the micro-batcher may merge it
with concurrent requests into one model call), so FastAPI does not see the body models; they are
added here, exactly as pydantic validates them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import TypeAdapter

REF = "#/components/schemas/{model}"


def install_openapi(app: FastAPI, adapters: list[TypeAdapter[Any]]) -> None:
    """Generate the document once, with the adapters' schemas (and $defs) as components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            for adapter in adapters:
                schema = adapter.json_schema(ref_template=REF)
                schemas.update(schema.pop("$defs", {}))
                schemas[schema["title"]] = schema
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
