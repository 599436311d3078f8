"""Compile a fitted classifier to ONNX, one input per feature, and keep it only if it answers like the original.

The ONNX model takes one (n, 1) input per feature, named like it: numbers, integers and booleans as double, text
as string with "" for a blank, which is what `FeatureTable.onnx_inputs` sends. Its second output is the
(n, classes) probability matrix in `model.classes_` order. Whatever skl2onnx cannot take as the notebook left it
is adjusted on a copy; the parity gate then checks the result through the same table the service builds.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from onnx import TensorProto, numpy_helper
from skl2onnx import convert_sklearn, update_registered_converter
from skl2onnx._supported_operators import sklearn_operator_name_map
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType
from skl2onnx.operator_converters.common import concatenate_variables
from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer
from skl2onnx.operator_converters.k_bins_discretiser import convert_sklearn_k_bins_discretiser
from skl2onnx.operator_converters.polynomial_features import convert_sklearn_polynomial_features
from skl2onnx.operator_converters.random_forest import convert_sklearn_random_forest_classifier
from skl2onnx.shape_calculators.text_vectorizer import calculate_sklearn_text_vectorizer_output_shapes
from skl2onnx.sklapi import CastTransformer
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder, PolynomialFeatures

from modelcard.card import FeatureKind, FeatureSpec
from runtime.predictor import OnnxRuntime
from runtime.table import FeatureTable
from train.boosters import NotConvertible, mark_sparse_zeros_missing, prepare_booster

logger = logging.getLogger(__name__)

# Room for float32 rounding in the classifier's own sums: the largest gap measured was 1.3e-6 (a 500-tree forest),
# 4e-7 with 100 trees, 1e-7 to 3e-7 for logistic regression, both boostings and soft voting. A real discrepancy is
# far larger: one tree of 100 taking the other branch moves a probability by 1e-2; ignored categorical splits, 0.9.
PROBABILITY_TOLERANCE = 1e-4

_NOTE_LENGTH = 300  # the converter's messages can print whole attribute lists
_DOUBLE_ATTRIBUTES = ("nodes_values", "class_weights", "base_values", "nodes_hitrates")
# The locale of the text vectorizers' StringNormalizer: onnxruntime asks for en_US.UTF-8 unless told, which a machine
# with only C, C.UTF-8 and POSIX lacks. Debian's libc-bin ships C.utf8; it lowercases as str.lower does (but İ), and
# where it is missing the parity gate's session fails and scikit-learn serves.
_TEXT_LOCALE = "C.UTF-8"
# scikit-learn's default words (runs of two or more letters, digits or "_") for RE2, onnxruntime's tokenizer, whose \w
# is ASCII: skl2onnx's own stand-in, [a-zA-Z0-9_]+, splits "café" and keeps the one-letter words that join bigrams.
_SKLEARN_TOKEN_PATTERN, _TOKEN_EXPRESSION = r"(?u)\b\w\w+\b", r"[\p{L}\p{N}_]{2,}"


@dataclass(frozen=True)
class CompiledModel:
    """The outcome of compiling: ONNX bytes when parity held, else None and the reason."""

    onnx_bytes: bytes | None  # None: serve with scikit-learn
    note: str  # one line for the model card: why ONNX was kept or not


def compile_to_onnx(
    model: Any, features: list[FeatureSpec], reference: pd.DataFrame, tolerance: float = PROBABILITY_TOLERANCE
) -> CompiledModel:
    """Convert `model` with skl2onnx and check it on `reference` rows, fed as the service feeds a request."""
    try:
        onnx_bytes = convert(model, features, reference)
        onnx_proba = run_onnx(onnx_bytes, FeatureTable.from_frame(features, reference))
    except NotConvertible as error:  # a part known to have no ONNX form here: the reason, without a type name
        return _refused(f"not converted to ONNX: {error}")
    # skl2onnx and onnxruntime raise many kinds for what they cannot do; any of them means "keep scikit-learn".
    except Exception as error:
        message = (str(error).strip().splitlines() or [""])[0][:_NOTE_LENGTH]
        return _refused(f"ONNX conversion failed: {type(error).__name__}: {message}")
    sklearn_proba = np.asarray(model.predict_proba(reference))
    if onnx_proba.shape != sklearn_proba.shape:
        return _refused(f"ONNX parity failed: probabilities of shape {onnx_proba.shape}, not {sklearn_proba.shape}")
    changed = class_changes(onnx_proba, sklearn_proba, tolerance)
    gap = float(np.abs(onnx_proba - sklearn_proba).max(initial=0.0))
    if changed or not gap <= tolerance:  # `not <=` also refuses a NaN gap
        return _refused(
            f"ONNX parity failed on {len(reference)} rows: {changed} class changes, largest probability gap {gap:.2e}"
        )
    note = f"ONNX parity held on {len(reference)} rows: same class on all, largest probability gap {gap:.2e}"
    logger.info(note)
    return CompiledModel(onnx_bytes, note)


def class_changes(onnx_proba: np.ndarray, sklearn_proba: np.ndarray, tolerance: float) -> int:
    """Rows where ONNX picks a class scikit-learn ranks below its best by more than `tolerance`.

    An exact tie in scikit-learn (a forest voting 50/50) is not a change: rounding decides it either way.
    """
    rows = np.arange(len(sklearn_proba))
    picked = sklearn_proba[rows, onnx_proba.argmax(axis=1)]
    return int((picked < sklearn_proba.max(axis=1) - tolerance).sum())


def input_types(features: list[FeatureSpec]) -> list[tuple[str, Any]]:
    """One (n, 1) ONNX input per feature: text as string, every numeric kind as double.

    Double, so the preprocessing computes what scikit-learn's transformers compute (in float32 it lands one step
    off, and trees whose thresholds sit on training values send such rows the other way). Not int64 for integers:
    skl2onnx concatenates a ColumnTransformer group in its first column's type, and an int64 first column fails.
    """
    return [
        (spec.name, StringTensorType([None, 1]) if _is_text(spec) else DoubleTensorType([None, 1])) for spec in features
    ]


def _is_text(spec: FeatureSpec) -> bool:
    """A feature given to ONNX as text: a category, free text, or an unused column that held text in training."""
    if spec.kind is FeatureKind.UNUSED:
        return not pd.api.types.is_numeric_dtype(pd.api.types.pandas_dtype(spec.dtype))
    return spec.kind in (FeatureKind.CATEGORY, FeatureKind.TEXT)


def convert(model: Any, features: list[FeatureSpec], reference: pd.DataFrame) -> bytes:
    """The ONNX model's bytes, its inputs named exactly like the features."""
    ready = onnx_ready(model, features, reference)
    onnx_model = convert_sklearn(
        ready,
        initial_types=input_types(features),
        options={
            id(ready): {"zipmap": False},  # a plain probability matrix; a pipeline passes it to its classifier
            **{id(part): _text_options(part) for part in _estimators(ready) if isinstance(part, CountVectorizer)},
        },
        custom_conversion_functions={
            SimpleImputer: _convert_imputer,
            HistGradientBoostingClassifier: _convert_hist_gradient_boosting,
            PolynomialFeatures: _convert_polynomial_features,
            KBinsDiscretizer: _convert_kbins_discretizer,
        },
    )
    # skl2onnx turns names into identifiers ("monthly charges ($)" -> "monthly_charges____"), but the service looks the
    # inputs up by feature name. A renamed name has a character no generated name has, so it cannot clash.
    renamed = {onnx_input.name: spec.name for onnx_input, spec in zip(onnx_model.graph.input, features, strict=True)}
    for onnx_input in onnx_model.graph.input:
        onnx_input.name = renamed[onnx_input.name]
    for node in onnx_model.graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
    return onnx_model.SerializeToString()


