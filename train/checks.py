"""Quality gates a model must pass before it may enter the model store."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from train.errors import ModelCheckFailed


def check_classifier(model: Any) -> None:
    """Refuse anything that is not a fitted scikit-learn classifier with predict_proba."""
    if not is_classifier(model):
        raise ModelCheckFailed(f"`model` is a {type(model).__name__}, not a scikit-learn classifier.")
    if not hasattr(model, "predict_proba"):
        raise ModelCheckFailed(f"{type(model).__name__} has no predict_proba, so it cannot report probabilities.")
    try:
        check_is_fitted(model)
    except NotFittedError as error:
        raise ModelCheckFailed(f"`model` is not fitted: call model.fit(...) in the notebook. ({error})") from error


def check_features(X_train: Any, X_test: Any) -> list[str]:
    """Return the feature names, refusing data that is not a numeric, finite DataFrame with named columns."""
    for name, frame in (("X_train", X_train), ("X_test", X_test)):
        if not isinstance(frame, pd.DataFrame):
            raise ModelCheckFailed(
                f"`{name}` is a {type(frame).__name__}; it must be a pandas DataFrame so the features have names."
            )
        non_numeric = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
        if non_numeric:
            raise ModelCheckFailed(f"`{name}` has non-numeric columns: {', '.join(non_numeric)}.")
        if not np.isfinite(frame.to_numpy(dtype=float)).all():
            raise ModelCheckFailed(f"`{name}` contains NaN or infinite values.")
    names = [str(c) for c in X_train.columns]
    if [str(c) for c in X_test.columns] != names:
        raise ModelCheckFailed(f"`X_test` columns {list(X_test.columns)} differ from `X_train` columns {names}.")
    return names


def check_accuracy(accuracy: float, min_accuracy: float) -> None:
    """Refuse a model whose test accuracy is below the bar."""
    if accuracy < min_accuracy:
        raise ModelCheckFailed(
            f"test accuracy {accuracy:.4f} is below the required {min_accuracy:.4f}; "
            "improve the model in the notebook or lower --min-accuracy deliberately."
        )
