"""`make demo`: the main job on one machine.

Train if there is no bundle; start the service and Prometheus (with the project's rules); run
the steady Locust scenario with progress; print a summary from Locust and from Prometheus
(throughput, errors, latency, predicted failure share, largest drift, alerts), each figure with
its target and verdict, judged on what the service measured (a slow client on a healthy server
is named, not failed: loadtest/server_slo.py), and where every artifact is; stop everything it
started (or keep it running with --keep, `make demo KEEP=1`). Exit 1 when the SLO failed.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from loadtest import server_slo, slo
from loadtest.stack import ROOT, Prometheus, locust_command, prometheus, service
from model.bundle import newest_bundle

app = typer.Typer(add_completion=False, help=__doc__)
# Not on a terminal (CI, a log file), rich would wrap at 80 columns and split URLs and paths.
console = Console(width=None if sys.stdout.isatty() else 160)


def _ensure_bundle(models_dir: Path, rows: int) -> Path:
    bundle = newest_bundle(models_dir)
    if bundle is None:
        console.rule("no bundle yet: training one")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "training",
                "train",
                "--rows",
                str(rows),
                "--models-dir",
                str(models_dir),
            ],
            check=True,
            cwd=ROOT,
        )
        bundle = newest_bundle(models_dir)
    assert bundle is not None
    return bundle


@contextlib.contextmanager
def _maybe_prometheus(workdir: Path, url: str) -> Iterator[Prometheus | None]:
    if shutil.which("prometheus") is None:
        console.print(
            "[yellow]prometheus is not on PATH: running without it "
            "(Debian/Ubuntu: sudo apt-get install prometheus)[/yellow]"
        )
        yield None
        return
    with prometheus(workdir, [(url, {"track": "stable"})], interval_s=2.0) as prom:
        yield prom


def _locust(url: str, seconds: int, users: int, seed: int, out: Path) -> int:
    """Run the steady scenario with progress (a live line on a terminal, a log line every 10 s
    otherwise); Locust's exit code."""
    command = locust_command(
        url,
        out,
        "locust",
        scenario="steady",
        scenario_seconds=seconds,
        peak_users=users,
        payload_seed=seed,
        summary_json=out / "locust.json",
    )
    with (out / "locust.log").open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        started = time.monotonic()
        if console.is_terminal:
            with console.status("") as status:
                while process.poll() is None:
                    elapsed = time.monotonic() - started
                    status.update(f"steady load: {users} users, {elapsed:.0f}/{seconds} s")
                    time.sleep(0.5)
        else:
            next_line = 0.0
            while process.poll() is None:
                elapsed = time.monotonic() - started
                if elapsed >= next_line:
                    print(f"steady load: {users} users, {elapsed:.0f}/{seconds} s", flush=True)
                    next_line += 10
                time.sleep(0.5)
    return int(process.returncode)


