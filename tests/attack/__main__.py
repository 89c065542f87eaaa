"""`make attack`: replay every attack of issue 12 against real server processes.

    python -m tests.attack [--model-dir artifacts/models] [--seconds 5] [--work results/attack]

Exit code 0 when every attack meets its goal, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from model.bundle import resolve_bundle
from tests.attack.attacks import run_all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("artifacts/models"))
    parser.add_argument("--seconds", type=float, default=5.0, help="Length of each load attack.")
    parser.add_argument("--work", type=Path, default=Path("results/attack"), help="Logs go here.")
    args = parser.parse_args()
    started = time.monotonic()
    results = run_all(resolve_bundle(args.model_dir), args.work, args.seconds)
    failed = [r.name for r in results if not r.ok]
    print(
        f"{len(results) - len(failed)}/{len(results)} attacks met their goals "
        f"in {time.monotonic() - started:.0f} s" + (f"; failed: {failed}" if failed else "")
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
