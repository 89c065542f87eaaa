"""`make help` lists every target (digits included) and every variable with its real default."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_every_phony_target_and_expands_every_variable() -> None:
    makefile = (ROOT / "Makefile").read_text()
    phony = set(re.search(r"^\.PHONY: (.*)$", makefile, re.M).group(1).split())  # type: ignore[union-attr]
    documented = set(re.findall(r"^([a-z0-9-]+):.*## ", makefile, re.M))
    assert phony == documented, phony ^ documented
    shown = subprocess.run(
        ["make", "--no-print-directory", "help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout
    listed = {line.split()[0] for line in shown.splitlines() if line.startswith("  ")}
    assert phony <= listed
    assert "$(" not in shown
    assert re.search(r"^  ROWS\s+10000$", shown, re.M) and "k8s-manifests" in listed
