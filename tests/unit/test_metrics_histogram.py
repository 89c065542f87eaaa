"""ArrayHistogram: one bincount per model call, the same exposition as prometheus_client's
Histogram, through the public collector API (observe_many wrote the client's private fields)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from model.decision import PROBABILITY_BUCKETS
from service.metrics import ArrayHistogram

ROOT = Path(__file__).resolve().parents[2]
# prometheus_client's internals that code outside the client has been seen writing
CLIENT_INTERNALS = {"_buckets", "_sum", "_upper_bounds", "_value", "_metrics", "_labelnames"}


def _values() -> np.ndarray:
    # every bucket edge exactly (le is inclusive), values between, and the extremes
    edges = np.asarray(PROBABILITY_BUCKETS)
    rng = np.random.default_rng(3)
    return np.concatenate([edges, edges * 0.999, [0.0, 1.0], rng.random(500)])


def test_exposition_equals_the_client_histogram() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    array = ArrayHistogram("p", "doc", ["model_version"], PROBABILITY_BUCKETS, ours)
    plain = Histogram("p", "doc", ["model_version"], buckets=PROBABILITY_BUCKETS, registry=theirs)
    values = _values()
    for version in ("a", "b"):
        array.labels(version).observe_many(values)
        array.labels(version).observe_many(values[:7])
        for value in values[:40]:  # one reading per call: the bisect path
            array.labels(version).observe_many(np.array([value]))
        for value in [*values.tolist(), *values[:7].tolist(), *values[:40].tolist()]:
            plain.labels(version).observe(value)

    def samples(registry: CollectorRegistry) -> dict[str, float]:
        text = generate_latest(registry).decode()
        lines = [line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#")]
        return {series: float(value) for series, value in lines if "_created" not in series}

    # counts exactly; sums to float rounding (numpy sums pairwise, the client one by one)
    assert samples(ours) == pytest.approx(samples(theirs), rel=1e-12)


def test_multiprocess_mode_uses_the_client_histogram(tmp_path: Path) -> None:
    """Worker processes share values only through the client's files: there it must be a
    plain Histogram, and the supervisor's MultiProcessCollector must see what a worker saw."""
    code = (
        "import numpy as np\n"
        "from prometheus_client import CollectorRegistry, generate_latest, multiprocess\n"
        "from service.metrics import ArrayHistogram\n"
        "h = ArrayHistogram('p', 'doc', ['v'], (0.5, 1.0), CollectorRegistry())\n"
        "h.labels('x').observe_many(np.array([0.1, 0.7, 0.9]))\n"
        "r = CollectorRegistry(); multiprocess.MultiProcessCollector(r)\n"
        "print(generate_latest(r).decode())\n"
    )
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    assert 'p_bucket{le="0.5",v="x"} 1.0' in result.stdout
    assert 'p_count{v="x"} 3.0' in result.stdout


@pytest.mark.parametrize("path", sorted((ROOT / "service").rglob("*.py")), ids=lambda p: p.name)
def test_the_service_touches_no_client_internals(path: Path) -> None:
    touched = {
        node.attr
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr in CLIENT_INTERNALS
    }
    assert not touched, f"{path.name} uses prometheus_client internals {touched}"


def test_the_internals_check_can_fail() -> None:
    planted = ast.parse("histogram._sum.inc(1.0)\nbuckets = histogram._buckets\n")
    found = {n.attr for n in ast.walk(planted) if isinstance(n, ast.Attribute)}
    assert found & CLIENT_INTERNALS == {"_sum", "_buckets"}