def onnx_ready(model: Any, features: list[FeatureSpec], reference: pd.DataFrame) -> Pipeline:
    """A copy of `model` that skl2onnx converts into the same predictions; the notebook's model is left untouched."""
    ready = copy.deepcopy(model)
    for part in _estimators(ready):
        if isinstance(part, VotingClassifier):
            part.flatten_transform = False  # only changes `transform`, which skl2onnx cannot convert flattened
        if isinstance(part, SimpleImputer) and _imputes_text_blanks(part):
            part.missing_values = ""  # a blank text reaches ONNX as "" (skl2onnx refuses NaN for text)
        if isinstance(part, OneHotEncoder) and hasattr(part, "categories_"):
            part.categories_ = [_blank_as_empty(categories) for categories in part.categories_]
        if isinstance(part, KBinsDiscretizer) and part.encode == "onehot":
            part.encode = "onehot-dense"  # the same columns, dense: skl2onnx refuses the sparse one by its name alone
        if type(part) is TfidfVectorizer and part.sublinear_tf:
            part.__class__ = SublinearTfidfVectorizer  # the same fitted object, converted by _convert_sublinear_tfidf
        prepare_booster(part, reference)  # XGBoost's, LightGBM's: onnxmltools' converter (train/boosters.py)
    mark_sparse_zeros_missing(ready, model, reference)
    first = ready
    while isinstance(first, Pipeline):
        first = first.steps[0][1]
    if not isinstance(first, ColumnTransformer):  # one takes its inputs by name; anything else wants one matrix
        ready = Pipeline([("columns", _concatenation(first, features, reference)), ("model", ready)])
    last = ready
    while isinstance(last.steps[-1][1], Pipeline):
        last = last.steps[-1][1]
    # scikit-learn's trees cast their input to float32 themselves, and skl2onnx's classifiers expect float;
    # HistGradientBoosting alone compares in float64 (see _convert_hist_gradient_boosting).
    if not isinstance(last.steps[-1][1], HistGradientBoostingClassifier):
        last.steps.insert(len(last.steps) - 1, ("onnx_float32", CastTransformer(dtype=np.float32)))
    return ready


