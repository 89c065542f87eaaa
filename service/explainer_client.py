"""The service's HTTP client to the explainer, and what each of its answers means for the
client: every failure of the explainer is a 502/503/504 ServiceError, never a 500."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson

from service.errors import (
    ExplainerError,
    ExplainerTimeoutError,
    ExplainerUnavailableError,
    ExplainerVersionMismatchError,
    InvalidInputError,
    PayloadTooLargeError,
    ServiceError,
)

if TYPE_CHECKING:
    import httpx

EXPLAIN_PATH = "/v1/explain"
# The bundle version the service expects: the explainer refuses another one with 409 before
# computing anything (during a rollout it may serve the other bundle).
MODEL_VERSION_HEADER = "x-faultline-model-version"


class ExplainerProxy:
    """One pooled HTTP client to the explainer; created in the lifespan, closed at shutdown."""

    def __init__(
        self,
        url: str,
        timeout: float,
        max_connections: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        import httpx  # only when explanations are on

        self.url = url.rstrip("/")
        self.timeout = timeout
        self.max_connections = max_connections
        self.client = httpx.AsyncClient(
            base_url=self.url,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            trust_env=False,  # in-cluster traffic: never through an HTTP(S)_PROXY
            transport=transport,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def explain(self, readings: list[dict[str, Any]], version: str, request_id: str) -> bytes:
        """The explainer's JSON answer for validated readings; ServiceError otherwise."""
        import httpx

        headers = {
            "content-type": "application/json",
            "x-request-id": request_id,  # the explainer logs under the same id
            MODEL_VERSION_HEADER: version,
        }
        body = orjson.dumps({"instances": readings})
        try:
            # httpx's timeouts are per phase (connect, write, read): this bounds the whole call
            async with asyncio.timeout(self.timeout):
                response = await self.client.post(EXPLAIN_PATH, content=body, headers=headers)
        except httpx.PoolTimeout as exc:
            raise ExplainerUnavailableError(
                f"all {self.max_connections} connections to the explainer are busy"
            ) from exc
        except httpx.ConnectTimeout as exc:
            raise ExplainerUnavailableError(f"the explainer at {self.url} is unreachable") from exc
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise ExplainerTimeoutError(
                f"the explainer did not answer within {self.timeout} s"
            ) from exc
        except httpx.TransportError as exc:
            raise ExplainerUnavailableError(
                f"the explainer at {self.url} is unreachable: {type(exc).__name__}"
            ) from exc
        return checked_answer(response.status_code, response.content, version, len(readings))


def checked_answer(status: int, content: bytes, version: str, readings: int) -> bytes:
    """The explainer's answer if it explains `readings` readings with `version`; else the
    ServiceError it amounts to."""
    if status != 200:
        raise _refusal(status, content)
    try:
        answer = orjson.loads(content)
        explained, answered_version = len(answer["explanations"]), answer["model_version"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ExplainerError("the explainer's answer is not an explanation") from exc
    if answered_version != version:
        raise _mismatch(str(answered_version)[:100], version)
    if explained != readings:
        raise ExplainerError(f"the explainer answered {explained} explanations for {readings}")
    return content


def _refusal(status: int, content: bytes) -> ServiceError:
    """What an explainer's error answer means for the client."""
    try:
        error = orjson.loads(content)["error"]
        message, details = str(error["message"])[:500], error.get("details")
    except (orjson.JSONDecodeError, KeyError, TypeError):
        message, details = content[:200].decode("utf-8", "replace"), None
    if status == 409:
        return ExplainerVersionMismatchError(f"explainer refused: {message}")
    if status == 422:  # a batch this service accepts but the explainer's own limit does not
        return InvalidInputError(
            f"explainer refused: {message}", details, [("explainer_refused", "body")]
        )
    if status == 413:
        return PayloadTooLargeError(f"explainer refused: {message}")
    if status == 503:
        return ExplainerUnavailableError(f"explainer unavailable: {message}")
    return ExplainerError(f"explainer answered {status}: {message}")


def _mismatch(explainer: str, service: str) -> ExplainerVersionMismatchError:
    return ExplainerVersionMismatchError(
        f"the explainer serves model version {explainer!r}, this service {service!r}; "
        "retry when both run the same bundle"
    )
