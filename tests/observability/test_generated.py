"""The one observability config: generated files match their generators, and every SLO number
and selector is written once, in prometheus/observability.yml, not in a hand-written file."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from service.metrics import LATENCY_BUCKETS

ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILES = {"prometheus/observability.yml"}
# Where SLO numbers are stated or consumed (elsewhere 0.01 or 0.25 mean other things, such as
# the prediction log sample rate in the chart's values.yaml).
SURFACE = (
    "prometheus/",
    "grafana/",
    "loadtest/",
    "helm/faultline/templates/",
    "service/canary.py",
    "service/cli.py",
)


def _module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    sys.path.append(str(path.parent))
    spec.loader.exec_module(module)
    return module


observability = _module("observability", ROOT / "prometheus" / "observability.py")
generator = _module("prometheus_build", ROOT / "prometheus" / "build.py")
CONFIG = observability.load()


def hand_written() -> dict[str, str]:
    """Tracked text files a person edits: no generated file, test, doc or lock file."""
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    files = {}
    for name in tracked:
        path = ROOT / name
        if (
            name.startswith(("tests/", "prometheus/tests/", "docs/", "k8s/"))
            or name.endswith((".md", ".lock", "package-lock.json", ".json"))
            or not path.is_file()
        ):
            continue  # .json: dashboards (generated) and npm manifests
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        if not text.startswith("# GENERATED"):
            files[name] = text
    return files


def spellings() -> dict[str, list[str]]:
    """Each SLO number and selector of the config, with the regexes that find it spelled out."""

    def literal(value: float) -> str:
        return rf"(?<![\w.]){re.escape(observability.number(value))}(?![\w.])"

    def ms(seconds: float) -> str:
        value = observability.number(round(seconds * 1000, 9))
        return rf"(?<![\w.]){value}\s?ms\b|_ms\W+{value}\b|-ms\W+{value}\b"

    def pct(ratio: float) -> str:
        return rf"(?<![\w.]){re.escape(observability.percent(ratio))}\s?%"

    k, a = CONFIG.canary, CONFIG.alerts
    return {
        "job selector": [re.escape(CONFIG.name_regex)],
        "model_info join": [r"on \(namespace, job, instance\)", r"group_left \(model_version\)"],
        "availability SLO": [
            literal(CONFIG.availability_objective),
            literal(CONFIG.availability_budget),
            pct(CONFIG.availability_budget),
            pct(CONFIG.availability_objective),
        ],
        "latency SLO bound": [literal(CONFIG.latency_seconds), ms(CONFIG.latency_seconds)],
        "p95 bound": [ms(CONFIG.p95_ms / 1000), literal(CONFIG.p95_ms / 1000)],
        # (whole factors such as 6 are too common to look for)
        "burn-rate factors": [literal(w.factor) for w in CONFIG.burn_windows if w.factor % 1],
        "PSI threshold": [literal(a["psi_significant"])],  # (psi_moderate, 0.1: too common)
        "canary thresholds": [
            rf">=\s*{k['min_requests']}\b",
            literal(k["latency_factor"]),
            literal(k["distribution_gap"]),
        ],
    }


def _found(files: dict[str, str]) -> dict[str, set[str]]:
    """{file: concepts it spells}, over hand-written files outside the config."""
    found: dict[str, set[str]] = {}
    for name, text in files.items():
        if name in CONFIG_FILES:
            continue
        surface = name.startswith(SURFACE)
        for concept, patterns in spellings().items():
            anywhere = concept in {"job selector", "model_info join"}
            if (surface or anywhere) and any(re.search(p, text) for p in patterns):
                found.setdefault(name, set()).add(concept)
    return found


def test_generated_rules_and_canary_checks_match_their_generator() -> None:
    stale = [
        str(path.relative_to(ROOT))
        for path, text in generator.build().items()
        if not path.is_file() or path.read_text() != text
    ]
    assert not stale, f"{stale}: run `make generate` and commit the result"


def test_every_slo_number_and_selector_is_written_once() -> None:
    files = hand_written()
    config = files["prometheus/observability.yml"]
    for concept, patterns in spellings().items():
        if concept != "model_info join":  # the config names its parts, not the PromQL
            assert any(re.search(p, config) for p in patterns), concept
    found = _found(files)
    unexpected = {name: sorted(c) for name, c in found.items()}
    assert not unexpected, f"spelled outside prometheus/observability.yml: {unexpected}"


def test_the_spelling_check_can_fail() -> None:
    planted = {"grafana/planted.py": "THRESHOLD = 0.025  # 25 ms", "x.conf": "a = 1"}
    assert _found(planted) == {"grafana/planted.py": {"latency SLO bound"}}
    assert _found({"anything.py": 'up{job=~".*faultline.*"}'}) == {"anything.py": {"job selector"}}


@pytest.mark.parametrize("bound", [CONFIG.latency_seconds, CONFIG.p95_ms / 1000])
def test_latency_bounds_are_buckets_of_the_service_histogram(bound: float) -> None:
    """A bound between two buckets would be judged at the next bucket up."""
    assert bound in LATENCY_BUCKETS
