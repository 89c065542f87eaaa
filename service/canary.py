"""Canary analysis: evaluate prometheus/canary-analysis.yml against a Prometheus.

Verdict: promote (every check passes), rollback (a non-traffic check fails), inconclusive
(a traffic check fails, or a query has no data). The same checks feed the Argo Rollouts
AnalysisTemplate in the Helm chart.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml

DEFINITION = Path(__file__).resolve().parents[1] / "prometheus" / "canary-analysis.yml"
CONDITION = re.compile(r"^\s*(<=|>=|<|>)\s*(-?[0-9.]+(?:e-?[0-9]+)?)\s*$")
OPERATORS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
Verdict = Literal["promote", "rollback", "inconclusive"]
EXIT_CODES: dict[Verdict, int] = {"promote": 0, "rollback": 1, "inconclusive": 2}


@dataclass(frozen=True)
class Check:
    """One comparison of canary and stable."""

    name: str
    kind: str
    description: str
    query: str
    condition: str

    def render(self, selector: str, window: str) -> str:
        return self.query.replace("$SELECTOR", selector).replace("$WINDOW", window)

    def passes(self, value: float) -> bool:
        match = CONDITION.match(self.condition)
        if match is None:
            raise ValueError(f"check {self.name}: unreadable condition {self.condition!r}")
        return bool(OPERATORS[match.group(1)](value, float(match.group(2))))


@dataclass(frozen=True)
class Outcome:
    """A check's value and result ('pass', 'fail' or 'no data')."""

    check: Check
    value: float | None
    result: Literal["pass", "fail", "no data"]


def load_checks(path: Path = DEFINITION) -> list[Check]:
    """The checks of a canary-analysis definition file."""
    spec = yaml.safe_load(path.read_text())
    checks = [
        Check(
            c["name"],
            c["kind"],
            " ".join(str(c["description"]).split()),
            c["query"],
            c["condition"],
        )
        for c in spec["checks"]
    ]
    for check in checks:
        check.passes(0.0)  # refuses an unreadable condition now, not mid-analysis
    return checks


def query_value(prometheus: str, expr: str, client: httpx.Client) -> float | None:
    """One number from an instant query, or None when it returns nothing (or NaN)."""
    response = client.get(f"{prometheus.rstrip('/')}/api/v1/query", params={"query": expr})
    body: dict[str, Any] = response.json()
    if body.get("status") != "success":
        raise ValueError(f"Prometheus refused the query: {body.get('error')}\n{expr}")
    result = body["data"]["result"]
    if not result:
        return None
    value = float(result[0]["value"][1])
    return None if math.isnan(value) or math.isinf(value) else value


def analyze(
    prometheus: str, selector: str, window: str, checks: list[Check], timeout: float = 10.0
) -> tuple[Verdict, list[Outcome]]:
    """Run every check; the verdict and each outcome."""
    outcomes = []
    with httpx.Client(timeout=timeout) as client:
        for check in checks:
            value = query_value(prometheus, check.render(selector, window), client)
            result: Literal["pass", "fail", "no data"] = (
                "no data" if value is None else "pass" if check.passes(value) else "fail"
            )
            outcomes.append(Outcome(check, value, result))
    return verdict(outcomes), outcomes


def verdict(outcomes: list[Outcome]) -> Verdict:
    """Traffic first (can we judge at all?), then every other check."""
    if any(o.result != "pass" for o in outcomes if o.check.kind == "traffic"):
        return "inconclusive"
    if any(o.result == "fail" for o in outcomes):
        return "rollback"
    if any(o.result == "no data" for o in outcomes):
        return "inconclusive"
    return "promote"


def render_table(verdict_: Verdict, outcomes: list[Outcome]) -> str:
    """The per-check table people read in CI logs."""
    rows = [f"{'check':26} {'kind':8} {'value':>12}  {'condition':10} result", "-" * 70]
    for o in outcomes:
        value = "-" if o.value is None else f"{o.value:.4g}"
        mark = {"pass": "PASS", "fail": "FAIL", "no data": "NO DATA"}[o.result]
        rows.append(
            f"{o.check.name:26} {o.check.kind:8} {value:>12}  {o.check.condition:10} {mark}"
        )
    failed = [o.check.name for o in outcomes if o.result != "pass"]
    rows.append("-" * 70)
    rows.append(
        f"verdict: {verdict_.upper()}" + (f" (failed: {', '.join(failed)})" if failed else "")
    )
    return "\n".join(rows)
