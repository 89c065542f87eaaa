"""`training` never imports the service or web frameworks; `service` imports only the contract."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_TRAINING = ("service", "fastapi", "starlette", "uvicorn")
ALLOWED_FROM_TRAINING = {"training", "training.features", "training.bundle", "training.serving"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_training_sources_do_not_import_service_or_web() -> None:
    for path in (ROOT / "training").rglob("*.py"):
        bad = {m for m in _imports(path) if m.split(".")[0] in FORBIDDEN_IN_TRAINING}
        assert not bad, f"{path.name} imports {bad}"


def _loaded_by(imports: str, forbidden: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """Import `imports` in a fresh interpreter; fails listing any `forbidden` package loaded."""
    code = (
        f"import sys, {imports}; bad = [m for m in sys.modules if m.split('.')[0] in "
        f"{forbidden!r}]; print(bad); sys.exit(1 if bad else 0)"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_importing_training_loads_no_web_framework() -> None:
    result = _loaded_by(
        "training.train, training.bundle, training.__main__",
        ("fastapi", "starlette", "service", "uvicorn"),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_service_starts_without_scikit_learn() -> None:
    result = _loaded_by(
        "service.main, service.cli", ("sklearn", "scipy", "pandas", "skops", "mlflow", "matplotlib")
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_service_imports_only_the_contract_from_training() -> None:
    service = ROOT / "service"
    for path in service.rglob("*.py"):
        used = {m for m in _imports(path) if m.split(".")[0] == "training"}
        modules = {
            m
            for m in used
            if m in ALLOWED_FROM_TRAINING or m.rsplit(".", 1)[0] in ALLOWED_FROM_TRAINING
        }
        assert used == modules, f"{path.name} imports {used - modules}"
