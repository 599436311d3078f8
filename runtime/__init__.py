"""The model at run time: the feature table every request becomes, the ONNX and scikit-learn runtimes, the predictor.

Shared by everything that runs a model (`serving/`, `ui/`, `monitoring/`, and `train/`'s parity gate); it
reads only the card (`modelcard/`).
"""

# The model served, and whose prediction log is read, when no MODEL_TAG says otherwise: the first example's.
DEFAULT_MODEL_TAG = "iris_clf:latest"
