"""What a real API server (and the Prometheus operator) would refuse, caught before a cluster
sees it: every rendered custom resource of every values file and of k8s/ against its upstream
CRD schema (list-map keys included), and every rendered PrometheusRule through promtool."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.k8s import crds
from tests.k8s.test_chart import CUSTOM_KINDS, VALUES_FILES, render, values_of

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "k8s").glob("**/*.yaml"))
pytestmark = pytest.mark.k8s


def _sources() -> list[tuple[str, list[dict[str, Any]]]]:
    """(where, objects): the chart under each CI values file, and every manifest of k8s/."""
    rendered = [(f"chart:{p.name}", render(values_of(p))) for p in VALUES_FILES]
    files = [
        (str(p.relative_to(ROOT)), [d for d in yaml.safe_load_all(p.read_text()) if d])
        for p in MANIFESTS
    ]
    return rendered + files


SOURCES = _sources()


@pytest.mark.parametrize(("where", "objects"), SOURCES, ids=[s[0] for s in SOURCES])
def test_custom_resources_pass_their_crd_schema(where: str, objects: list[dict[str, Any]]) -> None:
    custom = [o for o in objects if o.get("kind") in CUSTOM_KINDS]
    for obj in custom:
        assert crds.known(obj), f"{where}: no CRD for {obj['apiVersion']} {obj['kind']}"
        problems = crds.errors(obj)
        assert not problems, f"{where} {obj['kind']}/{obj['metadata']['name']}: {problems}"


def test_every_custom_kind_is_checked_somewhere() -> None:
    seen = {o["kind"] for _, objects in SOURCES for o in objects if o.get("kind") in CUSTOM_KINDS}
    assert seen == CUSTOM_KINDS


def _rule() -> dict[str, Any]:
    objects = render(values_of(ROOT / "helm" / "faultline" / "ci" / "monitoring-values.yaml"))
    return next(o for o in objects if o["kind"] == "PrometheusRule")


def test_the_crd_check_refuses_what_the_api_server_refused() -> None:
    """The first real install failed on a repeated group name; the check must see that class."""
    rule = copy.deepcopy(_rule())
    rule["spec"]["groups"].append(copy.deepcopy(rule["spec"]["groups"][0]))
    assert any("Duplicate value" in p for p in crds.errors(rule))
    typo = copy.deepcopy(_rule())
    typo["spec"]["groups"][0]["intervall"] = "1m"
    assert any("intervall" in p for p in crds.errors(typo))
    wrong_type = copy.deepcopy(_rule())
    wrong_type["spec"]["groups"][0]["rules"] = "none"
    assert crds.errors(wrong_type)


def _promtool_check(
    groups: list[dict[str, Any]], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def promtool() -> str:
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed")
    return "promtool"


@pytest.mark.prometheus
@pytest.mark.parametrize(("where", "objects"), SOURCES, ids=[s[0] for s in SOURCES])
def test_rendered_prometheus_rules_pass_promtool(
    where: str, objects: list[dict[str, Any]], promtool: str, tmp_path: Path
) -> None:
    for rule in (o for o in objects if o.get("kind") == "PrometheusRule"):
        result = _promtool_check(rule["spec"]["groups"], tmp_path)
        assert result.returncode == 0, f"{where}: {result.stdout}{result.stderr}"


@pytest.mark.prometheus
def test_promtool_check_refuses_a_repeated_group(promtool: str, tmp_path: Path) -> None:
    groups = _rule()["spec"]["groups"]
    result = _promtool_check([*groups, groups[0]], tmp_path)
    assert result.returncode != 0 and "repeated" in result.stdout + result.stderr
