"""k8s/: the generated base and components are current, and every combination builds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
BUILDS = [K8S / "base", *sorted((K8S / "overlays").iterdir()), *sorted((K8S / "tests").iterdir())]
pytestmark = pytest.mark.k8s


def test_generated_manifests_match_the_chart() -> None:
    result = subprocess.run(
        [sys.executable, str(K8S / "render.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", BUILDS, ids=lambda p: str(p.relative_to(K8S)))
def test_kustomize_builds(path: Path) -> None:
    if shutil.which("kubectl") is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl is needed for the kustomize builds")
        pytest.skip("kubectl not installed")
    result = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    objects = [d for d in yaml.safe_load_all(result.stdout) if d]
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service"} <= kinds
    if path.parent.name in ("overlays", "tests"):
        assert all(
            o["metadata"].get("namespace") == "faultline"
            for o in objects
            if o["kind"] != "Namespace"
        )
        stable = next(
            o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "faultline"
        )
        assert stable["spec"]["template"]["spec"]["containers"][0]["image"] == "faultline:dev"
    if "canary" in path.name:
        assert any(o["metadata"]["name"] == "faultline-canary" for o in objects)
    if "monitoring" in path.name:
        assert {"ServiceMonitor", "PrometheusRule", "ConfigMap"} <= kinds
    if "explainer" in path.name:
        [service] = [
            o
            for o in objects
            if o["metadata"]["name"] == "faultline-explainer" and o["kind"] == "Service"
        ]
        [api] = [p for p in service["spec"]["ports"] if p["name"] == "http"]
        url = f"http://{service['metadata']['name']}:{api['port']}"
        serving = [
            o
            for o in objects
            if o["kind"] == "Deployment" and o["metadata"]["name"] != "faultline-explainer"
        ]
        assert len(serving) == 1 + ("canary" in path.name)
        for deployment in serving:  # every track forwards /v1/explain to the explainer
            env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
            assert {"name": "FAULTLINE_EXPLAINER_URL", "value": url} in env
