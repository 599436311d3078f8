"""File names inside a stored model, shared by the writer (train/) and the reader (serving/)."""

SKLEARN_FILE = "model.joblib"
ONNX_FILE = "model.onnx"
EXECUTED_NOTEBOOK_FILE = "notebook.executed.ipynb"
