"""File names inside a stored model, shared by the writer (train/) and the reader (serving/)."""

SKLEARN_FILE = "model.joblib"
ONNX_FILE = "model.onnx"
EXECUTED_NOTEBOOK_FILE = "notebook.executed.ipynb"
# The model card as JSON: BentoML's metadata cannot hold the card's nulls (blanks, undefined metrics).
CARD_FILE = "card.json"
