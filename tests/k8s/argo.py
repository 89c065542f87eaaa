"""How Argo Rollouts v1.7.2 turns Prometheus results into an AnalysisRun phase (a faithful
port of the parts the chart's AnalysisTemplate uses, so its semantics are tested without a
cluster):
- utils/evaluate EvaluateResult: success and failure conditions over `result` (the vector's
  values); neither true -> Inconclusive; an error (e.g. `result[0]` of an empty vector) -> Error;
- analysis assessMetricStatus / assessMetricFailureInconclusiveOrError: a metric fails when
  failed > failureLimit, is inconclusive when inconclusive > inconclusiveLimit, errors when
  consecutive errors > consecutiveErrorLimit (default 4), and otherwise succeeds once `count`
  measurements were taken, whatever the inconclusive ones said;
- the run takes the worst metric phase (Successful < Inconclusive < Error < Failed).
Conditions are the `result[0] <op> <number>` form the chart renders; anything else is refused.
"""

from __future__ import annotations

import math
import operator
import re
from typing import Any

CONDITION = re.compile(r"^result\[0\] (<=|>=|<|>) (-?[0-9.]+(?:e-?[0-9]+)?)$")
OPERATORS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
ORDER = ["Successful", "Running", "Pending", "Inconclusive", "Error", "Failed"]


def condition_holds(condition: str, result: list[float]) -> bool:
    """One condition on a vector result; IndexError for an empty vector, as expr errors."""
    match = CONDITION.match(condition)
    if match is None:
        raise ValueError(f"not a condition this port reads: {condition!r}")
    return bool(OPERATORS[match.group(1)](result[0], float(match.group(2))))


def measurement(metric: dict[str, Any], result: list[float]) -> str:
    """EvaluateResult: the phase of one measurement."""
    success, failure = metric.get("successCondition"), metric.get("failureCondition")
    try:
        ok = condition_holds(success, result) if success else False
        bad = condition_holds(failure, result) if failure else False
    except IndexError:
        return "Error"
    if success and not failure:
        bad = not ok
    elif failure and not success:
        ok = not bad
    elif not success and not failure:
        return "Successful"
    if bad:
        return "Failed"
    return "Successful" if ok else "Inconclusive"


def metric_phase(metric: dict[str, Any], phases: list[str]) -> str:
    """assessMetricStatus after these measurements (not terminating)."""
    failed = phases.count("Failed")
    inconclusive = phases.count("Inconclusive")
    consecutive_errors = len(phases) - len(
        "".join("E" if p == "Error" else "." for p in phases).rstrip("E")
    )
    phase = ""
    if failed > int(metric.get("failureLimit", 0)):
        phase = "Failed"
    if inconclusive > int(metric.get("inconclusiveLimit", 0)):
        phase = "Inconclusive"
    if consecutive_errors > int(metric.get("consecutiveErrorLimit", 4)):
        phase = "Error"
    if phase:
        return phase
    count = metric.get("count")
    taken = len([p for p in phases if p != "Error"])
    if count is not None and taken >= int(count):
        return "Successful"
    return "Running"


def run_phase(phases: list[str]) -> str:
    """The AnalysisRun's phase: the worst of its metrics'."""
    return max(phases, key=ORDER.index)


def run_once(template: dict[str, Any], results: dict[str, list[float]]) -> tuple[str, set[str]]:
    """Each metric measured once with the given results: the run phase and the failed metrics."""
    phases = {}
    for metric in template["spec"]["metrics"]:
        phases[metric["name"]] = metric_phase(
            metric, [measurement(metric, results[metric["name"]])]
        )
    failed = {name for name, phase in phases.items() if phase != "Successful"}
    return run_phase(list(phases.values())), failed


def is_nan(values: list[float]) -> bool:
    return len(values) == 1 and math.isnan(values[0])
