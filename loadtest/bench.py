"""`make bench`: throughput, latency, start-up time and memory of the real service.

The server runs pinned to core 0, the load generator (wrk) to core 1, so figures compare on a
2-core machine. A bare ASGI app is measured in the same run as a floor. This is a benchmark
that prints figures, never a test that asserts them.

    python -m loadtest.bench                 # all scenarios, prints a table
    python -m loadtest.bench --json a.json   # also save the figures
    python -m loadtest.bench --compare a.json b.json   # ratios between two runs
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from loadtest.stack import stop, wait_until_ok
from model import features as F

ROOT = Path(__file__).resolve().parents[1]
app = typer.Typer(add_completion=False, help=__doc__)
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass
class Figure:
    """One scenario's result."""

    scenario: str
    requests_per_s: float
    readings_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def _pin(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") and os.cpu_count() != 1 else []


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn workers), in MB."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for p in pids:
        status = Path(f"/proc/{p}/status").read_text()
        total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return total / 1024


def _wrk(
    url: str, body: Path, connections: int, seconds: int, delay_ms: float = 0
) -> tuple[float, float, float, int]:
    """wrk from core 1; with delay_ms each connection pauses between requests (paced load)."""
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    pacing = f"function delay() return {delay_ms} end\n" if delay_ms else ""
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'local f = io.open("{body}"); wrk.body = f:read("*a"); f:close()\n{pacing}'
    )
    out = subprocess.run(
        [
            *_pin(1),
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    script.unlink()

    def latency(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out).groups()  # type: ignore[union-attr]
        return float(value) * UNITS[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, latency("50%"), latency("99%"), int(errors.group(1)) if errors else 0


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        return subprocess.Popen(
            [*_pin(0), *command], env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT
        )


def run(model_dir: Path, seconds: int, port: int, workdir: Path) -> dict[str, object]:
    """All scenarios against the floor and the real service."""
    one = workdir / "one.json"
    one.write_text(json.dumps(F.example_reading()))
    oip = workdir / "oip-one.json"  # the same reading as Open Inference Protocol tensors
    oip.write_text(
        json.dumps(
            {
                "inputs": [
                    {
                        "name": k,
                        "datatype": "BYTES" if isinstance(v, str) else "FP64",
                        "shape": [1],
                        "data": [v],
                    }
                    for k, v in F.example_reading().items()
                ]
            }
        )
    )
    batch = workdir / "batch100.json"
    batch.write_text(json.dumps({"instances": [F.example_reading()] * 100}))
    figures: list[Figure] = []
    explainer_url = f"http://127.0.0.1:{port + 1}"
    env = {
        **os.environ,
        "FAULTLINE_MODEL_DIR": str(model_dir),
        "FAULTLINE_LOG_FORMAT": "json",
        # read only by POST /v1/explain: the explainer starts after the predict scenarios
        "FAULTLINE_EXPLAINER_URL": explainer_url,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    url = f"http://127.0.0.1:{port}"

    floor = _start(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "loadtest.floor_app:app",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env,
        workdir / "floor.log",
    )
    try:
        wait_until_ok(f"{url}/", floor, workdir / "floor.log")
        for connections in (8, 32):
            rps, p50, p99, errors = _wrk(f"{url}/v1/predict", one, connections, seconds)
            figures.append(Figure(f"floor: bare ASGI, c={connections}", rps, rps, p50, p99, errors))
            typer.echo(f"  {figures[-1].scenario}: {rps:,.0f} req/s", err=True)
    finally:
        stop(floor)
        time.sleep(0.5)

    server = _start(
        [sys.executable, "-m", "service", "serve", "--port", str(port)], env, workdir / "server.log"
    )
    try:
        startup = wait_until_ok(f"{url}/readyz", server, workdir / "server.log")
        typer.echo(f"  start-up to ready: {startup:.2f} s", err=True)
        for connections in (8, 32):
            rps, p50, p99, errors = _wrk(f"{url}/v1/predict", one, connections, seconds)
            figures.append(Figure(f"single row, c={connections}", rps, rps, p50, p99, errors))
            typer.echo(f"  {figures[-1].scenario}: {rps:,.0f} req/s, p99 {p99:.2f} ms", err=True)
        infer = f"{url}/v2/models/faultline/infer"
        rps, p50, p99, errors = _wrk(infer, oip, 8, seconds)
        figures.append(Figure("OIP single row, c=8", rps, rps, p50, p99, errors))
        typer.echo(f"  {figures[-1].scenario}: {rps:,.0f} req/s, p99 {p99:.2f} ms", err=True)
        rps, p50, p99, errors = _wrk(f"{url}/v1/predict", batch, 8, seconds)
        figures.append(Figure("batch of 100, c=8", rps, rps * 100, p50, p99, errors))
        typer.echo(f"  batch of 100: {rps * 100:,.0f} readings/s", err=True)
        # ~100 req/s: 4 connections, each pausing 40 ms between requests (wrk's delay hook;
        # service time is ~1 ms, so the rate is fixed by the pacing, not by the server)
        rps, p50, p99, errors = _wrk(f"{url}/v1/predict", one, 4, seconds, delay_ms=40)
        figures.append(Figure("paced ~100 req/s", rps, rps, p50, p99, errors))
        typer.echo(f"  paced {rps:.0f} req/s: p99 {p99:.2f} ms", err=True)
        rss = _rss_mb(server.pid)
        figures += _explain(url, explainer_url, env, workdir, seconds)
    finally:
        stop(server)
    return {
        "startup_s": round(startup, 3),
        "rss_mb": round(rss, 1),
        "figures": [asdict(f) for f in figures],
        "seconds_per_scenario": seconds,
        "cpus": os.cpu_count(),
    }


def _explain(
    url: str, explainer_url: str, env: dict[str, str], workdir: Path, seconds: int
) -> list[Figure]:
    """POST /v1/explain through the service for 1 and 100 readings, one client at a time (the
    explainer, on the server's core, computes exact SHAP values: latency, not throughput)."""
    if importlib.util.find_spec("shap") is None:
        typer.echo("  explain: skipped (shap not installed: uv sync --group explain)", err=True)
        return []
    port = explainer_url.rsplit(":", 1)[1]
    command = [sys.executable, "-m", "explainer", "--port", port]
    explainer = _start(
        command, {**env, "FAULTLINE_EXPLAINER_METRICS_PORT": "0"}, workdir / "explainer.log"
    )
    figures = []
    try:
        wait_until_ok(f"{explainer_url}/readyz", explainer, workdir / "explainer.log")
        for n in (1, 100):
            body = workdir / f"explain{n}.json"
            body.write_text(json.dumps({"instances": [F.example_reading()] * n}))
            rps, p50, p99, errors = _wrk(f"{url}/v1/explain", body, 1, seconds)
            figures.append(
                Figure(f"explain {n} reading{'s' * (n > 1)}, c=1", rps, rps * n, p50, p99, errors)
            )
            typer.echo(f"  {figures[-1].scenario}: p50 {p50:.1f} ms, p99 {p99:.1f} ms", err=True)
    finally:
        stop(explainer)
    return figures


# The speed targets (README "Speed"): scenario -> (least readings/s, most p99 ms).
TARGETS: dict[str, tuple[float, float]] = {
    "single row, c=8": (3_000, 5.0),
    "single row, c=32": (5_000, 10.0),
    # issue 17: the Open Inference Protocol at >= 80 % of /v1's single-row target
    "OIP single row, c=8": (2_400, 5.0),
    "batch of 100, c=8": (100_000, math.inf),
    "paced ~100 req/s": (0, 4.0),
}
STARTUP_TARGET_S, RSS_TARGET_MB = 3.0, 250.0
OIP_RATIO_TARGET = 0.8  # issue 17: the Open Inference Protocol at >= 80 % of /v1's rate
# A bare ASGI app on an idle core does ~30,000 req/s at c=8 with p99 under 1 ms; far below that,
# the machine itself was busy and every figure of the run is suspect.
FLOOR_MIN_RPS, FLOOR_MAX_P99_MS = 15_000, 2.0


def verdict(f: dict[str, Any]) -> tuple[str, str]:
    """(target, verdict) of one scenario; the floor is judged as a check on the machine."""
    if f["scenario"].startswith("floor"):
        quiet = f["requests_per_s"] >= FLOOR_MIN_RPS and f["p99_ms"] <= FLOOR_MAX_P99_MS
        return f">={FLOOR_MIN_RPS:,} req/s, p99<={FLOOR_MAX_P99_MS:g}", (
            "quiet" if quiet else "DISTURBED"
        )
    least, most = TARGETS.get(f["scenario"], (0, math.inf))
    target = " ".join(
        part
        for part in (f">={least:,.0f}/s" if least else "", f"p99<{most:g}" if most < 1e9 else "")
        if part
    )
    met = f["readings_per_s"] >= least and f["p99_ms"] < most and not f["errors"]
    return target, "met" if met else "MISSED"


def render(result: dict[str, Any]) -> str:
    lines = [
        f"{'scenario':32} {'req/s':>10} {'readings/s':>12} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>6}  {'target':26} verdict"
    ]
    disturbed = False
    for f in result["figures"]:
        target, outcome = verdict(f)
        disturbed |= outcome == "DISTURBED"
        lines.append(
            f"{f['scenario']:32} {f['requests_per_s']:>10,.0f} "
            f"{f['readings_per_s']:>12,.0f} {f['p50_ms']:>8.2f} {f['p99_ms']:>8.2f} "
            f"{f['errors']:>6}  {target:26} {outcome}"
        )
    startup_ok = result["startup_s"] < STARTUP_TARGET_S
    rss_ok = result["rss_mb"] < RSS_TARGET_MB
    lines.append(
        f"start-up to ready {result['startup_s']} s (target <{STARTUP_TARGET_S:g}: "
        f"{'met' if startup_ok else 'MISSED'}), resident memory {result['rss_mb']} MB "
        f"(target <{RSS_TARGET_MB:g}: {'met' if rss_ok else 'MISSED'}); server pinned to core 0, "
        "wrk on core 1"
    )
    by_name = {f["scenario"]: f["requests_per_s"] for f in result["figures"]}
    if by_name.get("single row, c=8") and "OIP single row, c=8" in by_name:
        ratio = by_name["OIP single row, c=8"] / by_name["single row, c=8"]
        lines.append(
            f"OIP / v1 single row at c=8: x{ratio:.2f} (target >= x{OIP_RATIO_TARGET:g}: "
            f"{'met' if ratio >= OIP_RATIO_TARGET else 'MISSED'})"
        )
    if disturbed:
        lines.append(
            "WARNING: the bare-ASGI floor was disturbed (other work on the machine): treat this "
            "run's figures as a lower bound and measure again on a quiet machine"
        )
    return "\n".join(lines)


@app.command()
def main(
    model_dir: Annotated[Path, typer.Option(help="Bundle or models directory.")] = Path(
        "artifacts/models"
    ),
    seconds: Annotated[int, typer.Option(min=2, help="Duration of each wrk scenario.")] = 10,
    port: Annotated[int, typer.Option(help="Loopback port to use.")] = 18_765,
    json_out: Annotated[Path | None, typer.Option("--json", help="Save figures here.")] = None,
    compare: Annotated[
        tuple[Path, Path] | None,
        typer.Option(help="Two saved runs: print B/A ratios instead of measuring."),
    ] = None,
) -> None:
    """Measure (or compare) the service's speed and memory."""
    if compare:
        a, b = (json.loads(p.read_text()) for p in compare)
        before = {f["scenario"]: f for f in a["figures"]}
        for fb in b["figures"]:  # scenarios new in B (nothing to compare with) are skipped
            fa = before.get(fb["scenario"])
            if fa is None:
                typer.echo(f"{fb['scenario']:32} (new: {fb['requests_per_s']:,.0f} req/s)")
                continue
            typer.echo(
                f"{fa['scenario']:32} req/s x{fb['requests_per_s'] / fa['requests_per_s']:.2f}"
                f"  p99 x{fb['p99_ms'] / max(fa['p99_ms'], 1e-9):.2f}"
            )
        typer.echo(
            f"start-up x{b['startup_s'] / a['startup_s']:.2f}  rss x{b['rss_mb'] / a['rss_mb']:.2f}"
        )
        return
    if shutil.which("wrk") is None:
        typer.echo("wrk is not installed: apt-get install wrk", err=True)
        raise typer.Exit(2)
    with tempfile.TemporaryDirectory() as tmp:
        result = run(model_dir, seconds, port, Path(tmp))
    typer.echo(render(result))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    app()
