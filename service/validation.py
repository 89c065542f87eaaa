"""Bounded validation of /v1/predict bodies: the work per invalid request never grows with
the number of its errors.

Valid bodies take the fast path: one pydantic-core call (strict, fail-fast over the batch).
Anything else is diagnosed here, reading by reading, stopping at MAX_DETAILS problems: a body
of 1,000 readings with 80 unknown keys each costs about as much as a valid one, instead of
80,000 error objects built and thrown away.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from model import features as F
from service.errors import KNOWN_FIELDS, REASONS, InvalidInputError

MAX_DETAILS = 50
FIELDS = frozenset(F.FEATURE_NAMES)
N_FIELDS = len(FIELDS)


def validate_readings(
    payload: dict[str, Any], reading: TypeAdapter[Any], batch: TypeAdapter[Any], max_batch: int
) -> list[dict[str, Any]]:
    """One reading or {"instances": [...]} -> validated readings; InvalidInputError otherwise."""
    if "instances" in payload:
        instances = payload["instances"]
        if len(payload) == 1 and type(instances) is list and _few_keys(instances):
            try:
                valid: list[dict[str, Any]] = batch.validate_python(payload)["instances"]
                return valid
            except ValidationError:
                pass
        raise _diagnose_batch(payload, reading, max_batch)
    if len(payload) <= N_FIELDS:  # more keys than fields: some are unknown, no need to look
        try:
            return [reading.validate_python(payload)]
        except ValidationError:
            pass
    problems = _Problems()
    problems.reading(payload, [], reading)
    raise problems.error()


def _few_keys(instances: list[Any]) -> bool:
    """No more keys in all readings than fields allow (bounds pydantic's error count)."""
    try:
        return sum(map(len, instances)) <= N_FIELDS * len(instances)
    except TypeError:  # an item without a length: not a reading
        return False


def _diagnose_batch(
    payload: dict[str, Any], reading: TypeAdapter[Any], max_batch: int
) -> InvalidInputError:
    problems = _Problems()
    for key in payload:
        if key != "instances":
            problems.add([key], "extra_forbidden", "Extra inputs are not permitted")
            if problems.full:
                return problems.error()
    instances = payload["instances"]
    where = ["instances"]
    if type(instances) is not list:
        problems.add(where, "list_type", "Input should be a valid list")
    elif not instances:
        problems.add(where, "too_short", "List should have at least 1 item after validation")
    elif len(instances) > max_batch:
        problems.add(
            where, "too_long", f"List should have at most {max_batch} items, not {len(instances)}"
        )
    else:
        for index, item in enumerate(instances):
            problems.reading(item, ["instances", index], reading)
            if problems.full:
                break
    return problems.error()


class _Problems:
    """Collects at most MAX_DETAILS problems (details for the client, reasons for metrics)."""

    def __init__(self) -> None:
        self.details: list[dict[str, Any]] = []
        self.reasons: set[tuple[str, str]] = set()
        self.full = False

    def add(self, loc: list[Any], error_type: str, message: str) -> None:
        if self.full:
            return
        parts = [str(part)[:100] for part in loc]  # field names are the client's: bounded
        named = [part for part in parts if part in KNOWN_FIELDS]
        field = "unknown" if error_type == "extra_forbidden" else (named or ["body"])[-1]
        reason = REASONS.get(error_type, "wrong_type")
        self.reasons.add((reason, field))
        self.details.append({"loc": parts[:4], "reason": reason, "message": message[:200]})
        self.full = len(self.details) >= MAX_DETAILS

    def reading(self, item: Any, loc: list[Any], reading: TypeAdapter[Any]) -> None:
        """Problems of one reading: unknown keys found by a set lookup, the rest by pydantic."""
        if type(item) is not dict:
            self.add(loc, "dict_type", "Input should be a valid dictionary")
            return
        if len(item) > N_FIELDS or not item.keys() <= FIELDS:
            for key in item:
                if key not in FIELDS:
                    self.add([*loc, key], "extra_forbidden", "Extra inputs are not permitted")
                    if self.full:
                        return
            item = {key: item[key] for key in FIELDS if key in item}
        try:
            reading.validate_python(item)
        except ValidationError as exc:  # at most 2 errors per field: bounded
            for error in exc.errors(include_url=False, include_input=False):
                self.add([*loc, *error["loc"]], error["type"], error["msg"])

    def error(self) -> InvalidInputError:
        first = self.details[0]
        count = f"{len(self.details)}{'+' if self.full else ''}"
        message = f"{count} invalid value(s); first: {'.'.join(first['loc'])}: {first['message']}"
        return InvalidInputError(message, self.details, sorted(self.reasons))
