"""The Argo Rollouts AnalysisTemplate means what `faultline canary analyze` means: evaluated
with Argo v1.7.2's rules (tests/k8s/argo.py) on sample results, an inconclusive measurement never
passes, every failure condition can be met, and a missing series is inconclusive, not an error.
The same template is evaluated on a live Prometheus in tests/canary."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from tests.k8s import argo
from tests.k8s.test_chart import CHART, by_kind, render, values_of

pytestmark = pytest.mark.k8s
NAN = [math.nan]


def template() -> dict[str, Any]:
    [found] = by_kind(render(values_of(CHART / "ci" / "rollout-values.yaml")), "AnalysisTemplate")
    return found


def _threshold(metric: dict[str, Any]) -> float:
    return float(metric["successCondition"].split()[-1])


def _passing(metric: dict[str, Any]) -> list[float]:
    """A value that meets the success condition (the threshold itself or just inside it)."""
    edge = _threshold(metric)
    op = metric["successCondition"].split()[1]
    return [edge - 1e-3 if op == "<" else edge + 1e-3 if op == ">" else edge]


def _failing(metric: dict[str, Any]) -> list[float]:
    edge = _threshold(metric)
    op = metric["successCondition"].split()[1]
    return [edge + 1.0 if op in ("<", "<=") else edge - 1.0]


def test_every_metric_passes_fails_and_is_inconclusive_as_the_cli_would() -> None:
    for metric in template()["spec"]["metrics"]:
        assert argo.measurement(metric, _passing(metric)) == "Successful", metric["name"]
        assert argo.measurement(metric, _failing(metric)) == "Failed", metric["name"]  # reachable
        assert argo.measurement(metric, NAN) == "Inconclusive", metric["name"]


def test_an_inconclusive_measurement_never_passes_the_run() -> None:
    spec = template()
    names = [m["name"] for m in spec["spec"]["metrics"]]
    good = {m["name"]: _passing(m) for m in spec["spec"]["metrics"]}
    assert argo.run_once(spec, good) == ("Successful", set())
    for name in names:
        phase, failed = argo.run_once(spec, {**good, name: NAN})
        assert (phase, failed) == ("Inconclusive", {name})


def test_one_failing_metric_fails_the_run_and_is_named() -> None:
    spec = template()
    good = {m["name"]: _passing(m) for m in spec["spec"]["metrics"]}
    for metric in spec["spec"]["metrics"]:
        phase, failed = argo.run_once(spec, {**good, metric["name"]: _failing(metric)})
        assert (phase, failed) == ("Failed", {metric["name"]})


def test_missing_series_and_low_traffic_answer_nan_not_an_empty_vector() -> None:
    """An empty vector makes `result[0]` an error (the run ends in Error, which the old e2e job
    took for a rollback); every query falls back to NaN, and is NaN unless traffic suffices."""
    for metric in template()["spec"]["metrics"]:
        query = metric["provider"]["prometheus"]["query"]
        assert query.endswith("or on() vector(NaN)"), metric["name"]
        assert query.count(">= 100)") == 2, metric["name"]  # both traffic guards
        assert argo.measurement(metric, []) == "Error"  # what the fallback prevents


def test_the_old_template_let_an_inconclusive_measurement_pass() -> None:
    """The defect this replaces: inconclusiveLimit 1 with count 1 ended Successful."""
    spec = copy.deepcopy(template())
    for metric in spec["spec"]["metrics"]:
        metric["inconclusiveLimit"] = 1
    first = spec["spec"]["metrics"][0]["name"]
    good = {m["name"]: _passing(m) for m in spec["spec"]["metrics"]}
    assert argo.run_once(spec, {**good, first: NAN}) == ("Successful", set())
