"""The kind e2e workflow, read as a GitHub runner runs it: waits that fail when they time out,
no public DNS, both ends of the supported Kubernetes range, path filters that cover what the
image and chart are built from; and the chart's own user-facing defaults."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.k8s.test_chart import KUBE_VERSIONS, helm, values_of

ROOT = Path(__file__).resolve().parents[2]
E2E = ROOT / ".github" / "workflows" / "e2e.yml"
CHART = ROOT / "helm" / "faultline"


def _workflow() -> dict[str, Any]:
    return yaml.load(E2E.read_text(), Loader=yaml.BaseLoader)  # type: ignore[no-any-return]


def _scripts() -> list[tuple[str, str, str]]:
    return [
        (job, step.get("name", ""), step["run"])
        for job, spec in _workflow()["jobs"].items()
        for step in spec["steps"]
        if "run" in step
    ]


def test_every_polling_loop_fails_its_step_when_it_times_out() -> None:
    """A `for _ in $(seq ...)` wait that falls through without `exit 1` lets the job go on as if
    the thing it waited for had happened (the old Prometheus readiness wait did)."""
    for job, name, script in _scripts():
        if "$(seq" not in script or not re.search(r"\bfor _ in \$\(seq", script):
            continue
        if script.rstrip().endswith("&") or "> results/hpa.tsv &" in script:
            continue  # a background recorder, not a wait
        tail = script[script.rindex("done") :]
        assert "exit 1" in tail, f"{job}: {name}: the wait can time out silently"


def test_the_ingress_host_never_needs_public_dns() -> None:
    for job, spec in _workflow()["jobs"].items():
        text = yaml.safe_dump(spec)
        if "localtest.me" in text or "$HOST" in text:
            assert "/etc/hosts" in text, f"{job} relies on public DNS for *.localtest.me"


def test_both_ends_of_the_supported_kubernetes_range_run() -> None:
    floor = re.search(r'kubeVersion: ">=(\d+\.\d+)', (CHART / "Chart.yaml").read_text())
    assert floor is not None
    matrix = _workflow()["jobs"]["kind"]["strategy"]["matrix"]["include"]
    versions = {entry["kubernetes"] for entry in matrix}
    newest = max(KUBE_VERSIONS, key=lambda v: tuple(map(int, v.split("."))))
    assert versions == {floor.group(1), ".".join(newest.split(".")[:2])}
    for entry in matrix:
        assert entry["node"].startswith(f"kindest/node:v{entry['kubernetes']}.")


@pytest.mark.parametrize(
    "folder", ["service", "training", "helm", "k8s", "prometheus", "grafana", "loadtest"]
)
def test_pull_requests_that_change_the_image_or_chart_run_e2e(folder: str) -> None:
    paths = _workflow()["on"]["pull_request"]["paths"]
    assert f"{folder}/**" in paths
    assert {"Makefile", "pyproject.toml", "uv.lock"} <= set(paths)


def test_the_hpa_is_proven_on_requests_per_second_not_only_cpu() -> None:
    kind_values = values_of(ROOT / "k8s" / "kind" / "faultline-values.yaml")
    rps = kind_values["autoscaling"]["requestsPerSecond"]
    assert rps["enabled"] is True
    metric = values_of(CHART / "values.yaml")["autoscaling"]["requestsPerSecond"]["metricName"]
    text = E2E.read_text()
    assert f"pods metric {metric} above target" in text
    assert f"custom.metrics.k8s.io/v1beta1/namespaces/$NAMESPACE/pods/*/{metric}" in text


def test_load_steps_are_gated_on_the_server_side() -> None:
    steps = {name: script for _, name, script in _scripts() if "locust" in script}
    gated = [name for name, script in steps.items() if "loadtest.server_slo" in script]
    assert "Ramp through the ingress; record the HPA" in gated
    assert "Good canary (the same training, a new build) is promoted" in gated


def test_the_default_image_is_one_an_installed_chart_can_pull() -> None:
    repository = values_of(CHART / "values.yaml")["image"]["repository"]
    registry = repository.split("/")[0]
    assert "/" in repository and ("." in registry or ":" in registry), repository


def test_notes_name_the_workload_that_runs() -> None:
    def notes(values: dict[str, Any]) -> str:
        with helm.Chart.load(str(CHART)) as chart:
            files = chart.render(values=values, name="faultline", namespace="ml", is_install=True)
        return next(text for path, text in files.items() if path.endswith("NOTES.txt"))

    rollout = notes(values_of(CHART / "ci" / "rollout-values.yaml"))
    assert "kubectl argo rollouts status faultline" in rollout
    assert "deployment/" not in rollout
    assert "rollout status deployment/faultline" in notes({})
