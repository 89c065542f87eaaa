"""Custom resources (ServiceMonitor, PrometheusRule, Rollout, AnalysisTemplate) validated with
the @kubernetes-models npm validators (helm/validate/): type errors are caught, unknown fields
are not (the validators allow them; the property tests in test_chart.py cover those)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.k8s.test_chart import CUSTOM_KINDS, VALUES_FILES, render, values_of

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = ROOT / "helm" / "validate"
pytestmark = pytest.mark.k8s


@pytest.fixture(scope="module")
def node() -> str:
    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.environ.get("CI"):
            pytest.fail("node and npm are needed to validate custom resources")
        pytest.skip("node/npm not installed")
    if not (VALIDATOR / "node_modules").is_dir():
        subprocess.run(
            ["npm", "ci", "--silent", "--no-audit", "--no-fund"],
            cwd=VALIDATOR,
            check=True,
            timeout=600,
        )
    return "node"


def _validate(node: str, objects: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [node, str(VALIDATOR / "validate.mjs")],
        input=json.dumps(objects),
        capture_output=True,
        text=True,
        cwd=VALIDATOR,
        timeout=120,
    )


def _custom_resources() -> list[dict[str, Any]]:
    return [
        o for path in VALUES_FILES for o in render(values_of(path)) if o["kind"] in CUSTOM_KINDS
    ]


# No @kubernetes-models package for KServe: its kinds are checked against KServe's own CRD
# schemas (../shared/crds/kserve) in test_admission.py, like every custom resource.
WITHOUT_MODEL = {"ServingRuntime", "InferenceService"}


def test_rendered_custom_resources_are_valid(node: str) -> None:
    objects = _custom_resources()
    assert {o["kind"] for o in objects} == CUSTOM_KINDS
    result = _validate(node, objects)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("OK ") == sum(o["kind"] not in WITHOUT_MODEL for o in objects)


def test_a_type_error_is_caught(node: str) -> None:
    monitor = copy.deepcopy(next(o for o in _custom_resources() if o["kind"] == "ServiceMonitor"))
    monitor["spec"]["endpoints"] = "http"  # must be a list
    result = _validate(node, [monitor])
    assert result.returncode == 1
    assert "FAIL ServiceMonitor" in result.stdout
