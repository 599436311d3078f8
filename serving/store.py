"""Find the model the service should run, failing with one line that says how to fix it."""

from __future__ import annotations

from pathlib import Path

import bentoml
import yaml
from bentoml.exceptions import BentoMLException


class ModelNotAvailable(RuntimeError):
    """The configured model is not in the local model store."""


def pinned_tag(requested: str, source_dir: Path) -> str:
    """Inside a built bento, 'name' or 'name:latest' means the version the bento was built with.

    A local bento shares the model store with later training runs, so "latest" could otherwise
    drift to a model the bento was never built or tested with.
    """
    tag = bentoml.Tag.from_taglike(requested)
    bento_yaml = source_dir.parent / "bento.yaml"
    if tag.version not in (None, "latest") or not bento_yaml.is_file():
        return requested
    info = yaml.safe_load(bento_yaml.read_text()) or {}
    for service in info.get("services") or []:
        for model in service.get("models") or []:
            if bentoml.Tag.from_taglike(model["tag"]).name == tag.name:
                return str(model["tag"])
    return requested


def require_stored_model(model_ref: bentoml.models.BentoModel) -> bentoml.Model:
    """The stored model behind `model_ref`, or ModelNotAvailable with the fix in its message."""
    try:
        stored = model_ref.stored
    except BentoMLException as error:
        raise ModelNotAvailable(f"Model store could not be read for {model_ref.tag}: {error}") from error
    if stored is None:
        raise ModelNotAvailable(
            f"Model {model_ref.tag} is not in the BentoML model store. "
            "Train one with `python -m train`, or point IRIS_MODEL_TAG at an existing tag (see `bentoml models list`)."
        )
    return stored
