"""File names inside a stored model, shared by the writer (train/) and the reader (serving/).

Training gzips the model files that are large and shrink well (`train/store.py`): such a file is stored with
".gz" after its name, and readers find either form with `stored_file`.
"""

from pathlib import Path

SKLEARN_FILE = "model.joblib"
ONNX_FILE = "model.onnx"
EXECUTED_NOTEBOOK_FILE = "notebook.executed.ipynb"
# The model card as JSON: BentoML's metadata cannot hold the card's nulls (blanks, undefined metrics).
CARD_FILE = "card.json"
GZIP_SUFFIX = ".gz"


def stored_file(folder: Path, name: str) -> Path:
    """The path of a model file as it was stored: gzipped (name + ".gz") or as it is."""
    compressed = folder / (name + GZIP_SUFFIX)
    return compressed if compressed.is_file() else folder / name
