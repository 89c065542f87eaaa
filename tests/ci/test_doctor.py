"""`make doctor`: a missing tool is named with what it is for and how to install it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _doctor(path: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path}
    return subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "doctor.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_a_missing_tool_is_named_with_its_install_command(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"  # only what every command needs (version printers: the
    bin_dir.mkdir()  # real uv may be a pyenv shim that needs more of PATH)
    for tool in ("uv", "make"):
        script = bin_dir / tool
        script.write_text(f"#!/bin/sh\necho '{tool} 1.0'\n")
        script.chmod(0o755)
    done = _doctor(str(bin_dir))
    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    wrk = next(i for i, line in enumerate(lines) if line.startswith("wrk "))
    assert "MISSING" in lines[wrk]
    assert "apt-get install wrk" in lines[wrk + 2] and "brew install wrk" in lines[wrk + 3]
    assert "make bench stops" in lines[wrk + 1]


def test_missing_uv_stops_everything(tmp_path: Path) -> None:
    done = _doctor(str(tmp_path))
    assert done.returncode == 1
    assert "doctor: missing uv, make" in done.stdout
