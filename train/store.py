"""Write a checked model, its card and its executed notebook into the BentoML model store atomically."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import bentoml
import nbformat
from nbformat import NotebookNode

from modelcard.card import ModelCard
from modelcard.files import CARD_FILE, EXECUTED_NOTEBOOK_FILE, GZIP_SUFFIX, ONNX_FILE, SKLEARN_FILE

logger = logging.getLogger(__name__)

# A model file is gzipped when it is at least this large and gzip leaves at most this share of it: a large
# forest's files shrink to a tenth for a little load time once at start (docs/performance.md#stored-model-files).
# Small files stay as they are: their kilobytes are not worth a step everyone who reads them must know of.
COMPRESS_FROM_BYTES = 1 << 20
COMPRESS_IF_AT_MOST = 0.8
GZIP_LEVEL = 6


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
        write_model_file(Path(stored.path), SKLEARN_FILE, model_file)
        if onnx_bytes is not None:
            write_model_file(Path(stored.path), ONNX_FILE, onnx_bytes)
        nbformat.write(notebook, stored.path_of(EXECUTED_NOTEBOOK_FILE))
    logger.info("Saved %s to the model store", stored.tag)
    return stored.tag


def write_model_file(folder: Path, name: str, data: bytes) -> Path:
    """Write one model file, gzipped (name + ".gz") where that pays: see COMPRESS_FROM_BYTES."""
    if len(data) >= COMPRESS_FROM_BYTES:
        compressed = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)  # mtime 0: the same bytes each time
        if len(compressed) <= COMPRESS_IF_AT_MOST * len(data):
            path = folder / (name + GZIP_SUFFIX)
            path.write_bytes(compressed)
            logger.info("Stored %s gzipped: %.1f MB -> %.1f MB", name, len(data) / 1e6, len(compressed) / 1e6)
            return path
    path = folder / name
    path.write_bytes(data)
    return path
