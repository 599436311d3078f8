"""The baseline users know: Flask + gunicorn with the forest loaded from a pickle. For comparison only.

Run: MODEL_PATH=.../model.joblib gunicorn -w 2 benchmarks.baseline_flask:app
"""

from __future__ import annotations

import os

import joblib
import pandas as pd
from flask import Flask, jsonify, request

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

app = Flask(__name__)
# The benchmark points this at the model file its own training run wrote.
model = joblib.load(os.environ["MODEL_PATH"])


@app.post("/prediction")
def prediction():  # type: ignore[no-untyped-def]
    """Predict one flower, the way a typical notebook-to-Flask port does."""
    row = request.get_json()
    probabilities = model.predict_proba(pd.DataFrame([row], columns=FEATURES))[0]
    classes = [str(c) for c in model.classes_]
    best = int(probabilities.argmax())
    return jsonify(
        {
            "class": classes[best],
            "probability": float(probabilities[best]),
            "probabilities": dict(zip(classes, map(float, probabilities), strict=True)),
            "model": "flask-pickle",
        }
    )
