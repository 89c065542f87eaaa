"""Prove the dashboards on a running Grafana (the kind e2e job): the sidecar loaded every one,
every panel query returns data through Grafana's own query API, and a screenshot of each.

    python grafana/check_live.py --grafana http://localhost:3000 --user admin --password ... \
        --since 60m --screenshots results/grafana --browser google-chrome

Prints one line per panel query (series and points returned) and exits 1 when a dashboard is
missing or a query returns nothing. Screenshots need anonymous viewer access (the kind values
of kube-prometheus-stack turn it on) and a Chromium-family browser.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

BOARDS = Path(__file__).resolve().parent / "dashboards"
# What a dashboard variable stands for when a query runs outside a dashboard: every value.
VARIABLES = {"$namespace": ".*", "$model_version": ".*", "$track": ".*", "$__rate_interval": "1m"}


def dashboards() -> dict[str, dict[str, Any]]:
    """The committed dashboards by file name."""
    return {p.name: json.loads(p.read_text()) for p in sorted(BOARDS.glob("*.json"))}


def panel_queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL with variables substituted) for every target of a dashboard."""
    found = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in VARIABLES.items():
                expr = expr.replace(name, value)
            found.append((panel["title"], expr))
    return found


def _points(answer: dict[str, Any]) -> tuple[int, int]:
    """(series, points) in a /api/ds/query answer."""
    series = points = 0
    for result in answer.get("results", {}).values():
        for frame in result.get("frames", []):
            values = frame.get("data", {}).get("values", [])
            if values and values[-1]:
                series += 1
                points += sum(v is not None for v in values[-1])
    return series, points


def check(client: httpx.Client, since: str) -> list[str]:
    """Every dashboard loaded and every panel query non-empty; the problems found."""
    problems = []
    loaded = {d["uid"] for d in client.get("/api/search", params={"type": "dash-db"}).json()}
    [source] = [s for s in client.get("/api/datasources").json() if s["type"] == "prometheus"][:1]
    for name, board in dashboards().items():
        if board["uid"] not in loaded:
            problems.append(f"{name}: not loaded by the Grafana sidecar (uid {board['uid']})")
            continue
        for title, expr in panel_queries(board):
            body = {
                "from": f"now-{since}",
                "to": "now",
                "queries": [
                    {
                        "refId": "A",
                        "datasource": {"uid": source["uid"], "type": "prometheus"},
                        "expr": expr,
                        "range": True,
                        "intervalMs": 15000,
                        "maxDataPoints": 300,
                    }
                ],
            }
            answer = client.post("/api/ds/query", json=body)
            series, points = _points(answer.json()) if answer.is_success else (0, 0)
            print(f"{board['uid']:20} {title[:50]:50} series={series:<3} points={points}")
            if not points:
                problems.append(f"{board['uid']}: {title}: no data ({answer.status_code}) {expr}")
    return problems


def screenshots(grafana: str, folder: Path, browser: str, since: str) -> None:
    """One PNG per dashboard, as a viewer sees it (kiosk mode, the same time range)."""
    folder.mkdir(parents=True, exist_ok=True)
    for board in dashboards().values():
        path = folder / f"{board['uid']}.png"
        url = f"{grafana}/d/{board['uid']}?orgId=1&kiosk&from=now-{since}&to=now"
        subprocess.run(
            [
                browser,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1600,2400",
                "--virtual-time-budget=20000",
                f"--screenshot={path}",
                url,
            ],
            check=True,
            timeout=120,
        )
        print(f"screenshot {path} ({path.stat().st_size} bytes)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grafana", required=True, help="Grafana base URL.")
    parser.add_argument("--user", default="admin", help="Grafana user.")
    parser.add_argument("--password", required=True, help="Grafana password.")
    parser.add_argument("--since", default="60m", help="Time range the queries cover.")
    parser.add_argument("--wait", type=float, default=120, help="Seconds to wait for the sidecar.")
    parser.add_argument("--screenshots", type=Path, help="Folder for one PNG per dashboard.")
    parser.add_argument("--browser", default="google-chrome", help="Chromium-family browser.")
    args = parser.parse_args()
    with httpx.Client(base_url=args.grafana, auth=(args.user, args.password), timeout=30) as c:
        deadline = time.monotonic() + args.wait
        while True:  # the sidecar loads ConfigMaps asynchronously
            problems = check(c, args.since)
            if not any("not loaded" in p for p in problems) or time.monotonic() > deadline:
                break
            time.sleep(10)
    if args.screenshots:
        screenshots(args.grafana, args.screenshots, args.browser, args.since)
    for problem in problems:
        print(f"FAIL {problem}")
    print(f"grafana check: {'FAILED' if problems else 'passed'} ({len(problems)} problems)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
