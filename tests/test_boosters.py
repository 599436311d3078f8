"""train/boosters.py without the boosters: stand-ins named like their classes, since this environment has neither.

The real XGBoost and LightGBM are trained and converted in tests/e2e/test_booster_onnx.py, in their environments.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from scipy import sparse
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from train.boosters import (
    BOOSTERS,
    NotConvertible,
    ZerosAsMissing,
    _MlOpsetContainer,
    booster_of,
    lightgbm_categorical_reason,
    mark_sparse_zeros_missing,
    prepare_booster,
)
from train.columnuse import column_use
from train.compile import compile_to_onnx
from train.features import describe_features


class _Fitted(ClassifierMixin, BaseEstimator):
    """A classifier that learns only its classes and answers 1/k for each."""

    def fit(self, X: Any, y: Any) -> _Fitted:
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.full((X.shape[0], len(self.classes_)), 1 / len(self.classes_))


def stand_in(module: str, name: str, base: type = _Fitted, **namespace: Any) -> type:
    """A class called `name` in `module`, as a booster library defines it."""
    return type(name, (base,), {"__module__": module, **namespace})


XGBClassifier = stand_in("xgboost.sklearn", "XGBClassifier")
LGBMClassifier = stand_in("lightgbm.sklearn", "LGBMClassifier")


class _CatBoostLike:
    """CatBoost's classifier has scikit-learn's methods without being a BaseEstimator."""

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {}

    def fit(self, X: Any, y: Any) -> _CatBoostLike:
        self.classes_ = np.unique(y)
        return self


CatBoostClassifier = stand_in("catboost.core", "CatBoostClassifier", base=_CatBoostLike)


@pytest.fixture(scope="module")
def frame() -> tuple[pd.DataFrame, np.ndarray]:
    """A category of 12 values (its one-hot matrix is sparse), an integer, a float with blanks; a yes/no label."""
    rng = np.random.default_rng(4)
    n = 120
    X = pd.DataFrame(
        {
            "region": rng.choice([f"r{i}" for i in range(12)], n),
            "age": rng.integers(18, 80, n),
            "income": np.where(rng.random(n) < 0.1, np.nan, rng.normal(50, 15, n)),
        }
    )
    return X, np.where(rng.random(n) < 0.5, "yes", "no")


def prepare(**options: Any) -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("region", OneHotEncoder(handle_unknown="ignore"), ["region"]),
            ("numbers", SimpleImputer(), ["age", "income"]),
        ],
        **options,
    )


def test_a_booster_is_known_by_its_library_and_class_name() -> None:
    assert booster_of(XGBClassifier()) is BOOSTERS[0] and booster_of(LGBMClassifier()) is BOOSTERS[-1]
    assert booster_of(stand_in("mylib.models", "XGBClassifier")()) is None  # the name alone is not enough
    assert booster_of(_Fitted()) is None


def test_catboost_stays_on_scikit_learn_with_the_reason(frame: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = frame
    for model in (CatBoostClassifier().fit(X, y), Pipeline([("prepare", prepare()), ("boost", CatBoostClassifier())])):
        model.fit(X, y)
        features = describe_features(X, use=column_use(model, list(X.columns)))
        compiled = compile_to_onnx(model, features, X)
        assert compiled.onnx_bytes is None
        assert compiled.note == (
            "not converted to ONNX: CatBoostClassifier has no converter here: onnxmltools converts XGBoost and "
            "LightGBM, not CatBoost"
        )


def test_lightgbm_on_pandas_categories_is_refused_naming_them(frame: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = frame
    X = X.assign(region=X["region"].astype("category"))
    fitted = LGBMClassifier().fit(X, y)
    fitted.booster_ = type("Booster", (), {"pandas_categorical": [sorted(X["region"].cat.categories)]})()
    fitted.feature_name_ = list(X.columns)
    with pytest.raises(NotConvertible, match=r"LightGBM splits the pandas category columns \(region\) itself"):
        prepare_booster(fitted, X)
    # Fitted after a transformer, its columns have no names to give.
    assert lightgbm_categorical_reason(_Fitted(), X).startswith("LightGBM splits the pandas category columns itself")


def test_a_sparse_input_makes_xgboosts_zeros_missing_in_onnx(frame: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = frame
    model = Pipeline([("prepare", prepare()), ("boost", XGBClassifier())]).fit(X, y)
    assert sparse.issparse(model[:-1].transform(X))  # 12 one-hot columns and 2 numbers: a third are non-zero
    ready = copy.deepcopy(model)
    mark_sparse_zeros_missing(ready, model, X)
    assert [name for name, _ in ready.steps] == ["prepare", "onnx_zeros_as_missing", "boost"]
    assert [name for name, _ in model.steps] == ["prepare", "boost"]  # the notebook's model is left alone


def test_a_nested_pipeline_gets_it_before_its_own_final_booster(frame: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = frame
    inner = make_pipeline(StandardScaler(with_mean=False), XGBClassifier())
    model = Pipeline([("prepare", prepare()), ("inner", inner)]).fit(X, y)
    ready = copy.deepcopy(model)
    mark_sparse_zeros_missing(ready, model, X)
    assert [name for name, _ in ready.steps[-1][1].steps] == [
        "standardscaler",
        "onnx_zeros_as_missing",
        "xgbclassifier",
    ]


@pytest.mark.parametrize(
    ("booster", "options"),
    [(XGBClassifier, {"sparse_threshold": 0.0}), (LGBMClassifier, {})],
    ids=["xgboost-given-a-dense-matrix", "lightgbm-reads-sparse-zeros-as-zeros"],
)
def test_otherwise_the_pipeline_is_unchanged(
    frame: tuple[pd.DataFrame, np.ndarray], booster: type, options: dict[str, Any]
) -> None:
    X, y = frame
    model = Pipeline([("prepare", prepare(**options)), ("boost", booster())]).fit(X, y)
    ready = copy.deepcopy(model)
    mark_sparse_zeros_missing(ready, model, X)
    assert [name for name, _ in ready.steps] == ["prepare", "boost"]


@pytest.mark.parametrize("tensor", [DoubleTensorType, FloatTensorType])
def test_zeros_as_missing_computes_in_onnx_what_it_computes_in_numpy(tensor: type) -> None:
    X = np.array([[0.0, 1.5, np.nan], [2.0, 0.0, -0.0], [3.25, -1.0, 4.0]])
    step = ZerosAsMissing().fit(X)
    onnx_model = convert_sklearn(step, initial_types=[("x", tensor([None, 3]))])
    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    dtype = np.float64 if tensor is DoubleTensorType else np.float32
    (got,) = session.run(None, {"x": X.astype(dtype)})
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, step.transform(X))
    np.testing.assert_array_equal(step.transform(sparse.csr_matrix(np.nan_to_num(X))), np.where(X == 0, np.nan, X))


def test_onnxmltools_tree_operators_get_the_ml_opset_that_has_them() -> None:
    calls: list[dict[str, Any]] = []
    recording = type("Container", (), {"add_node": lambda self, *args, **attrs: calls.append(attrs), "opset": 21})()
    container = _MlOpsetContainer(recording)
    container.add_node("TreeEnsembleClassifier", ["x"], ["y"], op_domain="ai.onnx.ml")
    container.add_node("Cast", ["x"], ["y"], to=1)
    container.add_node("Normalizer", ["x"], ["y"], op_domain="ai.onnx.ml", op_version=1)
    assert [call.get("op_version") for call in calls] == [3, None, 1]
    assert container.opset == 21  # everything else is the container's own
