"""Dashboards: generated from code, valid against @grafana/schema, conventions, valid PromQL."""

from __future__ import annotations

import json
import os
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
