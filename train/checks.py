"""Checks a model and its data must pass before they may enter the model store."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from modelcard.card import FeatureKind, FeatureSpec, Metrics
from runtime.evaluation import LOWER_IS_BETTER, METRIC_NAMES, missed_gate
from runtime.table import FeatureTable
from train.errors import ModelCheckFailed
from train.features import feature_kind


def check_classifier(model: Any, name: str = "model") -> None:
    """Refuse anything that is not a fitted scikit-learn classifier with predict_proba."""
    if not is_classifier(model):
        raise ModelCheckFailed(f"`{name}` is a {type(model).__name__}, not a scikit-learn classifier.")
    if not hasattr(model, "predict_proba"):
        final = final_estimator(model)
        kind = type(final).__name__
        fix = f"wrap it as CalibratedClassifierCV({kind}(...)), which learns probabilities from its scores"
        if kind in ("SVC", "NuSVC"):
            fix = f"fit {kind}(probability=True, ...), or {fix}"
        where = f" (the last step of `{name}`)" if final is not model else ""
        raise ModelCheckFailed(
            f"{kind}{where} has no predict_proba, and the service answers each class's probability: {fix}."
        )
    try:
        check_is_fitted(model)
    except NotFittedError as error:
        raise ModelCheckFailed(f"`{name}` is not fitted: call {name}.fit(...) in the notebook. ({error})") from error


def final_estimator(model: Any) -> Any:
    """The estimator at the end of a pipeline (nested ones too); the model itself otherwise."""
    while hasattr(model, "steps") and model.steps:
        model = model.steps[-1][1]
    return model


def check_frames(frames: Mapping[str, Any]) -> list[str]:
    """The feature names; refuse data that is not DataFrames with the same named columns."""
    for name, frame in frames.items():
        if not isinstance(frame, pd.DataFrame):
            raise ModelCheckFailed(
                f"`{name}` is a {type(frame).__name__}; it must be a pandas DataFrame so the features have names."
            )
    (train_name, train), (test_name, test) = frames.items()
    names = [str(c) for c in train.columns]
    if len(set(names)) != len(names):
        raise ModelCheckFailed(f"`{train_name}` has repeated column names: {names}.")
    if [str(c) for c in test.columns] != names:
        raise ModelCheckFailed(
            f"`{test_name}` columns {list(test.columns)} differ from `{train_name}` columns {names}."
        )
    return names


def check_kinds(frames: Mapping[str, pd.DataFrame], unread: Collection[str] = ()) -> None:
    """Each column is of one kind the service can take, the same in both splits.

    A column the model never reads (`unread`) may have any dtype: only the log keeps it.
    """
    (train_name, train), (test_name, test) = frames.items()
    for column in train.columns:
        if column in unread:
            continue
        kind = feature_kind(str(column), train[column])
        if len(test) and feature_kind(str(column), test[column]) != kind:
            raise ModelCheckFailed(
                f"column `{column}` is {train[column].dtype} in `{train_name}` but {test[column].dtype} in "
                f"`{test_name}`: give both splits the same types."
            )


def check_labels(pairs: Mapping[tuple[str, str], tuple[Any, Any]]) -> None:
    """Each split has one label per row, and no label is missing."""
    for (x_name, y_name), (features, labels) in pairs.items():
        if len(features) != len(labels):
            raise ModelCheckFailed(f"`{x_name}` has {len(features)} rows but `{y_name}` has {len(labels)}.")
        if pd.isna(pd.Series(np.asarray(labels, dtype=object))).any():
            raise ModelCheckFailed(f"`{y_name}` has missing labels: drop those rows in the notebook.")


def predict_test_set(model: Any, X_test: pd.DataFrame) -> np.ndarray:
    """The model's probabilities on the test set; a model that raises is refused, naming the first bad row."""
    try:
        return np.asarray(model.predict_proba(X_test), dtype=np.float64)
    except Exception as error:  # whatever the notebook's model raises, it cannot be served
        bad = _first_failing_row(model, X_test)
        where = f" on test row {bad} ({X_test.iloc[bad].to_dict()})" if bad is not None else ""
        raise ModelCheckFailed(f"the model raised{where}: {type(error).__name__}: {error}") from error


def _first_failing_row(model: Any, X_test: pd.DataFrame) -> int | None:
    """The position of the first test row the model cannot predict alone."""
    for position in range(len(X_test)):
        try:
            model.predict_proba(X_test.iloc[[position]])
        except Exception:  # noqa: BLE001 - looking for the row, not handling the error
            return position
    return None


