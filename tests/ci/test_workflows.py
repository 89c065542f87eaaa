"""GitHub workflows: schema-valid, checkov-clean, pinned, bounded, and built from make targets."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
# `make <target>` where a command starts (line start, after run:, ;, && or a subshell)
MAKE_CALL = re.compile(r"(?:^|[;&|(]|run:)\s*make\s+(?:-\S+\s+)*([a-z][a-z0-9-]*)", re.MULTILINE)


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z0-9-]*):", text, flags=re.MULTILINE))


def _load(path: Path) -> dict[object, object]:
    return yaml.load(path.read_text(), Loader=yaml.BaseLoader)  # "on" stays a string


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_the_github_schema(path: Path) -> None:
    # check-jsonschema's own command, run in this process (a process per file costs ~0.6 s)
    from check_jsonschema.cli.main_command import main
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["--builtin-schema", "vendor.github-workflows", str(path)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_conventions(path: Path) -> None:
    workflow = _load(path)
    assert workflow["permissions"] == {"contents": "read"}, "minimal top-level permissions"
    assert "concurrency" in workflow
    text = path.read_text()
    for use in re.findall(r"uses:\s*(\S+)(.*)", text):
        action, comment = use
        assert re.search(r"@[0-9a-f]{40}$", action), f"{action} is not pinned by SHA"
        assert re.search(r"#\s*v\d", comment), f"{action} has no version comment"
    for name, job in workflow["jobs"].items():  # type: ignore[attr-defined]
        assert "timeout-minutes" in job, name


def test_every_make_target_a_workflow_calls_exists() -> None:
    targets = _make_targets()
    called = {t for path in WORKFLOWS for t in MAKE_CALL.findall(path.read_text())}
    assert called and called <= targets, called - targets


def test_ci_run_and_ci_workflow_run_the_same_targets() -> None:
    ci_run = set(MAKE_CALL.findall((ROOT / ".ci" / "run").read_text()))
    steps = _load(ROOT / ".github" / "workflows" / "ci.yml")["jobs"]["test"]["steps"]  # type: ignore[index]
    in_workflow = {t for step in steps for t in MAKE_CALL.findall(step.get("run", ""))}
    assert ci_run == {"test"}
    assert in_workflow == {"lint", "test"}  # `make test` runs lint first, as .ci/run does


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("uvx") is None, reason="uvx not installed")
def test_checkov_github_actions_finds_nothing() -> None:
    result = subprocess.run(
        [
            "uvx",
            "--quiet",
            "--from",
            "checkov==3.3.30",
            "checkov",
            "-d",
            str(ROOT / ".github" / "workflows"),
            "--framework",
            "github_actions",
            "--skip-download",
            "--compact",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [c["check_id"] for r in reports for c in r["results"]["failed_checks"]]
    assert failed == []
    assert sum(len(r["results"]["passed_checks"]) for r in reports) > 50
