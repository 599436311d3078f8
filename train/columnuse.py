"""What the fitted model does with each column of X_train: reads it as words, reads it, or never reads it.

Found from the fitted ColumnTransformer the raw frame goes to first, the one way scikit-learn pipelines pick
columns by name (also inside a CalibratedClassifierCV's folds and a voting or stacking ensemble's members):
a column no transformer selects (`"drop"`, `remainder="drop"`) is never read, and a column handed alone to
a text vectorizer (`TfidfVectorizer`, `CountVectorizer`, `HashingVectorizer`, itself or in a pipeline, after
an imputer say) is read as words. A model of any other shape reads every column.
Training then proves a column unread by predicting the test rows with a placeholder in its place
(train/checks.py check_served_path): the same probabilities, or the model is refused.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer
from sklearn.pipeline import Pipeline

# A TfidfVectorizer is a CountVectorizer.
TEXT_VECTORIZERS = (CountVectorizer, HashingVectorizer)


@dataclass(frozen=True)
class ColumnUse:
    """The columns the model reads as words, and those it never reads."""

    words: frozenset[str] = frozenset()
    unread: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Reads:
    """What one part of the model reads of the raw frame: the columns, and those of them read as words only."""

    read: frozenset[str]
    words: frozenset[str]


def column_use(model: Any, columns: Sequence[str], declared_unused: Collection[str] = ()) -> ColumnUse:
    """How `model` uses each of `columns` (X_train's, in order); `declared_unused` are the notebook's own."""
    found = _reads(model, list(columns))
    if found is None:  # nothing known: every column is read, none as words for sure
        return ColumnUse(frozenset(), frozenset(declared_unused))
    unread = (set(columns) - found.read) | set(declared_unused)
    return ColumnUse(frozenset(found.words - unread), frozenset(unread))


def _reads(model: Any, columns: list[str]) -> _Reads | None:
    """What `model` reads of the raw frame; None when it cannot be known (the part sees every column)."""
    if isinstance(model, Pipeline):
        return _reads(model.steps[0][1], columns)
    if isinstance(model, ColumnTransformer):
        return _from_column_transformer(model, columns)
    members = _members(model)
    if not members:
        return None
    found = [_reads(member, columns) for member in members]
    if any(reads is None for reads in found):
        return None
    read = frozenset().union(*(reads.read for reads in found if reads is not None))
    # Words only where no member reads the column otherwise.
    other = frozenset().union(*(reads.read - reads.words for reads in found if reads is not None))
    return _Reads(read, frozenset().union(*(reads.words for reads in found if reads is not None)) - other)


def _members(model: Any) -> list[Any]:
    """The fitted models a wrapper hands the raw frame to: a calibration's folds, an ensemble's members."""
    if isinstance(model, CalibratedClassifierCV):
        return [fold.estimator for fold in getattr(model, "calibrated_classifiers_", [])]
    if isinstance(model, StackingClassifier) and model.passthrough:
        return []  # its final estimator sees the raw columns too
    if isinstance(model, VotingClassifier | StackingClassifier):
        return list(getattr(model, "estimators_", []))
    return []


def _from_column_transformer(step: ColumnTransformer, columns: list[str]) -> _Reads | None:
    """What a fitted ColumnTransformer reads of `columns`."""
    # scikit-learn's own map of each fitted transformer (and "remainder") to the input columns it took.
    picked = getattr(step, "_transformer_to_input_indices", None)
    if not hasattr(step, "transformers_") or picked is None:
        return None
    if list(getattr(step, "feature_names_in_", [])) != columns:
        return None
    read: set[str] = set()
    words: set[str] = set()
    other: set[str] = set()
    for name, transformer, _selection in step.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        taken = {columns[index] for index in picked.get(name, [])}
        read |= taken
        # A vectorizer reads one column's texts (given alone, or flattened after an imputer).
        if len(taken) == 1 and _has_text_vectorizer(transformer):
            words |= taken
        else:
            other |= taken
    return _Reads(frozenset(read), frozenset(words - other))


def _has_text_vectorizer(transformer: Any) -> bool:
    """A text vectorizer, or a pipeline with one among its steps."""
    if isinstance(transformer, Pipeline):
        return any(_has_text_vectorizer(step) for _, step in transformer.steps)
    return isinstance(transformer, TEXT_VECTORIZERS)