def check_served_path(model: Any, features: list[FeatureSpec], X_test: pd.DataFrame, expected: np.ndarray) -> None:
    """Requests rebuilt the way the service builds them must predict what the notebook's test frame does.

    An unused feature is its placeholder in every rebuilt row, so this also proves the model never reads it.
    """
    rebuilt = FeatureTable.from_frame(features, X_test).to_frame(features)
    try:
        served = np.asarray(model.predict_proba(rebuilt), dtype=np.float64)
    except Exception as error:  # the model accepts the notebook's frame but not the service's
        _refuse_unused_but_read(model, features, X_test, expected, f"{type(error).__name__}: {error}")
        raise ModelCheckFailed(
            f"the model cannot predict rows as the service sends them ({type(error).__name__}: {error}); "
            "this is a bug in the training step, please report it with the notebook."
        ) from error
    mismatched = int((served.argmax(axis=1) != expected.argmax(axis=1)).sum())
    gap = float(np.abs(served - expected).max()) if len(expected) else 0.0
    if mismatched or gap > 1e-9:
        difference = f"{mismatched} class changes, largest probability gap {gap:.2e}"
        _refuse_unused_but_read(model, features, X_test, expected, difference)
        raise ModelCheckFailed(
            f"rows rebuilt as the service sends them predict differently ({difference}); "
            "the model may depend on dtypes the card cannot describe."
        )


def _refuse_unused_but_read(
    model: Any, features: list[FeatureSpec], X_test: pd.DataFrame, expected: np.ndarray, difference: str
) -> None:
    """Refuse, naming them, the unused features the model does read (their placeholder alone changes its answers)."""
    read = _unused_but_read(model, features, X_test, expected)
    if not read:
        return
    names = ", ".join(f"`{name}`" for name in read)
    one = len(read) == 1
    raise ModelCheckFailed(
        f"the model's predictions change when {names} {'is' if one else 'are'} replaced by a training value "
        f"({difference}), so the model reads {'it' if one else 'them'}: take {'it' if one else 'them'} out of "
        f'`model_card["unused"]`, or drop {"it" if one else "them"} in the model (a ColumnTransformer\'s remainder).'
    )


def _unused_but_read(model: Any, features: list[FeatureSpec], X_test: pd.DataFrame, expected: np.ndarray) -> list[str]:
    """The unused features whose placeholder alone, in the notebook's own test rows, changes the predictions."""
    read = []
    for spec in features:
        if spec.kind is not FeatureKind.UNUSED:
            continue
        replaced = X_test.copy()
        replaced[spec.name] = pd.Series([spec.placeholder] * len(X_test), index=X_test.index, dtype=spec.dtype)
        try:
            got = np.asarray(model.predict_proba(replaced), dtype=np.float64)
        except Exception:  # the model cannot even take the placeholder: it reads the column
            read.append(spec.name)
            continue
        if got.shape != expected.shape or float(np.abs(got - expected).max(initial=0.0)) > 1e-9:
            read.append(spec.name)
    return read


def parse_gates(texts: list[str]) -> dict[str, float]:
    """`metric=threshold` pairs from the command line, metric names checked."""
    gates = {}
    for text in texts:
        name, _, value = text.partition("=")
        name = name.strip()
        if name not in METRIC_NAMES:
            raise ValueError(f"--gate {text!r}: the metric must be one of {', '.join(METRIC_NAMES)}")
        try:
            gates[name] = float(value)
        except ValueError:
            raise ValueError(f"--gate {text!r}: give a number, e.g. --gate {name}=0.8") from None
    return gates


def check_gates(metrics: Metrics, gates: Mapping[str, float]) -> None:
    """Refuse a model that misses any gate (a minimum, or a maximum for log loss)."""
    for name, threshold in gates.items():
        missed = missed_gate(metrics, name, threshold)
        if missed is None:
            raise ModelCheckFailed(
                f"test {name} could not be computed (a class is missing from the test set), so the gate "
                f"{name}={threshold} cannot be checked; stratify the split in the notebook."
            )
        if missed:
            relation = "above the allowed" if name in LOWER_IS_BETTER else "below the required"
            raise ModelCheckFailed(
                f"test {name} {metrics.value(name):.4f} is {relation} {threshold:.4f}; improve the model in the "
                f"notebook or change the gate (--gate {name}=...) deliberately."
            )
