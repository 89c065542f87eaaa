"""The model bundle: the training -> serving contract.

A bundle is a directory `<models_dir>/<version>/` holding
    model.skops      the fitted Pipeline (skops: loading never runs arbitrary code)
    metadata.json    version, provenance, schema and its hash, threshold, metrics, params
    reference.json   monitoring reference: feature bins/proportions and the score distribution
    model_card.md    the human-readable summary
    serving.json     the serving form (training/serving.py), plus model.onnx for trees
    MANIFEST.json    SHA-256 of every other file
It is written to a temporary sibling directory and renamed into place, so a reader never sees
a partial bundle. Loading verifies the manifest, the schema hash and the scikit-learn version,
and loads the Pipeline with an explicit list of trusted types. The service may skip loading
the Pipeline (and importing scikit-learn at all) when the bundle has a serving form.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

from model import features as F

MODEL_FILE = "model.skops"
METADATA_FILE = "metadata.json"
REFERENCE_FILE = "reference.json"
MODEL_CARD_FILE = "model_card.md"
MANIFEST_FILE = "MANIFEST.json"
SERVING_FILE = "serving.json"
REQUIRED_FILES = (MODEL_FILE, METADATA_FILE, REFERENCE_FILE, MANIFEST_FILE)

# Types the Pipeline may contain beyond what skops trusts by default. Anything else in a
# bundle (a function, an unknown class) is refused at load time.
TRUSTED_TYPES: tuple[str, ...] = (
    "model.transformers.IQRClipper",
    "model.transformers.EngineeredFeatures",
    # the same classes in bundles written before model/ existed (they import unchanged)
    "training.pipeline.IQRClipper",
    "training.pipeline.EngineeredFeatures",
    "sklearn.feature_selection._univariate_selection.f_classif",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
    "numpy.dtype",
    # probability calibration (training.train.calibrate): the fitted model/calibrator pair and
    # the sigmoid calibrator (plain fitted parameters, no callables)
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
)


# skops node loaders that call a function or a constructor by name: each such name must be
# trusted explicitly (TRUSTED_TYPES); plain containers, arrays and scikit-learn classes need not.
CALLABLE_LOADERS = frozenset(
    {"FunctionNode", "PartialNode", "MethodNode", "OperatorFuncNode", "ConstructorFromReduceNode"}
)
VALUE_MODULES = ("builtins", "numpy", "collections")
SAFE_VERSION = re.compile(r"^[A-Za-z0-9._:+-]{1,128}$")


class BundleError(Exception):
    """A bundle cannot be used; the message says why."""


class BundleNotFoundError(BundleError):
    """No bundle at the given path."""


class BundleIntegrityError(BundleError):
    """Files are missing, extra, or differ from the manifest."""


class BundleIncompatibleError(BundleError):
    """Made for another feature schema or scikit-learn version, or holds untrusted types."""


@dataclass(frozen=True)
class Bundle:
    """A verified, loaded bundle."""

    path: Path
    pipeline: Any  # None when loaded with with_pipeline=False (the serving form serves)
    metadata: dict[str, Any]
    reference: dict[str, Any]
    bundle_hash: str  # SHA-256 of the manifest: one value identifies every byte of the bundle
    serving: dict[str, Any] | None = None  # the serving form's spec, when the bundle has one

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    @property
    def threshold(self) -> float:
        return float(self.metadata["threshold"])


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, streamed."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def untrusted_types_in(pipeline: Any) -> list[str]:
    """Types in a Pipeline that loading would refuse (checked before a bundle is written)."""
    from skops import io as skops_io

    data = skops_io.dumps(pipeline)
    return sorted(set(skops_io.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))


def write_bundle(
    models_dir: Path,
    version: str,
    pipeline: Any,
    metadata: dict[str, Any],
    reference: dict[str, Any],
    model_card: str,
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Write a complete bundle atomically and return its directory."""
    from skops import io as skops_io

    untrusted = untrusted_types_in(pipeline)
    if untrusted:
        raise BundleIncompatibleError(
            f"the Pipeline contains types the service would refuse: {untrusted}; "
            "add them to model.bundle.TRUSTED_TYPES only if they are safe to load"
        )
    models_dir.mkdir(parents=True, exist_ok=True)
    final = models_dir / version
    if final.exists():
        raise FileExistsError(f"bundle {final} already exists")
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=models_dir))
    try:
        files = {
            MODEL_FILE: skops_io.dumps(pipeline),
            METADATA_FILE: _json_bytes(metadata),
            REFERENCE_FILE: _json_bytes(reference),
            MODEL_CARD_FILE: model_card.encode(),
            **(extra_files or {}),
        }
        manifest = {
            "algorithm": "sha256",
            "files": {name: sha256_bytes(data) for name, data in sorted(files.items())},
        }
        files[MANIFEST_FILE] = _json_bytes(manifest)
        for name, data in files.items():
            _write_synced(staging / name, data)
        staging.chmod(0o755)
        os.rename(staging, final)
        _fsync_dir(models_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def verify_bundle(path: Path, expected_schema_hash: str = F.SCHEMA_HASH) -> str:
    """Check completeness, hashes, schema and scikit-learn version; return the bundle hash."""
    if not path.is_dir():
        raise BundleNotFoundError(f"no model bundle at {path}")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise BundleIntegrityError(f"bundle {path} is incomplete: missing {missing}")
    manifest_bytes = (path / MANIFEST_FILE).read_bytes()
    listed = _manifest_files(path, manifest_bytes)
    present = {p.name for p in path.iterdir() if p.name != MANIFEST_FILE}
    if present != set(listed):
        raise BundleIntegrityError(
            f"bundle {path} files differ from its manifest: "
            f"unlisted {sorted(present - set(listed))}, "
            f"missing {sorted(set(listed) - present)}"
        )
    for name, expected in listed.items():
        member = path / name
        if member.is_symlink() or not member.is_file():
            raise BundleIntegrityError(f"bundle {path}: {name} is not a regular file")
        actual = sha256_file(member)
        if actual != expected:
            raise BundleIntegrityError(
                f"bundle {path}: {name} was modified (sha256 {actual[:12]}..., manifest says "
                f"{expected[:12]}...)"
            )
    metadata = _read_json(path, METADATA_FILE)
    if metadata.get("schema_hash") != expected_schema_hash:
        raise BundleIncompatibleError(
            f"bundle {path} was made for feature schema "
            f"{str(metadata.get('schema_hash'))[:12]}..., "
            f"this code uses {expected_schema_hash[:12]}..."
        )
    made_with = str(metadata.get("sklearn_version", ""))
    here = installed_version("scikit-learn")
    if _minor(made_with) != _minor(here):
        raise BundleIncompatibleError(
            f"bundle {path} was made with scikit-learn {made_with}; this environment has "
            f"{here} (major.minor must match)"
        )
    return sha256_bytes(manifest_bytes)


def load_pipeline(path: Path) -> Any:
    """Load the skops Pipeline of a verified bundle, with the explicit trusted-type list."""
    from skops import io as skops_io

    model_bytes = (path / MODEL_FILE).read_bytes()
    try:
        found = skops_io.get_untrusted_types(data=model_bytes)
    except Exception as exc:  # a corrupt file raises whatever zipfile/json/skops raise
        raise BundleIntegrityError(f"bundle {path}: {MODEL_FILE} is unreadable: {exc}") from exc
    untrusted = sorted(set(found) - set(TRUSTED_TYPES))
    if untrusted:
        raise BundleIncompatibleError(f"bundle {path} contains untrusted types: {untrusted}")
    try:
        return skops_io.loads(model_bytes, trusted=list(TRUSTED_TYPES))
    except Exception as exc:
        raise BundleIntegrityError(f"bundle {path}: {MODEL_FILE} cannot be loaded: {exc}") from exc


def check_model_types(path: Path) -> None:
    """Refuse a skops file naming types the loader would not trust, without loading it.

    Reads only the file's schema (no scikit-learn import): the fast path serves the serving
    form, but a bundle whose Pipeline carries an untrusted type is refused all the same.
    Functions and constructors called by name must be in TRUSTED_TYPES; objects must be
    scikit-learn classes or trusted; containers and arrays must come from builtins/numpy.
    """
    try:
        with zipfile.ZipFile(path / MODEL_FILE) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise BundleIntegrityError(f"bundle {path}: {MODEL_FILE} is unreadable: {exc}") from exc
    untrusted = sorted(_untrusted_nodes(schema))
    if untrusted:
        raise BundleIncompatibleError(f"bundle {path} contains untrusted types: {untrusted}")


def _untrusted_nodes(schema: Any) -> set[str]:
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        stack.extend(node.values())
        if "__module__" not in node and "__loader__" not in node:
            continue
        module, name = str(node.get("__module__")), str(node.get("__class__"))
        loader, qualified = str(node.get("__loader__")), f"{module}.{name}"
        trusted_module = module.split(".")[0] in (*VALUE_MODULES, "sklearn")
        if qualified not in TRUSTED_TYPES and (loader in CALLABLE_LOADERS or not trusted_module):
            found.add(qualified)
    return found


def load_bundle(
    path: Path,
    expected_schema_hash: str = F.SCHEMA_HASH,
    *,
    with_pipeline: bool = True,
    pinned_hash: str | None = None,
) -> Bundle:
    """Verify and load a bundle; raises a BundleError subclass with the reason.

    with_pipeline=False skips the skops Pipeline when a serving form exists (fast start).
    pinned_hash: the only bundle hash accepted. The manifest proves the files are the ones it
    lists; the pin proves the manifest is the one that was released (someone able to write the
    bundle could rewrite both).
    """
    bundle_hash = verify_bundle(path, expected_schema_hash)
    if pinned_hash is not None and bundle_hash != pinned_hash:
        raise BundleIntegrityError(
            f"bundle {path} has hash {bundle_hash[:16]}..., the deployment pins "
            f"{pinned_hash[:16]}... (FAULTLINE_BUNDLE_SHA256)"
        )
    listed = _manifest_files(path, (path / MANIFEST_FILE).read_bytes())
    serving = _read_json(path, SERVING_FILE) if SERVING_FILE in listed else None
    if serving is not None:
        _check_serving_files(path, serving, listed)
    metadata = _read_json(path, METADATA_FILE)
    _check_metadata(path, metadata)
    reference = _read_json(path, REFERENCE_FILE)
    _check_reference(path, reference)
    pipeline = load_pipeline(path) if with_pipeline or serving is None else None
    if pipeline is None:
        check_model_types(path)
    return Bundle(
        path=path,
        pipeline=pipeline,
        metadata=metadata,
        reference=reference,
        bundle_hash=bundle_hash,
        serving=serving,
    )


def _manifest_files(path: Path, manifest_bytes: bytes) -> dict[str, str]:
    """The manifest's {file name: sha256}; names must be plain files inside the bundle."""
    try:
        listed = json.loads(manifest_bytes)["files"]
        if not isinstance(listed, dict):
            raise TypeError("'files' is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleIntegrityError(f"bundle {path} has an unreadable manifest: {exc}") from exc
    for name, digest in listed.items():
        _check_member_name(path, name)
        if not isinstance(digest, str):
            raise BundleIntegrityError(f"bundle {path}: manifest entry {name!r} has no hash")
    return listed


def _check_member_name(path: Path, name: Any) -> None:
    """A file the bundle may name: a plain file name (no directory, no '..', not absolute)."""
    if (
        not isinstance(name, str)
        or name in ("", ".", "..")
        or "/" in name
        or "\\" in name
        or "\x00" in name
        or name == MANIFEST_FILE
    ):
        raise BundleIntegrityError(
            f"bundle {path} names a file outside the bundle: {str(name)[:100]!r}"
        )


def _check_serving_files(path: Path, serving: dict[str, Any], listed: dict[str, str]) -> None:
    """Every file the serving form names is a manifest-listed file of this bundle."""
    stack: list[Any] = [serving]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key == "file":
                    _check_member_name(path, value)
                    if value not in listed:
                        raise BundleIntegrityError(
                            f"bundle {path}: {SERVING_FILE} names {value!r}, not in the manifest"
                        )
                else:
                    stack.append(value)


def _read_json(path: Path, name: str) -> dict[str, Any]:
    """A bundle file that must hold a JSON object."""
    try:
        value = json.loads((path / name).read_bytes())
    except (OSError, ValueError) as exc:
        raise BundleIntegrityError(f"bundle {path}: {name} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise BundleIntegrityError(f"bundle {path}: {name} is not a JSON object")
    return value


def _check_metadata(path: Path, metadata: dict[str, Any]) -> None:
    """Fields the service relies on: a label-safe version and a threshold in [0, 1]."""
    version = metadata.get("version")
    if not isinstance(version, str) or not SAFE_VERSION.match(version):
        raise BundleIncompatibleError(
            f"bundle {path}: metadata has no usable version (1-128 of A-Z a-z 0-9 . _ : + -)"
        )
    threshold = metadata.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise BundleIncompatibleError(f"bundle {path}: metadata has no numeric threshold")
    if not 0.0 <= float(threshold) <= 1.0:
        raise BundleIncompatibleError(f"bundle {path}: threshold {threshold} is not in [0, 1]")


def _check_reference(path: Path, reference: dict[str, Any]) -> None:
    """The monitoring profile has every feature's bins and a score distribution."""

    def numbers(value: Any, where: str, length: int | None = None) -> None:
        ok = isinstance(value, list) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        )
        if not ok or (length is not None and len(value) != length):
            expected = f" of {length}" if length is not None else " of"
            raise BundleIncompatibleError(
                f"bundle {path}: {REFERENCE_FILE} {where} is not a list{expected} numbers"
            )

    try:
        for name in F.NUMERIC_NAMES:
            edges = reference["numeric"][name]["edges"]
            numbers(edges, f"numeric.{name}.edges")
            numbers(reference["numeric"][name]["proportions"], name, len(edges) + 1)
        categories = len(F.PRODUCT_TYPE.categories)
        proportions = reference["categorical"][F.PRODUCT_TYPE.name]["proportions"]
        numbers(proportions, F.PRODUCT_TYPE.name, categories)
        bounds = reference["score"]["bucket_upper_bounds"]
        numbers(bounds, "score.bucket_upper_bounds")
        numbers(reference["score"]["proportions"], "score.proportions", len(bounds))
    except (KeyError, TypeError) as exc:
        raise BundleIncompatibleError(
            f"bundle {path}: {REFERENCE_FILE} lacks {exc} (numeric bins, product type "
            "proportions and score distribution are required)"
        ) from exc


def list_bundles(models_dir: Path) -> list[Path]:
    """Bundle directories, oldest first (versions start with a UTC timestamp)."""
    if not models_dir.is_dir():
        return []
    return sorted(
        p
        for p in models_dir.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST_FILE).is_file()
    )


def newest_bundle(models_dir: Path) -> Path | None:
    """The most recent bundle in a models directory, or None."""
    bundles = list_bundles(models_dir)
    return bundles[-1] if bundles else None


def resolve_bundle(path: Path) -> Path:
    """A bundle directory itself, or the newest bundle inside a models directory."""
    if (path / MANIFEST_FILE).is_file() or (path / METADATA_FILE).is_file():
        return path
    newest = newest_bundle(path)
    if newest is None:
        raise BundleNotFoundError(f"no model bundle in {path} (run `make train`)")
    return newest


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    path.chmod(0o644)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
