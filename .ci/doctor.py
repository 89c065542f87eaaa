#!/usr/bin/env python3
"""`make doctor`: every prerequisite, found or not, what it is for, how to install it, and what
happens to the tests without it. Runs on the system Python before any environment exists.

Exit 1 only when something that every command needs is missing (Python 3.11+, uv, make);
anything else makes some tests skip (pytest prints each reason) or a target unavailable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Need:
    name: str
    needed_for: str
    without: str  # what happens when it is missing
    debian: str
    macos: str
    required: bool = False


def _version(command: list[str]) -> str | None:
    """First line a command prints, or None when it is missing or fails."""
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0][:60] if lines else "found"


def _python() -> str | None:
    version = sys.version_info
    return f"Python {version.major}.{version.minor}" if version >= (3, 11) else None


def _docker_engine() -> str | None:
    return _version(["docker", "info", "--format", "engine {{.ServerVersion}}"])


def _base_image() -> str | None:
    found = _version(["docker", "image", "inspect", "--format", "{{.Id}}", "local/debian:bookworm"])
    return "local/debian:bookworm" if found else None


def _crds() -> str | None:
    crds = ROOT.parent / "shared" / "crds"
    return str(crds) if crds.is_dir() else None


CHECKS: list[tuple[Need, object]] = [
    (
        Need(
            "python 3.11+",
            "everything",
            "nothing runs",
            "apt-get install python3",
            "brew install python@3.11",
            required=True,
        ),
        _python,
    ),
    (
        Need(
            "uv",
            "the locked environment (make setup)",
            "nothing runs",
            "pip install uv",
            "brew install uv",
            required=True,
        ),
        lambda: _version(["uv", "--version"]),
    ),
    (
        Need(
            "make",
            "the one interface",
            "no target runs",
            "apt-get install make",
            "xcode-select --install",
            required=True,
        ),
        lambda: _version(["make", "--version"]),
    ),
    (
        Need(
            "prometheus + promtool",
            "demo server-side figures, rule tests, live tests",
            "demo runs without Prometheus; rule/live/canary tests skip",
            "apt-get install prometheus",
            "brew install prometheus",
        ),
        lambda: _version(["promtool", "--version"]) and _version(["prometheus", "--version"]),
    ),
    (
        Need(
            "wrk",
            "make bench",
            "make bench stops with the install command",
            "apt-get install wrk",
            "brew install wrk",
        ),
        lambda: "found" if shutil.which("wrk") else None,
    ),
    (
        Need(
            "node + npm",
            "dashboard schema and custom-resource validators",
            "those tests skip (fail under CI=true)",
            "apt-get install nodejs npm",
            "brew install node",
        ),
        lambda: _version(["npm", "--version"]),
    ),
    (
        Need(
            "docker engine (running)",
            "make image, make smoke, the image tests",
            "image tests skip (fail with FAULTLINE_REQUIRE_DOCKER=1)",
            "apt-get install docker.io && (dockerd &)",
            "Docker Desktop, or brew install colima",
        ),
        _docker_engine,
    ),
    (
        Need(
            "base image local/debian:bookworm",
            "image builds where no registry is reachable",
            "make image pulls python:3.12-slim instead (needs a registry)",
            "apt-get install debootstrap && bash service/base-image.sh local/debian:bookworm",
            "not needed (Docker Desktop pulls python:3.12-slim)",
        ),
        _base_image,
    ),
    (
        Need(
            "kubectl",
            "kustomize builds of k8s/, the kind targets",
            "kustomize tests skip (fail under CI=true)",
            "see kubernetes.io/docs/tasks/tools (or apt-get install kubernetes-client)",
            "brew install kubectl",
        ),
        lambda: _version(["kubectl", "version", "--client"]),
    ),
    (
        Need(
            "taskset",
            "make bench pins server and load generator to their own cores",
            "bench runs unpinned (noisier)",
            "apt-get install util-linux",
            "not available: unpinned",
        ),
        lambda: "found" if shutil.which("taskset") else None,
    ),
    (
        Need(
            "strace",
            "proof that the service reaches nothing but loopback (no DNS, no telemetry)",
            "that test skips",
            "apt-get install strace",
            "not available: the test skips",
        ),
        lambda: "found" if shutil.which("strace") else None,
    ),
    (
        Need(
            "chromium",
            "renders the Evidently HTML report headless (the report test)",
            "that test skips (fails under CI=true)",
            "apt-get install chromium",
            "brew install --cask chromium",
        ),
        lambda: "found" if shutil.which("chromium") or shutil.which("chromium-browser") else None,
    ),
    (
        Need(
            "../shared/crds",
            "custom resources checked against the upstream CRD schemas",
            "those tests skip (fail under CI=true)",
            "present beside the checkout in CI",
            "present beside the checkout in CI",
        ),
        _crds,
    ),
]


def main() -> int:
    missing_required = []
    print(f"{'prerequisite':34} {'status':32} needed for")
    for need, probe in CHECKS:
        found = probe()  # type: ignore[operator]
        status = f"ok   {found}" if found else "MISSING"
        print(f"{need.name:34} {status[:32]:32} {need.needed_for}")
        if not found:
            print(f"{'':34} {'':32} without it: {need.without}")
            print(f"{'':34} {'':32} Debian/Ubuntu: {need.debian}")
            print(f"{'':34} {'':32} macOS: {need.macos}")
            if need.required:
                missing_required.append(need.name)
    if os.environ.get("FAULTLINE_REQUIRE_DOCKER"):
        print("FAULTLINE_REQUIRE_DOCKER is set: the image tests fail instead of skipping")
    if missing_required:
        print(f"doctor: missing {', '.join(missing_required)}: install them first")
        return 1
    print("doctor: every command can run; tests whose tool is MISSING skip with the reason")
    return 0


if __name__ == "__main__":
    sys.exit(main())