def _prometheus_figures(prom: Prometheus, seconds: int) -> dict[str, Any]:
    """What Prometheus computed over the run."""
    window = f"{seconds}s"
    sel = 'handler="/v1/predict"'

    def value(expr: str) -> float | None:
        return prom.value(expr)

    def quantile(q: float) -> float | None:
        return value(
            f"histogram_quantile({q}, sum by (le) "
            f"(increase(http_request_duration_seconds_bucket{{{sel}}}[{window}])))"
        )

    drift = prom.query("topk(1, faultline_feature_drift_psi)")
    return {
        "requests": value(f"sum(increase(http_requests_total{{{sel}}}[{window}]))"),
        "requests_per_s": value(f"sum(rate(http_requests_total{{{sel}}}[{window}]))"),
        "error_ratio": value(
            f'sum(increase(http_requests_total{{{sel}, status=~"5.."}}[{window}])) '
            f"/ sum(increase(http_requests_total{{{sel}}}[{window}])) or vector(0)"
        ),
        "p50_ms": _ms(quantile(0.5)),
        "p95_ms": _ms(quantile(0.95)),
        "p99_ms": _ms(quantile(0.99)),
        "failure_share": value(
            f'sum(increase(faultline_predictions_total{{outcome="failure"}}[{window}])) '
            f"/ sum(increase(faultline_predictions_total[{window}]))"
        ),
        "largest_drift": (drift[0]["metric"].get("feature"), float(drift[0]["value"][1]))
        if drift
        else None,
        "alerts": sorted(f"{a['labels']['alertname']} ({a['state']})" for a in prom.alerts()),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _fmt(value: Any, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def _row_verdict(value: float | None, target: float) -> str:
    return "-" if value is None else "ok" if value <= target else "OVER"


def _at_least(value: float | None, target: float) -> str:
    return "-" if value is None else "ok" if value >= target else "LOW"


def _summary(
    bundle: Path, locust: dict[str, Any], prom: dict[str, Any] | None, expected_rps: float
) -> tuple[bool, str]:
    """The figures next to their targets; (passed, why) judged as loadtest.server_slo does."""
    table = Table(title=f"Faultline demo: model {bundle.name}")
    for column in ("figure", "Locust (client)", "Prometheus (server)", "target", "verdict"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    p = prom or {}
    server_rps = p.get("requests_per_s")
    table.add_row(
        "throughput",
        _fmt(locust.get("requests_per_s"), "{:,.1f} req/s"),
        _fmt(server_rps, "{:,.1f} req/s"),
        f"~{expected_rps:,.0f} req/s offered",
        # achieved against offered, from the client (a rate over a short window from
        # Prometheus' scrapes underestimates it)
        _at_least(locust.get("requests_per_s"), 0.8 * expected_rps),
    )
    table.add_row(
        "5xx ratio",
        _fmt(locust.get("failure_ratio"), "{:.3%}"),
        _fmt(p.get("error_ratio"), "{:.3%}"),
        f"<= {slo.MAX_FAILURE_RATIO:.1%}",
        _row_verdict(p.get("error_ratio", locust.get("failure_ratio")), slo.MAX_FAILURE_RATIO),
    )
    targets = {"p50": None, "p95": slo.P95_MS, "p99": slo.P99_MS}
    for q, target in targets.items():
        table.add_row(
            f"{q} latency",
            _fmt(locust.get(f"{q}_ms"), "{:.1f} ms"),
            _fmt(p.get(f"{q}_ms"), "{:.1f} ms"),
            "" if target is None else f"<= {target:g} ms (server)",
            "" if target is None else _row_verdict(p.get(f"{q}_ms"), target),
        )
    table.add_row("predicted failure share", "", _fmt(p.get("failure_share"), "{:.2%}"), "", "")
    drift, bound = p.get("largest_drift"), slo.CONFIG.alerts["psi_significant"]
    table.add_row(
        "largest feature drift (PSI)",
        "",
        f"{drift[0]} {drift[1]:.3f}" if drift else "-",
        f"<= {bound:g}",
        _row_verdict(drift[1] if drift else None, bound),
    )
    firing = [a for a in p.get("alerts", []) if a.endswith("(firing)")]
    table.add_row(
        "alerts",
        "",
        ", ".join(p.get("alerts", [])) or ("none" if prom else "-"),
        "none firing",
        "-" if prom is None else "ok" if not firing else "FIRING",
    )
    console.print(table)
    if prom is None:
        passed = locust.get("gate") == "passed"
        why = "client-side gate only (no Prometheus): " + (
            "; ".join(locust.get("violations", [])) or "passed"
        )
        return passed, why
    figures = server_slo.ServerFigures(
        requests=float(p.get("requests") or math.nan),
        error_ratio=p.get("error_ratio") if p.get("error_ratio") is not None else math.nan,
        p95_ms=p.get("p95_ms") if p.get("p95_ms") is not None else math.nan,
        p99_ms=p.get("p99_ms") if p.get("p99_ms") is not None else math.nan,
    )
    return server_slo.combined_verdict(server_slo.violations(figures), locust)


def _where(bundle: Path, out: Path, reports_root: Path) -> None:
    """Every artifact of the run and how to open it."""
    from training.explain import SUMMARY_FILE  # matplotlib: imported only to name the file

    reports = reports_root / bundle.name
    rows = [
        ("Locust HTML report", out / "locust.html"),
        ("Locust log, CSV, summary", out / "locust.log"),
        ("service log (JSON lines)", out / "service.log"),
        ("Prometheus data and log", out / "prometheus"),
        ("model bundle", bundle),
        ("model card", reports / "model_card.md"),
        ("training plots", reports),
        # the SHAP summary (beeswarm); the top features' dependence plots are beside it
        ("attribution plots", reports / SUMMARY_FILE),
    ]
    for what, path in rows:
        console.print(f"{what:26} {path}" + ("" if path.exists() else "  (not written)"))
    console.print(
        f"{'MLflow runs':26} uv run mlflow ui --backend-store-uri sqlite:///artifacts/mlflow.db"
    )


@app.command()
def main(
    models_dir: Annotated[Path, typer.Option(help="Where bundles live.")] = Path(
        "artifacts/models"
    ),
    seconds: Annotated[int, typer.Option(min=5, help="Length of the steady load.")] = 60,
    users: Annotated[int, typer.Option(min=1, help="Locust users (10 req/s each).")] = 10,
    rows: Annotated[int, typer.Option(help="Synthetic rows if a bundle must be trained.")] = 10_000,
    out: Annotated[Path, typer.Option(help="Reports and logs.")] = Path("results/demo"),
    keep: Annotated[
        bool, typer.Option(help="Keep the stack running afterwards (make demo KEEP=1).")
    ] = False,
) -> None:
    """Train if needed, serve, scrape, load, summarize, stop."""
    out.mkdir(parents=True, exist_ok=True)
    bundle = _ensure_bundle(models_dir, rows)
    meta = json.loads((bundle / "metadata.json").read_text())
    seed = int(meta["params"]["seed"])  # readings from the training distribution (no drift)
    console.rule(f"serving {bundle.name}")
    with (
        service(bundle, out / "service.log") as svc,
        _maybe_prometheus(out / "prometheus", svc.url) as prom,
    ):
        console.print(
            f"service {svc.url} (ready in {svc.startup_s:.1f} s)"
            + (f", prometheus {prom.url}" if prom else "")
        )
        code = _locust(svc.url, seconds, users, seed, out)
        summary_file = out / "locust.json"
        if not summary_file.is_file():
            console.print(f"[red]Locust failed (exit {code}); see {out / 'locust.log'}[/red]")
            raise typer.Exit(1)
        locust = json.loads(summary_file.read_text())
        figures = None
        if prom:
            time.sleep(5)  # two scrapes and a rule evaluation after the last request
            figures = _prometheus_figures(prom, seconds)
        passed, why = _summary(bundle, locust, figures, users * 10.0)
        console.print(f"verdict: {'PASSED' if passed else 'FAILED'}: {why}")
        _where(bundle, out, models_dir.parent / "reports")
        if keep:
            metrics = getattr(svc, "metrics_url", "")
            console.print(
                "\nstill running until Ctrl-C:"
                f"\n  API      {svc.url}/v1/predict   {svc.url}/v1/model   {svc.url}/readyz"
                + (f"\n  metrics  {metrics}/metrics" if metrics else "")
                + (f"\n  Prometheus {prom.url}/graph   {prom.url}/alerts" if prom else "")
            )
            with contextlib.suppress(KeyboardInterrupt):
                while svc.process.poll() is None:
                    time.sleep(1)
        if not passed:
            raise typer.Exit(1)


if __name__ == "__main__":
    app()
