"""The layers: `model` (what training writes and serving reads) imports neither `training` nor
`service`; `training` and `service` both import `model` and never each other; `explainer` (the
explainer process) imports `model` and reuses `service`'s HTTP layer (validation, errors,
middleware), `service` never imports it and `training` only its library part
(`explainer.attributions`, for the attribution reports), which imports neither `service` nor a web
framework; no import circle anywhere in the project's packages."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("model", "training", "service", "explainer")
WEB = ("fastapi", "starlette", "uvicorn")
# what each package may not import (besides itself and model)
FORBIDDEN = {
    "model": ("training", "service", "explainer", *WEB),
    "training": ("service", "explainer", *WEB),
    "service": ("training", "explainer"),
    "explainer": ("training",),
}
# what training imports of the explainer: through it, training must not reach service or the web
LIBRARY = {"explainer/attributions.py": ("training", "service", *WEB)}
# modules of a forbidden package a package may import all the same
ALLOWED = {"training": ("explainer.attributions",)}


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


def _crossings(path: Path, package: str = "") -> set[str]:
    """Modules a file imports that its package may not import."""
    package = package or path.relative_to(ROOT).parts[0]
    return {
        m
        for m in _imports(path, package)
        if m.split(".")[0] in FORBIDDEN[package] and m not in ALLOWED.get(package, ())
    }


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_what_its_layer_may(package: str) -> None:
    for path in (ROOT / package).rglob("*.py"):
        assert not _crossings(path), f"{path.relative_to(ROOT)} imports {_crossings(path)}"


def test_the_explainer_library_training_imports_stays_off_service_and_the_web() -> None:
    for name, forbidden in LIBRARY.items():
        path = ROOT / name
        crossings = {m for m in _imports(path, "explainer") if m.split(".")[0] in forbidden}
        assert not crossings, f"{name} imports {crossings}"


def test_no_import_circle_between_project_modules() -> None:
    """training/serving.py and training/tree_onnx.py imported each other before model/."""
    graph = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            name = name.removesuffix(".__init__")
            graph[name] = {m for m in _imports(path) if m.split(".")[0] in PACKAGES} - {name}
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> None:
        if node in trail:
            raise AssertionError(" -> ".join([*trail[trail.index(node) :], node]))
        if node in done or node not in graph:
            return
        for child in sorted(graph[node]):
            # importing a package's submodule runs the package's __init__: not a circle
            if not node.startswith(child + "."):
                visit(child, [*trail, node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])


def _loaded_by(imports: str, forbidden: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """Import `imports` in a fresh interpreter; fails listing any `forbidden` package loaded."""
    code = (
        f"import sys, {imports}; bad = [m for m in sys.modules if m.split('.')[0] in "
        f"{forbidden!r}]; print(bad); sys.exit(1 if bad else 0)"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


@pytest.mark.slow  # a fresh interpreter importing the package: seconds
def test_importing_training_loads_no_web_framework() -> None:
    result = _loaded_by(
        "training.train, training.export, training.__main__",
        ("fastapi", "starlette", "service", "uvicorn"),
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow  # a fresh interpreter importing the package: seconds
def test_service_starts_without_scikit_learn() -> None:
    result = _loaded_by(
        "service.main, service.cli",
        ("sklearn", "scipy", "pandas", "skops", "mlflow", "matplotlib", "shap", "explainer"),
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("line", "package"),
    [
        ("import training.train", "service"),
        ("import training.train as t", "service"),
        ("from training import train", "service"),
        ("from training import features, train", "service"),
        ("from training.train import TrainConfig", "service"),
        ("from training.pipeline import build_pipeline", "service"),
        ("import service.main", "training"),
        ("from service import routes", "training"),
        ("from training.export import export_serving", "model"),
        ("from fastapi import FastAPI", "model"),
        ("from explainer.attributions import Attributor", "service"),
        ("import explainer", "service"),
        ("from explainer import attributions", "model"),
        ("import explainer.metrics", "training"),
        ("from explainer import config", "training"),
        ("from explainer import Attributor", "training"),
        ("from training import train", "explainer"),
    ],
)
def test_the_layering_check_sees_every_import_form(line: str, package: str, tmp_path: Path) -> None:
    """A planted import across the layers is caught whatever its form (the check used to
    accept `import training.train`: it compared only the parent package)."""
    planted = tmp_path / "planted.py"
    planted.write_text(line + "\n")
    assert _crossings(planted, package)


def test_allowed_imports_pass_and_relative_imports_resolve(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text(
        "from model import features\nfrom model.bundle import load_bundle\n"
        "from . import errors\nfrom .errors import ServiceError\n"
    )
    assert _crossings(planted, "service") == set()
    assert {"service.errors", "model.features", "model.bundle"} <= _imports(planted, "service")
    planted.write_text(
        "from explainer.attributions import Attributor\nimport explainer.attributions as a\n"
        "from explainer import attributions\nfrom model import features\n"
    )
    assert _crossings(planted, "training") == set()
    assert _crossings(planted, "explainer") == set()