def _concatenation(receiver: Any, features: list[FeatureSpec], reference: pd.DataFrame) -> ColumnTransformer:
    """A fitted ColumnTransformer passing every (numeric) feature through, in order, as one matrix."""
    text = [spec.name for spec in features if _is_text(spec)]
    if text:
        raise ValueError(
            f"{type(receiver).__name__} takes text columns ({', '.join(text)}) itself; "
            "skl2onnx encodes text only in a ColumnTransformer"
        )
    # Fitted on the table's float64 columns: a ColumnTransformer refuses to pass a nullable Int64's pandas.NA on.
    numbers = pd.DataFrame(FeatureTable.from_frame(features, reference).columns)
    return ColumnTransformer([("features", "passthrough", [spec.name for spec in features])]).fit(numbers)


def _text_options(vectorizer: CountVectorizer) -> dict[str, str]:
    """skl2onnx's options for a word or character vectorizer (a TfidfVectorizer is a CountVectorizer)."""
    if vectorizer.analyzer == "word" and vectorizer.token_pattern == _SKLEARN_TOKEN_PATTERN:
        return {"locale": _TEXT_LOCALE, "tokenexp": _TOKEN_EXPRESSION}
    return {"locale": _TEXT_LOCALE}


def run_onnx(onnx_bytes: bytes, table: FeatureTable) -> np.ndarray:
    """Probabilities from the service's own ONNX runtime: the parity gate checks the very call that serves."""
    return np.asarray(OnnxRuntime(onnx_bytes).predict_proba(table))


def _refused(note: str) -> CompiledModel:
    """No ONNX file, and why."""
    logger.warning("%s; serving with scikit-learn", note)
    return CompiledModel(None, note)


def _imputes_text_blanks(imputer: SimpleImputer) -> bool:
    """A fitted imputer of text columns that looks for blanks (NaN or pandas.NA)."""
    statistics = getattr(imputer, "statistics_", None)  # unfitted templates (a ColumnTransformer's) have none
    # Text in the statistics, not their object dtype: strategy="constant" keeps a number's fill value in one too.
    texts = statistics is not None and any(isinstance(value, str) for value in statistics)
    return texts and _looks_for_blanks(imputer)


def _looks_for_blanks(imputer: SimpleImputer) -> bool:
    """The imputer fills NaN, or pandas.NA, which scikit-learn masks with pandas.isna: NaN too, once in numpy."""
    missing = imputer.missing_values
    return missing is pd.NA or (isinstance(missing, float) and math.isnan(missing))


def _blank_as_empty(categories: np.ndarray) -> np.ndarray:
    """A text encoder's categories with its blank (NaN) category written "", as ONNX receives a blank."""
    if categories.dtype != object:
        return categories
    return np.array(["" if pd.isna(value) else value for value in categories], dtype=object)


