"""A hyper-parameter search left as the model (`GridSearchCV(...).fit(...)`): serve what it found, and say so.

The search itself is a wrapper: its `best_estimator_`, refitted on the whole training split (`refit=True`, the
default), is what predicts. The service runs that estimator (compiled to ONNX where it converts, as any other),
and the card records the search: its class, best parameters, cross-validated score and candidates.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from modelcard.card import SearchSummary
from train.errors import ModelCheckFailed


def is_search(model: Any) -> bool:
    """A fitted scikit-learn search: GridSearchCV, RandomizedSearchCV, the halving ones, or alike."""
    return hasattr(model, "cv_results_") and hasattr(model, "best_params_")


def best_of_search(model: Any, name: str) -> tuple[Any, SearchSummary | None]:
    """(the estimator to serve, what the search found); a model that is no search comes back as it is."""
    unfitted_search = hasattr(model, "param_grid") or hasattr(model, "param_distributions")
    if not (is_search(model) or unfitted_search):
        return model, None
    kind = type(model).__name__
    if not is_search(model):
        raise ModelCheckFailed(f"`{name}` is a {kind} that was never fitted: call {name}.fit(X_train, y_train).")
    best = getattr(model, "best_estimator_", None)
    if best is None:
        raise ModelCheckFailed(
            f"`{name}` is a {kind} with refit=False, so it kept no fitted model: leave refit=True (the default), "
            f"or fit the best candidate yourself ({name}.best_params_) and leave that as `{name}`."
        )
    scoring = model.scoring if isinstance(model.scoring, str) else None
    score = getattr(model, "best_score_", None)
    summary = SearchSummary(
        search=f"{type(model).__module__}.{type(model).__qualname__}",
        best_params={key: _json_value(value) for key, value in model.best_params_.items()},
        best_score=float(score) if isinstance(score, int | float | np.floating) and np.isfinite(score) else None,
        scoring=scoring,
        candidates=len(model.cv_results_["params"]),
    )
    return best, summary


def _json_value(value: Any) -> Any:
    """A parameter as JSON: numbers, text, booleans and lists as they are, anything else (an estimator) as text."""
    if isinstance(value, np.generic):
        value = value.item()
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value
