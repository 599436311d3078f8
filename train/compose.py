"""One pipeline from raw rows to probabilities, when the notebook kept its preprocessing in its own variable.

The churn course's style: `dv = DictVectorizer(); X_train = dv.fit_transform(df_train.to_dict(orient="records"))`
then `model.fit(X_train, y_train)`. The service needs one object that takes the raw rows, so the two are
composed, and the composition must predict exactly what the notebook's own two objects predict.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.feature_extraction import DictVectorizer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from modelcard.records import frame_to_records
from train.errors import ModelCheckFailed


def takes_records(preprocessor: Any) -> bool:
    """DictVectorizer (and any transformer declaring input_type="dict") takes a list of dicts, not a frame."""
    return isinstance(preprocessor, DictVectorizer) or getattr(preprocessor, "input_type", None) == "dict"


def compose(preprocessor: Any, model: Any, X_train: pd.DataFrame) -> Pipeline:
    """`preprocessor` then `model`, with the frame-to-records step in front when the preprocessor needs it."""
    steps: list[tuple[str, Any]] = []
    if takes_records(preprocessor):
        steps.append(("records", FunctionTransformer(frame_to_records).fit(X_train)))
    return Pipeline([*steps, ("preprocess", preprocessor), ("model", model)])


def check_composition(composed: Pipeline, preprocessor: Any, model: Any, X_test: pd.DataFrame, names: str) -> None:
    """The composed pipeline must answer exactly as `model.predict_proba(preprocessor.transform(...))` on every row."""
    raw = frame_to_records(X_test) if takes_records(preprocessor) else X_test
    try:
        own = np.asarray(model.predict_proba(preprocessor.transform(raw)))
        together = np.asarray(composed.predict_proba(X_test))
    except Exception as error:  # any failure means the two do not compose
        raise ModelCheckFailed(f"{names} do not compose into one pipeline: {type(error).__name__}: {error}") from error
    differing = int((own != together).any(axis=1).sum()) if own.shape == together.shape else len(X_test)
    if differing:
        raise ModelCheckFailed(
            f"{names} composed predict differently from the notebook's own objects on {differing} of "
            f"{len(X_test)} test rows; the preprocessor must be the one the model was fitted after."
        )
