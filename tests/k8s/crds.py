"""Validate custom resources against the upstream CRDs' OpenAPI schemas, as an API server does.

The CRDs at the versions the kind setup pins live in ../shared/crds/ (upstream data, never copied
into the project). jsonschema checks types, enums, patterns and required fields; on top of it this
models what plain JSON-schema validators skip and a real API server refuses:
- `x-kubernetes-list-type: map` lists must not repeat a key (PrometheusRule group names),
  `set` lists must not repeat an item;
- `x-kubernetes-int-or-string`, `nullable`;
- unknown fields (strict field validation) unless `x-kubernetes-preserve-unknown-fields`.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

CRDS = Path(__file__).resolve().parents[3] / "shared" / "crds"


def crds_dir() -> Path:
    """../shared/crds, or a skip (a failure in CI, where shared/ is always beside the checkout)."""
    if not CRDS.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"the upstream CRDs are missing: {CRDS}")
        pytest.skip(f"no upstream CRDs at {CRDS}")
    return CRDS


def _structural(schema: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI v3 (Kubernetes structural) schema as plain JSON schema."""
    out = {k: v for k, v in schema.items() if k not in ("nullable", "format")}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if "properties" in schema:
        out["properties"] = {k: _structural(v) for k, v in schema["properties"].items()}
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            out.setdefault("additionalProperties", False)
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = _structural(schema["additionalProperties"])
    if "items" in schema:
        out["items"] = _structural(schema["items"])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            out[key] = [_structural(s) for s in schema[key]]
    return out


def _list_type(
    validator: Any, list_type: str, instance: Any, schema: dict[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    if not isinstance(instance, list):
        return
    seen: set[str] = set()
    keys = schema.get("x-kubernetes-list-map-keys", [])
    for item in instance:
        if list_type == "map":
            identity = yaml.safe_dump(
                {k: item.get(k) for k in keys} if isinstance(item, dict) else item
            )
        elif list_type == "set":
            identity = yaml.safe_dump(item)
        else:
            return
        if identity in seen:
            yield jsonschema.ValidationError(
                f"Duplicate value: {identity.strip()} (x-kubernetes-list-type: {list_type})"
            )
        seen.add(identity)


Validator = jsonschema.validators.extend(
    jsonschema.Draft7Validator, {"x-kubernetes-list-type": _list_type}
)


@cache
def _schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> structural schema, for every CRD under ../shared/crds."""
    found = {}
    for path in sorted(crds_dir().rglob("*.yaml")):
        # libyaml: the pure-Python loader takes ~7 s for these 2.8 MB, libyaml ~1 s
        for crd in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                schema["properties"].pop("metadata", None)  # ObjectMeta: the API server's own
                found[(f"{group}/{version['name']}", kind)] = _structural(schema)
    return found


def known(obj: dict[str, Any]) -> bool:
    """Whether ../shared/crds has the CRD of this object."""
    return (obj.get("apiVersion"), obj.get("kind")) in _schemas()


def errors(obj: dict[str, Any]) -> list[str]:
    """What the API server would refuse in this custom resource ([] when it would accept it)."""
    schema = _schemas()[(obj["apiVersion"], obj["kind"])]
    body = {k: v for k, v in obj.items() if k != "metadata"}
    return [
        f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in Validator(schema).iter_errors(body)
    ]
