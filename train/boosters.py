"""XGBoost's and LightGBM's classifiers in skl2onnx graphs: onnxmltools' converters, registered when a model has one.

skl2onnx converts scikit-learn's own estimators only; a booster at the end of a pipeline needs a converter from
onnxmltools, registered with `update_registered_converter` (skl2onnx's documented way: its "pipeline_xgboost" and
"pipeline_lightgbm" examples). Nothing here imports a booster library: the classes come from the model itself, so
the project's own environment, which has neither, never needs them. What onnxmltools cannot express (LightGBM's own
splits on pandas `category` columns, CatBoost) is refused with its reason, and scikit-learn serves.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from onnx import TensorProto
from scipy import sparse
from skl2onnx import update_registered_converter
from skl2onnx.common.data_types import FloatTensorType
from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

logger = logging.getLogger(__name__)

# onnxmltools writes TreeEnsembleClassifier without an opset version; skl2onnx would then pick ai.onnx.ml 5,
# where that operator no longer exists, and refuse the model. Version 3 is the newest that has it.
_ML_OPSET = 3
# The options skl2onnx's examples register a booster with: a plain probability matrix (zipmap=False) is one.
_CLASSIFIER_OPTIONS: dict[str, Any] = {"nocl": [True, False], "zipmap": [True, False, "columns"]}


class NotConvertible(Exception):
    """A model whose ONNX form is known not to exist here; the message is the card's reason."""


@dataclass(frozen=True)
class Booster:
    """A booster library's classifier, and onnxmltools' converter for it."""

    library: str  # the top-level module its class lives in
    name: str  # its class name
    converter: str  # "module:function" in onnxmltools
    zeros_missing_when_sparse: bool = False  # a sparse matrix's absent entries are missing values to it, not zeros

    def matches(self, part: Any) -> bool:
        """`part` is an instance of this classifier (by name: the library itself is never imported here)."""
        cls = type(part)
        return cls.__name__ == self.name and cls.__module__.split(".")[0] == self.library


_XGBOOST = "onnxmltools.convert.xgboost.operator_converters.XGBoost:convert_xgboost"
_LIGHTGBM = Booster(
    "lightgbm", "LGBMClassifier", "onnxmltools.convert.lightgbm.operator_converters.LightGbm:convert_lightgbm"
)
BOOSTERS = (
    # XGBoost's DMatrix reads a scipy sparse matrix's absent entries as missing, where the dense ONNX input has 0.
    Booster("xgboost", "XGBClassifier", _XGBOOST, zeros_missing_when_sparse=True),
    Booster("xgboost", "XGBRFClassifier", _XGBOOST, zeros_missing_when_sparse=True),
    _LIGHTGBM,
)
_REGISTERED: set[type] = set()  # the classes whose converter skl2onnx has (its registry is per process too)
# Classifiers from booster libraries that no converter here takes, each with the reason the card gives.
WITHOUT_CONVERTER = {
    ("catboost", "CatBoostClassifier"): "CatBoostClassifier has no converter here: onnxmltools converts XGBoost and "
    "LightGBM, not CatBoost",
}


def prepare_booster(part: Any, reference: pd.DataFrame) -> None:
    """Register onnxmltools' converter for `part` if it is a booster, and adjust it (a copy) for it, in place.

    NotConvertible when `part` has no ONNX form here; `reference` holds the rows it was given, to name columns.
    """
    refusal = _refusal(part, reference)
    if refusal:
        raise NotConvertible(refusal)
    booster = booster_of(part)
    if booster is not None:
        _register(type(part), booster)
        if _is_fitted(part):  # an ensemble's unfitted templates (VotingClassifier.estimators) are never converted
            _without_feature_names(part)


def booster_of(part: Any) -> Booster | None:
    """The booster `part` is an instance of, if any."""
    return next((booster for booster in BOOSTERS if booster.matches(part)), None)


def _refusal(part: Any, reference: pd.DataFrame) -> str | None:
    """Why `part` cannot become ONNX here, or None."""
    cls = type(part)
    known = WITHOUT_CONVERTER.get((cls.__module__.split(".")[0], cls.__name__))
    if known:
        return known
    if _LIGHTGBM.matches(part) and _is_fitted(part) and part.booster_.pandas_categorical:
        return lightgbm_categorical_reason(part, reference)
    return None


def lightgbm_categorical_reason(model: Any, reference: pd.DataFrame) -> str:
    """The card's reason for a LightGBM model fitted on pandas `category` columns, which it splits itself."""
    names = [str(name) for name in getattr(model, "feature_name_", [])]
    categories = [
        name for name in names if name in reference and isinstance(reference[name].dtype, pd.CategoricalDtype)
    ]
    which = f" ({', '.join(categories)})" if categories else ""
    return (
        f"LightGBM splits the pandas category columns{which} itself, which onnxmltools cannot convert "
        "(onnx/onnxmltools#309); one-hot encode them in a ColumnTransformer to run on ONNX"
    )


def _is_fitted(part: Any) -> bool:
    """`part` is fitted, by scikit-learn's test (which the boosters implement)."""
    try:
        check_is_fitted(part)
    except NotFittedError:
        return False
    return True


