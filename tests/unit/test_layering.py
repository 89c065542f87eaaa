"""`training` never imports the service or web frameworks; `service` imports only the contract."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_TRAINING = ("service", "fastapi", "starlette", "uvicorn")
ALLOWED_FROM_TRAINING = {"training", "training.features", "training.bundle", "training.serving"}


def _is_module(name: str) -> bool:
    """Whether a dotted name is a module or package of this project (not an attribute)."""
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _imports(path: Path, package: str = "") -> set[str]:
    """Every module a file imports, in any form: `import a.b`, `import a.b as c`,
    `from a import b` (a.b when b is a module, else a), `from a.b import c`, relative imports
    (resolved against `package`, by default the file's own)."""
    package = package or ".".join(path.relative_to(ROOT).parent.parts)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the file's own package
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*parts, node.module] if node.module else parts)
            else:
                module = node.module or ""
            for alias in node.names:
                child = f"{module}.{alias.name}"
                found.add(child if _is_module(child) else module)
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


def _training_modules_outside_the_contract(path: Path, package: str = "") -> set[str]:
    """Modules of `training` a file imports beyond the contract."""
    return {
        m
        for m in _imports(path, package)
        if m.split(".")[0] == "training" and m not in ALLOWED_FROM_TRAINING
    }


def test_service_imports_only_the_contract_from_training() -> None:
    for path in (ROOT / "service").rglob("*.py"):
        assert not _training_modules_outside_the_contract(path), path.name


@pytest.mark.parametrize(
    "line",
    [
        "import training.train",
        "import training.train as t",
        "from training import train",
        "from training import features, train",
        "from training.train import TrainConfig",
        "from training.pipeline import build_pipeline",
    ],
)
def test_the_layering_check_sees_every_import_form(line: str, tmp_path: Path) -> None:
    """A planted import of a training-only module is caught whatever its form (the check
    used to accept `import training.train`: it compared only the parent package)."""
    planted = tmp_path / "planted.py"
    planted.write_text(line + "\n")
    assert _training_modules_outside_the_contract(planted, "service")


def test_the_contract_itself_passes_and_relative_imports_resolve(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text(
        "from training import features\nfrom training.bundle import load_bundle\n"
        "from . import errors\nfrom .errors import ServiceError\n"
    )
    assert _training_modules_outside_the_contract(planted, "service") == set()
    assert {"service.errors", "training.features", "training.bundle"} <= _imports(
        planted, "service"
    )
