"""Every setting the service and the explainer read is named in docs/service.md (its tables,
or prose)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings

from explainer.config import ExplainerSettings
from service.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def undocumented(docs: str, settings: type[BaseSettings] = Settings) -> list[str]:
    """The environment names of settings that `docs` never names in backticks."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    names = [f"{prefix}{field}".upper() for field in settings.model_fields]
    return [name for name in names if f"`{name}`" not in docs]


def test_every_setting_is_named_in_the_service_docs() -> None:
    docs = (ROOT / "docs" / "service.md").read_text()
    missing = undocumented(docs) + undocumented(docs, ExplainerSettings)
    assert not missing, f"settings docs/service.md never names: {missing}"


def test_the_check_sees_a_setting_the_docs_drop() -> None:
    docs = (ROOT / "docs" / "service.md").read_text().replace("`FAULTLINE_MODEL_NAME`", "")
    assert undocumented(docs) == ["FAULTLINE_MODEL_NAME"]
    docs = docs.replace("`FAULTLINE_EXPLAINER_WINDOW`", "")
    assert undocumented(docs, ExplainerSettings) == ["FAULTLINE_EXPLAINER_WINDOW"]