def _register(cls: type, booster: Booster) -> None:
    """Register onnxmltools' converter for `cls` with skl2onnx, once a process."""
    if cls in _REGISTERED:
        return
    module, function = booster.converter.split(":")
    convert = getattr(importlib.import_module(module), function)

    def converter(scope: Any, operator: Any, container: Any) -> None:
        """onnxmltools' converter, its tree operators at the ai.onnx.ml version that still has them."""
        convert(scope, operator, _MlOpsetContainer(container))

    update_registered_converter(
        cls,
        f"Project{booster.name}",
        calculate_linear_classifier_output_shapes,
        converter,
        options=_CLASSIFIER_OPTIONS,
    )
    _REGISTERED.add(cls)
    logger.info("Registered onnxmltools' %s for %s.%s", function, cls.__module__, cls.__name__)


def _without_feature_names(part: Any) -> None:
    """Forget the column names an XGBoost booster was fitted with: onnxmltools reads splits only as f0, f1, ..."""
    booster = getattr(part, "get_booster", None)
    if booster is not None:
        booster().feature_names = None  # the copy's booster; the notebook's model keeps its names


def mark_sparse_zeros_missing(ready: Any, model: Any, reference: pd.DataFrame) -> None:
    """0 as NaN before `ready`'s final booster if it reads a sparse matrix's zeros as missing and is given one.

    A ColumnTransformer of mostly one-hot columns hands on a sparse matrix; XGBoost reads its absent entries (every 0)
    as missing and takes the trees' default branch, where the dense ONNX input would compare 0 (gaps of 0.9). `ready`
    is the copy being made ready for ONNX; `model`, the notebook's own and never changed, says what its booster is
    given for the `reference` rows.
    """
    copied, original = ready, model
    while isinstance(original, Pipeline) and isinstance(original.steps[-1][1], Pipeline):
        copied, original = copied.steps[-1][1], original.steps[-1][1]
    booster = booster_of(original.steps[-1][1]) if isinstance(original, Pipeline) else None
    if booster is None or not booster.zeros_missing_when_sparse or not sparse.issparse(_final_input(model, reference)):
        return
    copied.steps.insert(len(copied.steps) - 1, ("onnx_zeros_as_missing", ZerosAsMissing()))
    logger.info("%s is given a sparse matrix, whose absent entries it reads as missing: so will ONNX", booster.name)


def _final_input(model: Any, rows: Any) -> Any:
    """What the final estimator at the end of `model` (a pipeline, maybe nested) is given for `rows`."""
    while isinstance(model, Pipeline):
        rows = model[:-1].transform(rows) if len(model.steps) > 1 else rows
        model = model.steps[-1][1]
    return rows


class ZerosAsMissing(TransformerMixin, BaseEstimator):
    """0 as NaN, in float32: what XGBoost reads of a sparse matrix's absent entries, for a dense ONNX input."""

    def fit(self, X: Any, y: Any = None) -> ZerosAsMissing:
        """Nothing to learn."""
        return self

    def transform(self, X: Any) -> np.ndarray:
        """A dense float32 copy of X with NaN where it held 0."""
        dense = np.asarray(X.toarray() if sparse.issparse(X) else X, dtype=np.float32)
        return np.where(dense == 0, np.float32(np.nan), dense)


def _zeros_as_missing_shape(operator: Any) -> None:
    """As many columns as it is given, in float32 (what every tree converter here takes)."""
    operator.outputs[0].type = FloatTensorType(operator.inputs[0].type.shape)


def _convert_zeros_as_missing(scope: Any, operator: Any, container: Any) -> None:
    """Cast to float32 first (whatever the step before wrote), then Where(X == 0, NaN, X)."""
    floats, is_zero = scope.get_unique_variable_name("floats"), scope.get_unique_variable_name("is_zero")
    zero, nan = scope.get_unique_variable_name("zero"), scope.get_unique_variable_name("nan")
    container.add_initializer(zero, TensorProto.FLOAT, [1], [0.0])
    container.add_initializer(nan, TensorProto.FLOAT, [1], [float("nan")])
    source = operator.inputs[0].full_name
    container.add_node("Cast", [source], [floats], to=TensorProto.FLOAT, name=scope.get_unique_operator_name("Cast"))
    container.add_node("Equal", [floats, zero], [is_zero], name=scope.get_unique_operator_name("Equal"))
    container.add_node(
        "Where", [is_zero, nan, floats], [operator.outputs[0].full_name], name=scope.get_unique_operator_name("Where")
    )


update_registered_converter(ZerosAsMissing, "ProjectZerosAsMissing", _zeros_as_missing_shape, _convert_zeros_as_missing)


class _MlOpsetContainer:
    """The container onnxmltools writes to, its ai.onnx.ml operators given the version that has them."""

    def __init__(self, container: Any) -> None:
        self._container = container

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def add_node(self, *args: Any, **attrs: Any) -> Any:
        """Add the node, at ai.onnx.ml version 3 when it is of that domain and names no version."""
        if attrs.get("op_domain") == "ai.onnx.ml" and attrs.get("op_version") is None:
            attrs["op_version"] = _ML_OPSET
        return self._container.add_node(*args, **attrs)
