"""The training step: run the notebook, check what it produced, describe it, store it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import bentoml
import numpy as np
import pandas as pd
import sklearn

from serving.card import ModelCard
from train.checks import check_accuracy, check_classifier, check_features
from train.compile import CompiledModel, compile_to_onnx
from train.describe import evaluate, feature_limits, feature_stats, pick_examples, reference_rows
from train.errors import ModelCheckFailed
from train.notebook import run_notebook
from train.store import save_model

logger = logging.getLogger(__name__)

DEFAULT_NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "iris.ipynb"


@dataclass(frozen=True)
class TrainOptions:
    """What to train from, what to call the result, and the bar it must pass."""

    notebook: Path = DEFAULT_NOTEBOOK
    name: str = "iris_clf"
    model_var: str = "model"
    x_train_var: str = "X_train"
    y_train_var: str = "y_train"
    x_test_var: str = "X_test"
    y_test_var: str = "y_test"
    min_accuracy: float = 0.9
    limit_factor: float = 10.0
    compile_onnx: bool = True
    output_dir: Path = Path("build")
    timeout: int = 600


def train(options: TrainOptions) -> bentoml.Tag:
    """Run the whole step and return the new model's tag; raise a TrainingError and store nothing on failure."""
    variables = [options.model_var, options.x_train_var, options.y_train_var, options.x_test_var, options.y_test_var]
    executed = run_notebook(options.notebook, variables, options.output_dir, options.timeout)
    model, X_train, y_train, X_test, y_test = (executed.objects[name] for name in variables)

    check_classifier(model)
    feature_names = check_features(X_train, X_test)
    pairs = (
        (options.x_train_var, X_train, options.y_train_var, y_train),
        (options.x_test_var, X_test, options.y_test_var, y_test),
    )
    for x_name, features, y_name, labels in pairs:
        if len(features) != len(labels):
            raise ModelCheckFailed(f"`{x_name}` has {len(features)} rows but `{y_name}` has {len(labels)}.")
    class_names = [str(c) for c in model.classes_]
    metrics = evaluate(model.predict(X_test), y_test, class_names)
    logger.info("Test accuracy %.4f on %d rows", metrics.accuracy, metrics.n_test)
    check_accuracy(metrics.accuracy, options.min_accuracy)

    compiled = (
        compile_to_onnx(model, pd.concat([X_train, X_test]))
        if options.compile_onnx
        else CompiledModel(None, "ONNX compilation turned off (--no-onnx)")
    )
    stats = feature_stats(X_train)
    card = ModelCard(
        feature_names=feature_names,
        class_names=class_names,
        metrics=metrics,
        feature_stats=stats,
        feature_limits=feature_limits(stats, options.limit_factor),
        examples=pick_examples(X_test, y_test, class_names),
        reference=reference_rows(X_train, y_train),
        estimator=f"{type(model).__module__}.{type(model).__qualname__}",
        sklearn_version=sklearn.__version__,
        runtime="onnx" if compiled.onnx_bytes is not None else "sklearn",
        runtime_note=compiled.note,
        notebook=str(options.notebook),
        notebook_sha256=executed.source_sha256,
        n_train=int(np.shape(X_train)[0]),
    )
    return save_model(options.name, model, card, executed.notebook, compiled.onnx_bytes)
