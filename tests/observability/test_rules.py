"""Prometheus config and rules: promtool checks, alert unit tests, conventions, runbooks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "prometheus"
pytestmark = [
    pytest.mark.prometheus,
    pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed"),
]


def _alerts() -> list[dict[str, object]]:
    rules = yaml.safe_load((PROM / "rules" / "faultline-alerts.yml").read_text())
    return [r for g in rules["groups"] for r in g["rules"]]


def _promtool(*args: str) -> None:
    result = subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=PROM)
    assert result.returncode == 0, result.stdout + result.stderr


def test_config_and_rules_are_valid() -> None:
    _promtool("check", "config", "prometheus.yml")
    _promtool("check", "rules", *(str(p) for p in sorted((PROM / "rules").glob("*.yml"))))


def test_alert_and_recording_unit_tests_pass() -> None:
    _promtool("test", "rules", "tests/rules_test.yml")


def test_every_alert_is_tested_on_both_sides() -> None:
    spec = yaml.safe_load((PROM / "tests" / "rules_test.yml").read_text())
    quiet, fired = set(), set()
    for test in spec["tests"]:
        for case in test.get("alert_rule_test", []):
            (fired if case["exp_alerts"] else quiet).add(case["alertname"])
    names = {str(a["alert"]) for a in _alerts()}
    assert names <= quiet, f"never tested inactive: {names - quiet}"
    assert names <= fired, f"never tested firing: {names - fired}"


def test_every_recording_rule_is_tested() -> None:
    rules = yaml.safe_load((PROM / "rules" / "faultline-recording.yml").read_text())
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"]}
    spec = (PROM / "tests" / "rules_test.yml").read_text()
    assert not [name for name in recorded if name not in spec]


def test_alerts_carry_severity_annotations_and_a_runbook_that_exists() -> None:
    for alert in _alerts():
        labels, notes = alert["labels"], alert["annotations"]
        assert labels["severity"] in {"critical", "warning", "info"}  # type: ignore[index]
        assert {"summary", "description", "runbook_url"} <= set(notes)  # type: ignore[arg-type]
        runbook = str(notes["runbook_url"]).split("/blob/main/", 1)[1]  # type: ignore[index]
        assert (ROOT / runbook).is_file(), runbook
        assert alert["for"], alert["alert"]
