"""Every setting the service reads is named in docs/service.md (its table, or prose)."""

from __future__ import annotations

from pathlib import Path

from service.config import Settings

ROOT = Path(__file__).resolve().parents[2]
PREFIX = str(Settings.model_config.get("env_prefix", ""))


def undocumented(docs: str) -> list[str]:
    """The environment names of settings that `docs` never names in backticks."""
    names = [f"{PREFIX}{field}".upper() for field in Settings.model_fields]
    return [name for name in names if f"`{name}`" not in docs]


def test_every_setting_is_named_in_the_service_docs() -> None:
    missing = undocumented((ROOT / "docs" / "service.md").read_text())
    assert not missing, f"settings docs/service.md never names: {missing}"


def test_the_check_sees_a_setting_the_docs_drop() -> None:
    docs = (ROOT / "docs" / "service.md").read_text().replace("`FAULTLINE_MODEL_NAME`", "")
    assert undocumented(docs) == ["FAULTLINE_MODEL_NAME"]
