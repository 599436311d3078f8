"""What the fitted model does with each column of X_train: reads it as words, reads it, or never reads it.

Found from the model's first step when it is a fitted ColumnTransformer, the one way scikit-learn pipelines
pick columns by name: a column no transformer selects (`"drop"`, `remainder="drop"`) is never read, and
a column handed alone to a text vectorizer (`TfidfVectorizer`, `CountVectorizer`, `HashingVectorizer`,
itself or as a pipeline's first step) is read as words. A model of any other shape reads every column.
Training then proves a column unread by predicting the test rows with a placeholder in its place
(train/checks.py check_served_path): the same probabilities, or the model is refused.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer
from sklearn.pipeline import Pipeline

# A TfidfVectorizer is a CountVectorizer.
TEXT_VECTORIZERS = (CountVectorizer, HashingVectorizer)


@dataclass(frozen=True)
class ColumnUse:
    """The columns the model reads as words, and those it never reads."""

    words: frozenset[str] = frozenset()
    unread: frozenset[str] = frozenset()


def column_use(model: Any, columns: Sequence[str], declared_unused: Collection[str] = ()) -> ColumnUse:
    """How `model` uses each of `columns` (X_train's, in order); `declared_unused` are the notebook's own."""
    found = _from_column_transformer(_first_step(model), list(columns))
    return ColumnUse(found.words - set(declared_unused), found.unread | set(declared_unused))


def _first_step(model: Any) -> Any:
    """The estimator that receives the raw frame: a pipeline's first step, nested pipelines unwrapped."""
    while isinstance(model, Pipeline):
        model = model.steps[0][1]
    return model


def _from_column_transformer(step: Any, columns: list[str]) -> ColumnUse:
    """The use a fitted ColumnTransformer makes of `columns`; nothing is known of any other step."""
    if not isinstance(step, ColumnTransformer) or not hasattr(step, "transformers_"):
        return ColumnUse()
    # scikit-learn's own map of each fitted transformer (and "remainder") to the input columns it took.
    picked = getattr(step, "_transformer_to_input_indices", None)
    if picked is None or list(getattr(step, "feature_names_in_", [])) != columns:
        return ColumnUse()
    read: set[str] = set()
    words: set[str] = set()
    for name, transformer, selection in step.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        taken = {columns[index] for index in picked.get(name, [])}
        read |= taken
        # A vectorizer takes one column as a 1-D array of texts: the selection is one name (or position), no list.
        if _is_text_vectorizer(transformer) and isinstance(selection, str | int):
            words |= taken
    return ColumnUse(frozenset(words), frozenset(set(columns) - read))


def _is_text_vectorizer(transformer: Any) -> bool:
    """A text vectorizer, or a pipeline that starts with one."""
    return isinstance(_first_step(transformer), TEXT_VECTORIZERS)
