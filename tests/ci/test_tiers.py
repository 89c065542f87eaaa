"""The fast tier skips whole modules by their `pytestmark` without importing them
(tests/conftest.py): that shortcut must select exactly what pytest's -m would."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tests.conftest import deselects_all, module_markers


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("pytestmark = pytest.mark.slow\n", {"slow"}),
        (
            "pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.skipif(True, "
            "reason='x')]\n",
            {"slow", "docker"},
        ),
        ("import pytest\n\ndef test_x():\n    pass\n", set()),
        ("def helper():\n    pytestmark = pytest.mark.slow\n", set()),  # not module level
    ],
)
def test_module_markers_are_read_from_the_source(
    tmp_path: Path, source: str, expected: set[str]
) -> None:
    path = tmp_path / "test_example.py"
    path.write_text(source)
    assert module_markers(path) == expected


@pytest.mark.parametrize(
    ("expression", "markers", "skipped"),
    [
        ("not slow and not k8s and not prometheus", {"slow"}, True),
        ("not slow and not k8s and not prometheus", {"k8s"}, True),
        ("not slow", {"prometheus"}, False),  # its tests are not slow
        # a test of a prometheus module may add `slow`: the module must be collected
        ("slow or docker", {"prometheus"}, False),
        ("slow and docker", {"slow"}, False),  # a test may add docker
        ("not prometheus", {"prometheus", "slow"}, True),
        ("k8s", {"slow"}, False),
    ],
)
def test_a_module_is_skipped_only_when_no_test_of_it_could_be_selected(
    expression: str, markers: set[str], skipped: bool
) -> None:
    assert deselects_all(expression, markers) is skipped


@pytest.mark.slow  # imports every test module (the full run has them loaded already)
def test_the_markers_read_from_source_are_the_ones_pytest_applies() -> None:
    """For every test module: what the shortcut reads equals the module's real marks."""
    paths = sorted(Path(__file__).parents[1].rglob("test_*.py"))
    assert len(paths) > 40
    for path in paths:
        relative = path.relative_to(Path(__file__).parents[2]).with_suffix("")
        module = importlib.import_module(".".join(relative.parts))
        marks = getattr(module, "pytestmark", [])
        marks = marks if isinstance(marks, list) else [marks]
        selecting = {mark.name for mark in marks if not mark.args and not mark.kwargs}
        assert module_markers(path) == selecting, module.__name__
