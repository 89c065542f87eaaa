"""Bundles load only when complete, untampered, for this schema and with trusted types only."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from skops import io as skops_io

from model import bundle as B
from model import features as F


@pytest.fixture
def copy(bundle_path: Path, tmp_path: Path) -> Path:
    target = tmp_path / bundle_path.name
    shutil.copytree(bundle_path, target)
    return target


def _rewrite_manifest(path: Path) -> None:
    """What an attacker (or a careless edit) would do: make the manifest match again."""
    files = {p.name: B.sha256_file(p) for p in path.iterdir() if p.name != B.MANIFEST_FILE}
    (path / B.MANIFEST_FILE).write_text(json.dumps({"algorithm": "sha256", "files": files}))


def test_good_bundle_loads_and_predicts(bundle_path: Path) -> None:
    loaded = B.load_bundle(bundle_path)
    assert loaded.version == bundle_path.name
    assert 0 < loaded.threshold < 1
    assert loaded.metadata["schema_hash"] == F.SCHEMA_HASH
    assert len(loaded.bundle_hash) == 64
    assert set(loaded.reference["numeric"]) == set(F.NUMERIC_NAMES)


def test_one_flipped_byte_is_refused(copy: Path) -> None:
    model = copy / B.MODEL_FILE
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(B.BundleIntegrityError, match=r"model.skops was modified"):
        B.load_bundle(copy)


@pytest.mark.parametrize(
    "name", [B.MODEL_FILE, B.METADATA_FILE, B.REFERENCE_FILE, B.MANIFEST_FILE, B.MODEL_CARD_FILE]
)
def test_a_missing_file_is_refused(copy: Path, name: str) -> None:
    (copy / name).unlink()
    with pytest.raises(B.BundleIntegrityError, match=r"incomplete|differ from its manifest"):
        B.load_bundle(copy)


def test_an_extra_file_is_refused(copy: Path) -> None:
    (copy / "surprise.py").write_text("print('hi')")
    with pytest.raises(B.BundleIntegrityError, match=r"unlisted \['surprise.py'\]"):
        B.load_bundle(copy)


def test_another_schema_is_refused(copy: Path) -> None:
    meta = json.loads((copy / B.METADATA_FILE).read_text())
    meta["schema_hash"] = "f" * 64
    (copy / B.METADATA_FILE).write_text(json.dumps(meta))
    _rewrite_manifest(copy)
    with pytest.raises(B.BundleIncompatibleError, match="feature schema"):
        B.load_bundle(copy)


def test_another_sklearn_minor_is_refused(copy: Path) -> None:
    meta = json.loads((copy / B.METADATA_FILE).read_text())
    meta["sklearn_version"] = "0.24.2"
    (copy / B.METADATA_FILE).write_text(json.dumps(meta))
    _rewrite_manifest(copy)
    with pytest.raises(B.BundleIncompatibleError, match=r"scikit-learn 0\.24\.2"):
        B.load_bundle(copy)


def test_an_untrusted_type_is_refused_even_with_a_valid_manifest(copy: Path) -> None:
    malicious = make_pipeline(FunctionTransformer(func=os.system))
    (copy / B.MODEL_FILE).write_bytes(skops_io.dumps(malicious))
    _rewrite_manifest(copy)
    with pytest.raises(B.BundleIncompatibleError, match=r"untrusted types: \[.*system"):
        B.load_bundle(copy)


def test_a_rewritten_serving_form_is_refused_by_the_pin(copy: Path, bundle_path: Path) -> None:
    pin = B.load_bundle(bundle_path).bundle_hash
    assert B.load_bundle(copy, pinned_hash=pin).bundle_hash == pin  # an identical copy is fine
    spec = json.loads((copy / B.SERVING_FILE).read_text())
    spec["numeric"]["scale"][0] *= 2  # a quietly different model...
    (copy / B.SERVING_FILE).write_text(json.dumps(spec))
    _rewrite_manifest(copy)  # ...with a manifest that matches it again
    assert B.load_bundle(copy).bundle_hash != pin  # the manifest check alone cannot tell
    with pytest.raises(B.BundleIntegrityError, match="pins"):
        B.load_bundle(copy, pinned_hash=pin)


def test_writing_an_unloadable_pipeline_is_refused(tmp_path: Path) -> None:
    with pytest.raises(B.BundleIncompatibleError, match="would refuse"):
        B.write_bundle(
            tmp_path, "v1", make_pipeline(FunctionTransformer(func=os.getcwd)), {}, {}, ""
        )
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_write_leaves_nothing(
    tmp_path: Path, bundle_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = B.load_bundle(bundle_path)
    calls = {"n": 0}
    real = B._write_synced

    def failing(path: Path, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        real(path, data)

    monkeypatch.setattr(B, "_write_synced", failing)
    with pytest.raises(OSError, match="disk full"):
        B.write_bundle(tmp_path, "v2", loaded.pipeline, loaded.metadata, loaded.reference, "")
    assert list(tmp_path.iterdir()) == []
    assert B.newest_bundle(tmp_path) is None


def test_missing_bundle_and_resolution(tmp_path: Path, bundle_path: Path) -> None:
    with pytest.raises(B.BundleNotFoundError):
        B.load_bundle(tmp_path / "nope")
    with pytest.raises(B.BundleNotFoundError, match="make train"):
        B.resolve_bundle(tmp_path)
    assert B.resolve_bundle(bundle_path.parent) == bundle_path
    assert B.resolve_bundle(bundle_path) == bundle_path
