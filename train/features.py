"""Describe a training frame's columns as feature specs: kind, statistics, categories, bounds, blanks.

The kind comes from the pandas dtype, never from guessing at values:
- float dtypes: number; int dtypes (numpy or the nullable Int64 family): integer;
- bool, the nullable "boolean", or an object column holding only True/False: boolean;
- object, str/string (pandas 3's default text dtype) and category, holding text: category, or free text when
  the model reads it as words (train/columnuse.py) or its values are mostly distinct (an enum of training's
  values is never what a review, a name or an order number means);
- a column the model never reads: unused, whatever its dtype (it is only kept in the log).
Anything else (datetimes, timedeltas, lists, objects mixing text with numbers) is refused with the column's
name, because the service could not say what a request must send for it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from modelcard.card import FeatureKind, FeatureSpec, NumericStats, TextStats
from modelcard.text import MAX_TEXT_CHARS, SAMPLE_CHARS, SAMPLES, VOCABULARY_SIZE, unseen_words, words
from train.columnuse import ColumnUse
from train.errors import ModelCheckFailed

logger = logging.getLogger(__name__)

# Accepted values of a number reach this many training ranges beyond the smallest and largest seen.
DEFAULT_LIMIT_FACTOR = 1.0
# A category with more values than this is likely an identifier or free text, not a category (docs/training.md).
MANY_CATEGORIES = 100
# What is known of a model without a ColumnTransformer in front: it reads every column, none as words.
READS_EVERY_COLUMN = ColumnUse()
# ... and one whose values are at least this share distinct is free text (names, reviews, order numbers).
MOSTLY_DISTINCT = 0.5


def feature_kind(name: str, column: pd.Series) -> FeatureKind:
    """The kind of one training column, or ModelCheckFailed naming the column and what to do."""
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return FeatureKind.BOOLEAN
    if pd.api.types.is_integer_dtype(dtype):
        return FeatureKind.INTEGER
    if pd.api.types.is_float_dtype(dtype):
        return FeatureKind.NUMBER
    if isinstance(dtype, pd.CategoricalDtype):
        if all(isinstance(c, str) for c in dtype.categories):
            return FeatureKind.CATEGORY
        raise ModelCheckFailed(
            f"column `{name}` is a category of non-text values ({dtype.categories.dtype}); "
            "make its categories text (.astype(str).astype('category')) or numbers in the notebook."
        )
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return FeatureKind.CATEGORY  # pandas' str / string dtypes hold only text (and blanks)
    if pd.api.types.is_object_dtype(dtype):
        kinds = {type(v) for v in column.dropna()}
        if kinds <= {bool, np.bool_} and kinds:
            return FeatureKind.BOOLEAN
        if kinds <= {str}:
            return FeatureKind.CATEGORY
        shown = ", ".join(sorted(k.__name__ for k in kinds))
        problem = f"mixes value types ({shown})" if len(kinds) > 1 else f"holds {shown} values"
        raise ModelCheckFailed(
            f"column `{name}` {problem}; the service needs one kind per column, each value a number, "
            "text or true/false: convert it in the notebook."
        )
    raise ModelCheckFailed(
        f"column `{name}` has dtype {dtype}, which the service cannot take as JSON input "
        "(datetimes, durations and the like): turn it into numbers or text in the notebook "
        "(for example days since a date, or the weekday as text). A column the model never reads (one its "
        "ColumnTransformer drops) may have any dtype."
    )


def describe_features(
    X_train: pd.DataFrame,
    limit_factor: float = DEFAULT_LIMIT_FACTOR,
    notes: Mapping[str, Mapping[str, Any]] | None = None,
    use: ColumnUse = READS_EVERY_COLUMN,
    X_test: pd.DataFrame | None = None,
) -> list[FeatureSpec]:
    """One FeatureSpec per column of X_train, in its order; `notes` adds titles, descriptions and units.

    `use` says which columns the model reads as words or never reads; X_test (X_train when not given) sets the
    share of new words a free-text feature's live values are compared with.
    """
    notes = notes or {}
    held_out = X_train if X_test is None else X_test
    return [
        describe_column(str(name), column, held_out[name], limit_factor, notes.get(str(name), {}), use)
        for name, column in X_train.items()
    ]


def describe_column(
    name: str,
    column: pd.Series,
    test_column: pd.Series,
    limit_factor: float,
    note: Mapping[str, Any],
    use: ColumnUse = READS_EVERY_COLUMN,
    as_category: bool = False,
) -> FeatureSpec:
    """The spec of one training column (`as_category`: text served as its training values after all)."""
    missing = int(column.isna().sum())
    present = column.dropna()
    if name in use.unread:
        return _unused(name, column, missing, present, note)
    kind = feature_kind(name, column)
    if present.empty:
        raise ModelCheckFailed(f"column `{name}` has no values in the training data: drop it in the notebook.")
    declared_text = note.get("max_chars") is not None  # the notebook says it is free text
    if declared_text and (kind is not FeatureKind.CATEGORY or isinstance(column.dtype, pd.CategoricalDtype)):
        what = "a pandas category, a fixed set of values" if kind is FeatureKind.CATEGORY else f"a {kind.value}"
        raise ModelCheckFailed(f"`model_card` gives `{name}` a max_chars, but it is {what}, not free text.")
    if (
        kind is FeatureKind.CATEGORY
        and not as_category
        and (declared_text or _is_free_text(name, column, present, use))
    ):
        kind = FeatureKind.TEXT
    extra: dict[str, Any] = {}
    if kind in (FeatureKind.NUMBER, FeatureKind.INTEGER):
        values = present.to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            raise ModelCheckFailed(f"column `{name}` holds infinite values: replace them in the notebook.")
        extra["stats"] = numeric_stats(values)
        extra["lower"], extra["upper"] = bounds(values, kind, limit_factor)
        for side in ("lower", "upper"):  # the notebook's own range, where it gave one
            if note.get(side) is not None:
                extra[side] = float(note[side])
    elif note.get("lower") is not None or note.get("upper") is not None:
        raise ModelCheckFailed(f"`model_card` gives `{name}` a range, but it is a {kind.value}, not a number.")
    if kind is FeatureKind.CATEGORY:
        counts = present.astype(str).value_counts()
        extra["categories"] = {str(value): int(count) for value, count in counts.items()}
        if len(counts) > MANY_CATEGORIES:
            logger.warning(
                "Column `%s` has %d different values (%d%% of its rows): served as a category, a request must send "
                "one of them. If it is free text, give it a max_chars in model_card; if an identifier, drop it in "
                "the ColumnTransformer or list it in model_card['unused']",
                name,
                len(counts),
                round(100 * len(counts) / len(present)),
            )
        if isinstance(column.dtype, pd.CategoricalDtype):
            extra["dtype_categories"] = [str(c) for c in column.dtype.categories]
    elif kind is FeatureKind.TEXT:
        extra["text"] = text_stats(present.astype(str), test_column.dropna().astype(str), note.get("max_chars"))
    elif kind is FeatureKind.BOOLEAN:
        extra["true_count"] = int(present.astype(bool).sum())
    return FeatureSpec(
        name=name,
        kind=kind,
        dtype=str(column.dtype),
        nullable=missing > 0,
        missing=missing,
        blank_as_none=_blanks_are_none(column),
        title=note.get("title", ""),
        description=note.get("description", ""),
        unit=note.get("unit", ""),
        **extra,
    )


def _blanks_are_none(column: pd.Series) -> bool:
    """An object column whose every blank is None, none NaN: the model was fitted on None."""
    if not pd.api.types.is_object_dtype(column.dtype):
        return False
    blanks = column[column.isna()]
    return not blanks.empty and all(value is None for value in blanks)


def _is_free_text(name: str, column: pd.Series, present: pd.Series, use: ColumnUse) -> bool:
    """Text the model reads as words, or values mostly distinct (a pandas category's fixed set never is)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return False
    if name in use.words:
        return True
    distinct = present.nunique()
    return distinct > MANY_CATEGORIES and distinct >= MOSTLY_DISTINCT * len(present)


def _unused(name: str, column: pd.Series, missing: int, present: pd.Series, note: Mapping[str, Any]) -> FeatureSpec:
    """A column the model never reads: any value is taken and logged; the model is handed a training value."""
    placeholder = _placeholder(column)
    described = {
        "title": note.get("title", ""),
        "description": note.get("description", ""),
        "unit": note.get("unit", ""),
    }
    return FeatureSpec(
        name=name,
        kind=FeatureKind.UNUSED,
        dtype=str(column.dtype),
        nullable=True,
        missing=missing,
        **{"placeholder": placeholder, **described},
    )


# What an unused column is filled with for the model, by dtype: no training value, so the card holds none of them.
_PLACEHOLDERS: tuple[tuple[Any, Any], ...] = (
    (pd.api.types.is_bool_dtype, False),
    (pd.api.types.is_numeric_dtype, 0),
    (pd.api.types.is_datetime64_any_dtype, "1970-01-01"),
    (pd.api.types.is_timedelta64_dtype, "0s"),
)


def _placeholder(column: pd.Series) -> Any:
    """A constant of the column's dtype (false, 0, the epoch, "" for text and objects), checked to fit it."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return None  # its fixed set of values: a blank is the one value always in it
    value = next((value for matches, value in _PLACEHOLDERS if matches(column.dtype)), "")
    try:
        pd.Series([value], dtype=column.dtype)
    except (TypeError, ValueError):
        return None  # a dtype that takes no constant: the model is handed blanks
    return value


def text_stats(train: pd.Series, test: pd.Series, max_chars: int | None) -> TextStats:
    """Lengths, words, vocabulary and samples of a free-text column; its test rows give the new-word baseline."""
    split = [words(value) for value in train]
    counts = pd.Series([word for found in split for word in found], dtype=object).value_counts()
    vocabulary = [str(word) for word in counts.index[:VOCABULARY_SIZE]]
    total, unseen = unseen_words(test, frozenset(vocabulary))
    lengths = train.str.len().to_numpy(dtype=np.float64)
    samples = train.drop_duplicates().head(SAMPLES)
    return TextStats(
        chars=numeric_stats(lengths),
        words=numeric_stats(np.array([len(found) for found in split], dtype=np.float64)),
        max_chars=int(max_chars) if max_chars is not None else max(MAX_TEXT_CHARS, int(lengths.max())),
        vocabulary=vocabulary,
        unseen_word_share=unseen / total if total else 0.0,
        samples=[value[:SAMPLE_CHARS] for value in samples],
    )


def numeric_stats(values: np.ndarray) -> NumericStats:
    """Min, max, mean, standard deviation and deciles."""
    return NumericStats(
        min=float(values.min()),
        max=float(values.max()),
        mean=float(values.mean()),
        std=float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        quantiles=[float(q) for q in np.quantile(values, np.linspace(0, 1, 11))],
    )


def bounds(values: np.ndarray, kind: FeatureKind, factor: float) -> tuple[float, float]:
    """Accepted range: `factor` training ranges below the minimum and above the maximum.

    A constant column gets its magnitude (or 1) as its range. Integers get whole-number bounds. A feature never
    negative in training (a length, a count, an amount) is never accepted below zero.
    """
    low, high = float(values.min()), float(values.max())
    span = (high - low) or abs(high) or 1.0
    lower, upper = low - factor * span, high + factor * span
    if low >= 0:
        lower = max(lower, 0.0)
    if kind is FeatureKind.INTEGER:
        return float(np.floor(lower)), float(np.ceil(upper))
    return round(lower, 6), round(upper, 6)
