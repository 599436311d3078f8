"""Write a checked model, its card and its executed notebook into the BentoML model store atomically."""

from __future__ import annotations

import logging
from pathlib import Path

import bentoml
import nbformat
from nbformat import NotebookNode

from modelcard.card import ModelCard
from modelcard.files import CARD_FILE, EXECUTED_NOTEBOOK_FILE, ONNX_FILE, SKLEARN_FILE

logger = logging.getLogger(__name__)


def save_model(
    name: str, model_file: bytes, card: ModelCard, notebook: NotebookNode, onnx_bytes: bytes | None
) -> bentoml.Tag:
    """Save everything into one new model version; nothing reaches the store if any write fails.

    `model_file` is the fitted model as a pickle (train/notebook_code.py's `serialize`), checked to load elsewhere.
    """
    labels = {"source": "notebook", "notebook": Path(card.lineage.notebook).name, "runtime": card.runtime}
    # bentoml.models.create builds the model in a temp dir and moves it into the store only on a clean exit.
    with bentoml.models.create(name, labels=labels, metadata=card.summary()) as stored:
        Path(stored.path_of(CARD_FILE)).write_text(card.to_json())
        Path(stored.path_of(SKLEARN_FILE)).write_bytes(model_file)
        if onnx_bytes is not None:
            Path(stored.path_of(ONNX_FILE)).write_bytes(onnx_bytes)
        nbformat.write(notebook, stored.path_of(EXECUTED_NOTEBOOK_FILE))
    logger.info("Saved %s to the model store", stored.tag)
    return stored.tag
