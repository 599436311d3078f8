"""Find the model the service should run, failing with one line that says how to fix it."""

from __future__ import annotations

from pathlib import Path

import bentoml
import yaml
from bentoml.exceptions import BentoMLException


class ModelNotAvailable(RuntimeError):
    """The configured model is not in the local model store."""


def pinned_tag(requested: str | None, source_dir: Path, default: str) -> str:
    """The model to serve: inside a built bento, the one it was built with unless MODEL_TAG names another.

    Inside a bento, no MODEL_TAG, 'name' or 'name:latest' all mean the version the bento was built with: a
    local bento shares the model store with later training runs, so "latest" could otherwise drift to a
    model the bento was never built or tested with. Outside a bento, no MODEL_TAG means `default`.
    """
    built_with = _bento_models(source_dir)
    if requested is None:
        return built_with[0] if len(built_with) == 1 else default
    tag = bentoml.Tag.from_taglike(requested)
    if tag.version not in (None, "latest"):
        return requested
    for model in built_with:
        if bentoml.Tag.from_taglike(model).name == tag.name:
            return model
    return requested


def _bento_models(source_dir: Path) -> list[str]:
    """The model tags a built bento's bento.yaml lists; none outside a bento."""
    bento_yaml = source_dir.parent / "bento.yaml"
    if not bento_yaml.is_file():
        return []
    info = yaml.safe_load(bento_yaml.read_text()) or {}
    return [str(model["tag"]) for service in info.get("services") or [] for model in service.get("models") or []]


def require_stored_model(model_ref: bentoml.models.BentoModel) -> bentoml.Model:
    """The stored model behind `model_ref`, or ModelNotAvailable with the fix in its message."""
    try:
        stored = model_ref.stored
    except BentoMLException as error:
        raise ModelNotAvailable(f"Model store could not be read for {model_ref.tag}: {error}") from error
    if stored is None:
        raise ModelNotAvailable(
            f"Model {model_ref.tag} is not in the BentoML model store. "
            "Train one with `python -m train`, or point MODEL_TAG at an existing tag (see `bentoml models list`)."
        )
    return stored
