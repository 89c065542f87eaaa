"""Copy the rules, dashboards and canary checks into the chart (Helm cannot read outside it).

    python helm/sync_chart_files.py          # write the copies (make chart-files, make generate)
    python helm/sync_chart_files.py --check  # exit 1 if a copy drifted (make test runs this)

YAML copies carry a do-not-edit header; JSON dashboards are copied byte for byte (JSON has no
comments) and files/README.md says they are generated.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ROOT / "helm" / "faultline" / "files"
HEADER = "# GENERATED from {source} by helm/sync_chart_files.py: do not edit; edit the source.\n"


def expected() -> dict[Path, str]:
    """Every generated file and its content."""
    copies: dict[Path, str] = {}
    for source in sorted((ROOT / "prometheus" / "rules").glob("*.yml")):
        copies[FILES / "rules" / source.name] = (
            HEADER.format(source=source.relative_to(ROOT)) + source.read_text()
        )
    for source in sorted((ROOT / "grafana" / "dashboards").glob("*.json")):
        copies[FILES / "dashboards" / source.name] = source.read_text()
    canary = ROOT / "prometheus" / "canary-analysis.yml"
    copies[FILES / "canary-analysis.yml"] = (
        HEADER.format(source=canary.relative_to(ROOT)) + canary.read_text()
    )
    return copies


def drifted() -> list[str]:
    """Copies that differ from (or are missing next to) their sources, and stale copies."""
    wanted = expected()
    problems = [
        str(p.relative_to(ROOT))
        for p, text in wanted.items()
        if not p.is_file() or p.read_text() != text
    ]
    present = [p for folder in ("rules", "dashboards") for p in (FILES / folder).glob("*")]
    problems += [f"{p.relative_to(ROOT)} (no source)" for p in present if p not in wanted]
    return problems


def main() -> int:
    if "--check" in sys.argv:
        problems = drifted()
        for problem in problems:
            print(f"chart copy out of date: {problem} (run `make chart-files`)")
        return 1 if problems else 0
    for folder in ("rules", "dashboards"):
        for stale in (FILES / folder).glob("*"):
            stale.unlink()
    for path, text in expected().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"wrote {len(expected())} files into {FILES.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
