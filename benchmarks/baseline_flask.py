"""The baseline users know: Flask + gunicorn with the model loaded from a pickle. For comparison only.

Run: MODEL_PATH=.../model.joblib gunicorn -w 2 benchmarks.baseline_flask:app
Works for any of the project's models: the JSON row becomes a one-row DataFrame, as a notebook-to-Flask
port of a scikit-learn Pipeline does.
"""

from __future__ import annotations

import os

import joblib
import pandas as pd
from flask import Flask, jsonify, request

app = Flask(__name__)
# The benchmark points this at the model file its own training run wrote.
model = joblib.load(os.environ["MODEL_PATH"])
classes = [str(c) for c in model.classes_]


@app.post("/prediction")
def prediction():  # type: ignore[no-untyped-def]
    """Predict one row, the way a typical notebook-to-Flask port does."""
    probabilities = model.predict_proba(pd.DataFrame([request.get_json()]))[0]
    best = int(probabilities.argmax())
    return jsonify(
        {
            "class": classes[best],
            "probability": float(probabilities[best]),
            "probabilities": dict(zip(classes, map(float, probabilities), strict=True)),
            "model": "flask-pickle",
        }
    )
