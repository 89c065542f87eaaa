"""Dashboards: generated from code, valid against @grafana/schema, conventions, valid PromQL."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BOARDS = ROOT / "grafana" / "dashboards"
SCHEMA = ROOT / "grafana" / "schema" / "dashboard.schema.json"
sys.path.insert(0, str(ROOT / "grafana"))
import build  # noqa: E402  (grafana/build.py: the dashboards' source)
from check_live import dashboards  # noqa: E402  (grafana/check_live.py: also runs on kind)
from check_live import panel_queries as queries  # noqa: E402


def test_committed_dashboards_are_what_the_code_generates() -> None:
    generated = {name: build.render(board) for name, board in build.build().items()}
    committed = {p.name: p.read_text() for p in BOARDS.glob("*.json")}
    assert committed == generated, "run `make dashboards` and commit the result"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    if not SCHEMA.is_file():
        if shutil.which("npm") is None:
            if os.environ.get("CI"):
                pytest.fail("npm is needed to generate the Grafana dashboard schema")
            pytest.skip("npm not installed: cannot generate the Grafana dashboard schema")
        result = subprocess.run(
            ["make", "-s", "grafana-schema"], cwd=ROOT, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stdout + result.stderr
    return {**json.loads(SCHEMA.read_text()), "$ref": "#/definitions/Dashboard"}


@pytest.mark.parametrize("name", sorted(p.name for p in BOARDS.glob("*.json")))
def test_dashboard_matches_the_grafana_schema(schema: dict[str, Any], name: str) -> None:
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(dashboards()[name]))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


def test_conventions() -> None:
    uids = set()
    for name, board in dashboards().items():
        uids.add(board["uid"])
        assert board["uid"] == name.removesuffix(".json")
        names = [v["name"] for v in board["templating"]["list"]]
        assert names == ["datasource", "namespace", "model_version", "track"]
        for panel in board["panels"]:
            assert panel["description"], panel["title"]
            assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel["targets"]
    assert len(uids) == len(dashboards())


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_every_query_parses(tmp_path: Path) -> None:
    rules = [
        {"record": f"dashboard:query:{i}", "expr": expr}
        for board in dashboards().values()
        for i, (_, expr) in enumerate(queries(board))
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


# Series from outside the project: Prometheus' own `up`, kube-state-metrics and cAdvisor (the
# Capacity dashboard, in a cluster only).
EXTERNAL = ("up", "kube_", "container_")
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or"}
PROMQL_WORDS |= {"unless", "bool", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads (functions, labels and keywords left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values, label_replace arguments
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)  # matchers, range windows
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = re.findall(r"(?<![\w:.$])([a-zA-Z_:][\w:]*)\b(?!\s*\()", expr)
    return {n for n in names if n.lower() not in PROMQL_WORDS}


def exposed() -> set[str]:
    """Every series name the service and the explainer expose, and every recorded name."""
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry

    from explainer.metrics import ExplainerMetrics
    from service.main import add_http_metrics
    from service.metrics import ServiceMetrics

    service, explainer = CollectorRegistry(), CollectorRegistry()  # two processes
    ServiceMetrics(service)
    add_http_metrics(FastAPI(), service)
    ExplainerMetrics(explainer)
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    names = {
        family.name + suffix
        for registry in (service, explainer)
        for family in registry.collect()
        for suffix in suffixes.get(family.type, ("",))
    }
    recording = yaml.safe_load((ROOT / "prometheus/rules/faultline-recording.yml").read_text())
    return names | {r["record"] for g in recording["groups"] for r in g["rules"]}


def undefined(exprs: list[str], known: set[str]) -> set[str]:
    return {
        name
        for expr in exprs
        for name in metric_names(expr)
        if name not in known and not name.startswith(EXTERNAL)
    }


def test_every_queried_series_is_exposed_or_recorded() -> None:
    """A renamed metric (or a query typo) leaves a panel or a rule silently empty."""
    rules = [
        yaml.safe_load(p.read_text()) for p in sorted((ROOT / "prometheus/rules").glob("*.yml"))
    ]
    exprs = [r["expr"] for f in rules for g in f["groups"] for r in g["rules"]]
    exprs += [expr for board in dashboards().values() for _, expr in queries(board)]
    known = exposed()
    assert {"faultline_attribution_mean_abs", "faultline_explained_readings_total"} <= known
    assert undefined(exprs, known) == set()


def test_the_series_check_can_fail() -> None:
    expr = (
        'topk by (job) (1, faultline:attribution_share:ratio{feature="x"}) * on (job) '
        'group_left (f) label_replace(faultline_attribution_mean_ab[5m], "f", "$1", "feature", '
        '"(.*)") and sum(rate(http_requests_total{job=~"$job"}[$__rate_interval])) > 0.5'
    )
    assert metric_names(expr) == {
        "faultline:attribution_share:ratio",
        "faultline_attribution_mean_ab",
        "http_requests_total",
    }
    assert undefined([expr], exposed()) == {"faultline_attribution_mean_ab"}
