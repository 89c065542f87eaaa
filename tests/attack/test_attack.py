"""The attack run of `make attack` as a test: every attack of issue 12 meets its goal."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.attack.attacks import run_all

pytestmark = pytest.mark.slow


def test_every_attack_meets_its_goal(bundle_path: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    results = run_all(bundle_path, tmp_path, seconds=3.0, echo=lines.append)
    print("\n".join(lines))
    failed = [r.line() for r in results if not r.ok]
    assert not failed, "\n".join(failed)
    assert sum(r.client_5xx + r.server_5xx for r in results) == 0