def _estimators(obj: Any) -> Iterator[Any]:
    """Every estimator inside `obj`, fitted parts (a ColumnTransformer's `transformers_`, ...) included.

    scikit-learn's, and look-alikes that only share its methods (CatBoost's), so each can be named when refused.
    """
    if isinstance(obj, BaseEstimator) or _looks_like_estimator(obj):
        yield obj
        children: Any = getattr(obj, "__dict__", {}).values()
    elif isinstance(obj, list | tuple):
        children = obj
    elif isinstance(obj, dict):
        children = obj.values()
    else:
        return
    for child in children:
        yield from _estimators(child)


def _looks_like_estimator(obj: Any) -> bool:
    """An object with scikit-learn's estimator methods that is not a BaseEstimator (a class is not one)."""
    return not isinstance(obj, type) and hasattr(obj, "get_params") and hasattr(obj, "fit")


# What skl2onnx 1.20 cannot do with these library versions, checked by tests/test_onnx_parity.py and _shapes.py.


def _convert_imputer(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx's imputer, but NaN in doubles becomes Where(IsNaN): onnxruntime's Imputer has no double kernel."""
    imputer = operator.raw_operator
    if not isinstance(operator.inputs[0].type, DoubleTensorType):
        convert_sklearn_imputer(scope, operator, container)
        return
    if not _looks_for_blanks(imputer):
        raise NotImplementedError(f"SimpleImputer(missing_values={imputer.missing_values!r}) on numbers")
    values = concatenate_variables(scope, operator.inputs, container)
    missing = scope.get_unique_variable_name("missing")
    statistics = scope.get_unique_variable_name("statistics")
    fill = imputer.statistics_.astype(np.float64)  # strategy="constant" stores its fill value in an object array
    container.add_initializer(statistics, TensorProto.DOUBLE, [1, fill.size], fill)
    container.add_node("IsNaN", [values], [missing], name=scope.get_unique_operator_name("IsNaN"))
    container.add_node(
        "Where",
        [missing, statistics, values],
        [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name("Where"),
    )


def _convert_polynomial_features(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx's converter, its bias column in the input's type: it writes float, which Concat refuses with double."""
    dtype = np.float64 if isinstance(operator.inputs[0].type, DoubleTensorType) else np.float32
    convert_sklearn_polynomial_features(scope, operator, _BiasContainer(container, dtype))


class _BiasContainer:
    """The container skl2onnx's polynomial converter writes to, its constant (bias) column made `dtype`."""

    def __init__(self, container: Any, dtype: type[np.floating[Any]]) -> None:
        self._container = container
        self._dtype = dtype

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def add_node(self, op_type: str, *args: Any, **attrs: Any) -> Any:
        """Add the node, a ConstantOfShape's value in `dtype`."""
        if op_type == "ConstantOfShape":
            value = attrs["value"]
            attrs["value"] = numpy_helper.from_array(numpy_helper.to_array(value).astype(self._dtype), value.name)
        return self._container.add_node(op_type, *args, **attrs)


def _convert_kbins_discretizer(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx's converter, its bins cast to double: it writes float whatever the input, which Concat refuses."""
    output = operator.outputs[0].full_name
    if not isinstance(operator.outputs[0].type, DoubleTensorType):
        convert_sklearn_k_bins_discretiser(scope, operator, container)
        return
    floats = scope.get_unique_variable_name("bins")
    convert_sklearn_k_bins_discretiser(scope, operator, _RenamedOutput(container, output, floats))
    container.add_node("Cast", [floats], [output], to=TensorProto.DOUBLE, name=scope.get_unique_operator_name("Cast"))


class _RenamedOutput:
    """A container that writes the node making `output` to `renamed` instead."""

    def __init__(self, container: Any, output: str, renamed: str) -> None:
        self._container = container
        self._output = output
        self._renamed = renamed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def add_node(self, op_type: str, inputs: Any, outputs: Any, *args: Any, **attrs: Any) -> Any:
        """Add the node, `output` renamed among its outputs."""
        names = [outputs] if isinstance(outputs, str) else list(outputs)
        names = [self._renamed if name == self._output else name for name in names]
        return self._container.add_node(op_type, inputs, names, *args, **attrs)


def _convert_hist_gradient_boosting(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx's converter at ai.onnx.ml opset 3, so thresholds stay double as scikit-learn compares them.

    In float32 an unseen integer midway between two seen ones lands on a threshold once scaled, and takes
    the other branch: 0.3 and more of probability on new rows, while the training rows all agreed.
    """
    operator.outputs[1].type = FloatTensorType(operator.outputs[1].type.shape)  # what TreeEnsemble returns
    convert_sklearn_random_forest_classifier(scope, operator, _TreeContainer(container), op_version=3)


class _TreeContainer:
    """The container skl2onnx's tree converter writes to, made to write attributes ONNX and onnxruntime accept."""

    def __init__(self, container: Any) -> None:
        self._container = container

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def add_node(self, *args: Any, **attrs: Any) -> Any:
        """Add the node with leaves' missing-value flags as 0/1 and weights as double tensors."""
        for key, value in list(attrs.items()):
            if isinstance(value, list):  # the converter lists leaves' flags as False, which protobuf 7 refuses
                attrs[key] = [int(item) if isinstance(item, bool) else item for item in value]
            elif key in _DOUBLE_ATTRIBUTES and isinstance(value, np.ndarray) and value.dtype == np.float64:
                attrs[f"{key}_as_tensor"] = numpy_helper.from_array(attrs.pop(key), key)
        return self._container.add_node(*args, **attrs)


class SublinearTfidfVectorizer(TfidfVectorizer):
    """A fitted TfidfVectorizer(sublinear_tf=True), converted with scikit-learn's 1 + log(tf) (see below)."""


def _convert_sublinear_tfidf(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx's TfidfVectorizer converter, its term frequencies made sublinear as scikit-learn makes them.

    scikit-learn replaces a count tf > 0 by 1 + log(tf); skl2onnx writes log(1 + tf), which agrees only for words
    that occur once in a text (probability gaps of 2.5e-2 on reviews that repeat a word). Here the counts become
    Where(tf > 0, 1 + log(tf), 0) before skl2onnx's own TfidfTransformer, given a copy without sublinear_tf.
    """
    vectorizer = operator.raw_operator
    columns = max(vectorizer.vocabulary_.values()) + 1
    tensor = DoubleTensorType if isinstance(operator.outputs[0].type, DoubleTensorType) else FloatTensorType
    proto = TensorProto.DOUBLE if tensor is DoubleTensorType else TensorProto.FLOAT
    counting = scope.declare_local_operator(sklearn_operator_name_map[CountVectorizer], vectorizer)
    counting.inputs = operator.inputs
    counts = scope.declare_local_variable("counts", tensor([None, columns]))
    counting.outputs.append(counts)
    sublinear = scope.declare_local_variable("sublinear_counts", tensor([None, columns]))
    zero, one = scope.get_unique_variable_name("zero"), scope.get_unique_variable_name("one")
    container.add_initializer(zero, proto, [1], [0.0])
    container.add_initializer(one, proto, [1], [1.0])
    present, logged, shifted = (scope.get_unique_variable_name(name) for name in ("present", "logged", "shifted"))
    for op_type, inputs, output in (
        ("Greater", [counts.full_name, zero], present),
        ("Log", [counts.full_name], logged),  # -inf where tf = 0, which Where leaves out
        ("Add", [logged, one], shifted),
        ("Where", [present, shifted, zero], sublinear.full_name),
    ):
        container.add_node(op_type, inputs, [output], name=scope.get_unique_operator_name(op_type))
    weighting = copy.copy(vectorizer)
    weighting.sublinear_tf = False
    weighted = scope.declare_local_operator(sklearn_operator_name_map[TfidfTransformer], weighting)
    weighted.inputs.append(sublinear)
    weights = scope.declare_local_variable("tfidf", tensor())
    weighted.outputs.append(weights)
    container.add_node(
        "Identity",
        [weights.full_name],
        [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name("Identity"),
    )


update_registered_converter(
    SublinearTfidfVectorizer,
    "ProjectSublinearTfidfVectorizer",
    calculate_sklearn_text_vectorizer_output_shapes,
    _convert_sublinear_tfidf,
    options={
        "tokenexp": None,
        "separators": None,
        "nan": [True, False],
        "keep_empty_string": [True, False],
        "locale": None,
    },
)
