"""Request bodies for load tests, from the training feature schema and generator.

Valid readings are drawn at random from the synthetic generator (valid by construction; use the
training seed, since temperatures are random walks and another seed's realization would look
drifted). Invalid requests are invalid on purpose, each with the status and error type the
service must answer. Drifted readings shift torque and air temperature.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from model import features as F
from training import data as D

JSON = "application/json"


@dataclass(frozen=True)
class Invalid:
    """A deliberately bad request and the answer it must get."""

    name: str
    body: bytes
    content_type: str
    status: int
    error_type: str


class Payloads:
    """Readings, batches, drifted readings and invalid requests."""

    def __init__(self, seed: int = 42, rows: int = 10_000) -> None:
        frame = D.generate(rows, seed)[list(F.FEATURE_NAMES)]
        self.readings: list[dict[str, Any]] = frame.to_dict(orient="records")
        self.rng = random.Random(seed)

    def reading(self) -> dict[str, Any]:
        return self.rng.choice(self.readings)

    def batch(self, size: int) -> dict[str, Any]:
        return {"instances": self.rng.sample(self.readings, size)}

    def drifted(self) -> dict[str, Any]:
        reading = dict(self.reading())
        reading[F.TORQUE.name] = min(F.TORQUE.maximum, reading[F.TORQUE.name] + 25.0)
        reading[F.AIR_TEMPERATURE.name] = reading[F.AIR_TEMPERATURE.name] + 6.0
        return reading

    def invalid(self) -> Invalid:
        return self.rng.choice(self.invalid_cases())

    def invalid_cases(self) -> list[Invalid]:
        good = self.reading()

        def body(value: Any) -> bytes:
            return json.dumps(value).encode()

        without = {k: v for k, v in good.items() if k != F.TORQUE.name}
        return [
            Invalid(
                "out_of_range", body({**good, F.TORQUE.name: -5.0}), JSON, 422, "invalid_input"
            ),
            Invalid(
                "string_number", body({**good, F.TORQUE.name: "40"}), JSON, 422, "invalid_input"
            ),
            Invalid(
                "unknown_type", body({**good, F.PRODUCT_TYPE.name: "X"}), JSON, 422, "invalid_input"
            ),
            Invalid("missing_field", body(without), JSON, 422, "invalid_input"),
            Invalid("unknown_field", body({**good, "colour": "red"}), JSON, 422, "invalid_input"),
            Invalid("empty_batch", body({"instances": []}), JSON, 422, "invalid_input"),
            Invalid("malformed_json", b'{"product_type": ', JSON, 400, "malformed_json"),
            Invalid("wrong_content_type", body(good), "text/plain", 415, "unsupported_media_type"),
        ]


def check_prediction(body: Any, expected: int) -> str | None:
    """None when a /v1/predict answer is well-formed for `expected` readings, else why not."""
    if not isinstance(body, dict):
        return "body is not a JSON object"
    predictions = body.get("predictions")
    if not isinstance(predictions, list) or len(predictions) != expected:
        return f"expected {expected} predictions, got {predictions!r:.80}"
    threshold = body.get("threshold")
    for p in predictions:
        probability = p.get("failure_probability")
        if not isinstance(probability, float | int) or not 0 <= probability <= 1:
            return f"bad probability {probability!r}"
        if p.get("failure") is not (probability >= threshold):
            return "decision does not match the threshold"
    if not body.get("model_version") or not body.get("request_id"):
        return "missing model_version or request_id"
    return None


def check_error(body: Any, invalid: Invalid) -> str | None:
    """None when an error answer has the expected JSON error body."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return "no JSON error body"
    if body["error"].get("type") != invalid.error_type:
        return f"error type {body['error'].get('type')!r}, expected {invalid.error_type!r}"
    return None
