"""The pipeline shapes notebooks are written in, each through the real compile step: ONNX kept, or why not.

One small frame with every kind of column (floats and a nullable integer with blanks, numpy integers, a flag,
text in pandas' default str dtype with blanks, a category, a column of short sentences) and one entry per shape
in SHAPES, pinning what `compile_to_onnx` makes of it: ONNX within the gate's tolerance, or scikit-learn and
the phrase of the card's note that names the reason. Every fallback here is one skl2onnx 1.20 cannot convert,
or converts into different answers that the parity gate refuses.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    StackingClassifier,
    VotingClassifier,
)
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    KBinsDiscretizer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    RobustScaler,
    StandardScaler,
)
from sklearn.svm import SVC, LinearSVC

from modelcard.card import FeatureSpec
from runtime.table import FeatureTable
from train.columnuse import column_use
from train.compile import PROBABILITY_TOLERANCE, CompiledModel, class_changes, compile_to_onnx, run_onnx
from train.features import describe_features

FLOATS, INTEGERS, FLAGS = ["income", "spend"], ["age", "visits", "children"], ["member"]
TEXT, CATEGORY, SENTENCES = ["city", "plan"], ["colour"], "comment"
TRAIN_ROWS, ROWS = 240, 300
KEPT = "ONNX parity held on 300 rows"
PARITY_FAILED = "ONNX parity failed on 300 rows"
INFREQUENT = "ONNX conversion failed: NotImplementedError: Infrequent categories are not implemented"


def shapes_frame(seed: int = 11, rows: int = ROWS) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Every kind of column a notebook hands over, with blanks where people have them; a binary and a 3-class label."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 15, rows).round(2)
    income[rng.random(rows) < 0.1] = np.nan
    spend = rng.gamma(2.0, 30.0, rows).round(2)
    spend[rng.random(rows) < 0.05] = np.nan
    city = rng.choice(["paris", "lyon", "nice", "lille", "brest"], rows, p=[0.4, 0.3, 0.17, 0.08, 0.05]).astype(object)
    city[rng.random(rows) < 0.1] = np.nan
    # Capitals, punctuation, one-letter words and accents: what the ONNX tokenizer must split as scikit-learn does.
    mood = rng.choice(["Great", "good", "OK", "slow", "Terrible", "late", "Génial"], rows)
    subject = rng.choice(["service", "delivery", "support", "price", "app", "café"], rows)
    ending = rng.choice(["would buy again!", "never again.", "fine", "so-so", "thanks, team", "I am a FAN"], rows)
    frame = pd.DataFrame(
        {
            "income": income,
            "spend": spend,
            "age": rng.integers(18, 80, rows),
            "visits": rng.poisson(3, rows),
            "children": pd.array(np.where(rng.random(rows) < 0.1, None, rng.integers(0, 4, rows)), dtype="Int64"),
            "member": rng.random(rows) < 0.4,
            "city": pd.Series(city).astype("str"),  # pandas' default text dtype; the blanks stay NaN
            "plan": pd.Series(rng.choice(["basic", "pro", "team"], rows)),
            "colour": pd.Categorical(rng.choice(["red", "green", "blue"], rows)),
            "comment": pd.Series([f"{m} {s}, {e}" for m, s, e in zip(mood, subject, ending, strict=True)]),
        }
    )
    score = (
        np.nan_to_num(income, nan=50) / 15
        + frame.age / 20
        + frame.member
        + (frame.plan == "pro")
        + np.isin(mood, ["Great", "good", "Génial"])
        - (frame.city == "lille")
        + rng.normal(0, 1, rows)
    )
    labels = {
        "binary": np.where(score > score.median(), "yes", "no"),
        "three": np.array(["low", "mid", "high"])[np.digitize(score, score.quantile([1 / 3, 2 / 3]))],
    }
    return frame, labels


@dataclass(frozen=True)
class Shape:
    """A notebook's model: how it is built, the columns it is given, its label, and the compile outcome pinned."""

    build: Callable[[], Any]
    columns: list[str] | None = None  # None: every column of the frame
    label: str = "binary"
    note: str = KEPT  # how the card's note starts: KEPT, or the reason scikit-learn serves it


def numbers(*steps: Any) -> Pipeline:
    """The usual number group: median for blanks, then `steps` (standard scaling by default)."""
    return make_pipeline(SimpleImputer(strategy="median"), *(steps or (StandardScaler(),)))


def text(encoder: Any = None) -> Pipeline:
    """The usual text group: the most frequent value for blanks, then one-hot (unseen values ignored)."""
    return make_pipeline(SimpleImputer(strategy="most_frequent"), encoder or OneHotEncoder(handle_unknown="ignore"))


def prepared(classifier: Any) -> Pipeline:
    """The notebook pattern: numbers imputed and scaled, flags passed, text imputed and one-hot encoded."""
    columns = ColumnTransformer(
        [("numbers", numbers(), FLOATS + INTEGERS), ("flags", "passthrough", FLAGS), ("text", text(), TEXT + CATEGORY)]
    )
    return Pipeline([("prepare", columns), ("classify", classifier)])


def logistic(*transformers: tuple[str, Any, Any], remainder: str = "drop") -> Pipeline:
    """A ColumnTransformer of `transformers` in front of a logistic regression."""
    return make_pipeline(ColumnTransformer(list(transformers), remainder=remainder), LogisticRegression(max_iter=1000))


def forest(*transformers: tuple[str, Any, Any]) -> Pipeline:
    """A ColumnTransformer of `transformers` in front of a small random forest."""
    return make_pipeline(ColumnTransformer(list(transformers)), RandomForestClassifier(n_estimators=30, random_state=0))


def imputed_floats(strategy: str) -> Pipeline:
    return logistic(
        ("floats", make_pipeline(SimpleImputer(strategy=strategy), StandardScaler()), FLOATS),
        ("integers", StandardScaler(), ["age", "visits"]),
        ("text", OneHotEncoder(handle_unknown="ignore"), ["plan", *CATEGORY]),
    )


def imputed_integers(strategy: str) -> Pipeline:
    return logistic(
        ("integers", make_pipeline(SimpleImputer(strategy=strategy), StandardScaler()), INTEGERS),
        ("text", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
    )


def imputed_text(strategy: str) -> Pipeline:
    fill = {"fill_value": "missing"} if strategy == "constant" else {}
    return logistic(
        ("integers", StandardScaler(), ["age"]),
        ("flags", "passthrough", FLAGS),
        ("text", make_pipeline(SimpleImputer(strategy=strategy, **fill), OneHotEncoder(handle_unknown="ignore")), TEXT),
    )


def one_hot(**options: Any) -> Pipeline:
    """Numbers as usual, text (blanks imputed) one-hot encoded with `options`."""
    return logistic(("numbers", numbers(), FLOATS + ["age"]), ("text", text(OneHotEncoder(**options)), TEXT + CATEGORY))


def words(vectorizer: Any) -> Pipeline:
    """The sentences vectorized, the flag passed through."""
    return logistic(("words", vectorizer, SENTENCES), ("flags", "passthrough", FLAGS))


def nested() -> Pipeline:
    """Pipelines three deep: a Pipeline inside a ColumnTransformer inside a Pipeline inside the model's Pipeline."""
    scale = Pipeline([("impute", SimpleImputer(strategy="mean")), ("inner", Pipeline([("scale", StandardScaler())]))])
    columns = ColumnTransformer([("numbers", scale, FLOATS + INTEGERS), ("text", text(), TEXT)])
    return Pipeline([("prepare", Pipeline([("columns", columns)])), ("classify", LogisticRegression(max_iter=1000))])


STRATEGIES = ("mean", "median", "most_frequent", "constant")
SHAPES: dict[str, Shape] = {
    **{f"impute_{s}_floats": Shape(functools.partial(imputed_floats, s)) for s in STRATEGIES},
    **{f"impute_{s}_integers": Shape(functools.partial(imputed_integers, s)) for s in STRATEGIES},
    **{f"impute_{s}_text": Shape(functools.partial(imputed_text, s)) for s in ("most_frequent", "constant")},
    "impute_median_pandas_na_integers": Shape(
        lambda: logistic(
            (
                "integers",
                make_pipeline(SimpleImputer(strategy="median", missing_values=pd.NA), StandardScaler()),
                INTEGERS,
            ),
            (
                "text",
                make_pipeline(SimpleImputer(strategy="most_frequent", missing_values=pd.NA), OneHotEncoder()),
                TEXT,
            ),
        )
    ),
    "impute_median_add_indicator": Shape(  # skl2onnx's imputer has no missing-indicator columns
        lambda: logistic(
            ("numbers", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), FLOATS)
        ),
        note="ONNX conversion failed: RuntimeError: Unable Mismatch between expected shape [None, 2] and model (., 4)",
    ),
    "numbers_only_no_column_transformer": Shape(
        lambda: make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression()),
        columns=FLOATS + INTEGERS + FLAGS,
    ),
    "column_selector_by_dtype": Shape(
        lambda: logistic(
            ("numbers", numbers(), make_column_selector(dtype_include="number")),
            ("text", text(), make_column_selector(dtype_include=["str", "category"])),
        ),
        columns=FLOATS + INTEGERS + FLAGS + TEXT + CATEGORY,
    ),
    "ordinal_encoder_forest": Shape(
        lambda: forest(
            ("numbers", SimpleImputer(strategy="median"), FLOATS + INTEGERS),
            ("text", text(OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)), TEXT + CATEGORY),
        )
    ),
    # scikit-learn encodes a blank NaN (its encoded_missing_value), skl2onnx the text "nan" as the last category
    # and a blank "" as unknown (-1): the boosting sends those rows down another branch.
    "ordinal_encoder_blanks_hist_boosting": Shape(
        lambda: make_pipeline(
            ColumnTransformer(
                [
                    ("numbers", "passthrough", [*FLOATS, "age", "visits"]),  # blanks and all: the boosting takes NaN
                    ("text", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), TEXT + CATEGORY),
                ]
            ),
            HistGradientBoostingClassifier(max_iter=20, random_state=0),
        ),
        note=PARITY_FAILED,
    ),
    "one_hot_blanks_as_a_category": Shape(
        lambda: logistic(("numbers", numbers(), FLOATS), ("text", OneHotEncoder(handle_unknown="ignore"), TEXT))
    ),
    "one_hot_drop_first": Shape(lambda: one_hot(drop="first")),
    # skl2onnx groups infrequent categories only when the encoder takes its columns one by one (straight from the
    # ColumnTransformer), not one matrix (after an imputer).
    "one_hot_min_frequency": Shape(lambda: one_hot(handle_unknown="ignore", min_frequency=20), note=INFREQUENT),
    "one_hot_max_categories": Shape(lambda: one_hot(handle_unknown="ignore", max_categories=3), note=INFREQUENT),
    "one_hot_infrequent_if_exist": Shape(
        lambda: one_hot(handle_unknown="infrequent_if_exist", min_frequency=20), note=INFREQUENT
    ),
    "one_hot_min_frequency_on_columns": Shape(
        lambda: logistic(
            ("numbers", numbers(), FLOATS),
            ("text", OneHotEncoder(handle_unknown="ignore", min_frequency=20), TEXT + CATEGORY),
        )
    ),
    "kbins_discretizer_onehot": Shape(
        lambda: logistic(
            ("bins", numbers(KBinsDiscretizer(n_bins=4, quantile_method="averaged_inverted_cdf")), FLOATS + ["age"]),
            ("text", text(), TEXT),
        )
    ),
    "kbins_discretizer_ordinal_forest": Shape(
        lambda: forest(
            ("bins", numbers(KBinsDiscretizer(n_bins=5, encode="ordinal", strategy="uniform")), FLOATS + INTEGERS),
            ("flags", "passthrough", FLAGS),
        )
    ),
    "polynomial_features": Shape(
        lambda: logistic(
            ("numbers", numbers(PolynomialFeatures(2), StandardScaler()), FLOATS + ["age"]), ("text", text(), TEXT)
        )
    ),
    "standard_minmax_robust_scalers": Shape(
        lambda: logistic(
            ("standard", numbers(StandardScaler()), FLOATS),
            ("minmax", MinMaxScaler(), ["age"]),
            ("robust", RobustScaler(), ["visits"]),
        )
    ),
    "function_transformer_log1p": Shape(
        lambda: logistic(("skewed", numbers(FunctionTransformer(np.log1p), StandardScaler()), ["spend", "visits"])),
        note="ONNX conversion failed: RuntimeError: FunctionTransformer is not supported unless the transform function",
    ),
    "tfidf_sentences": Shape(lambda: words(TfidfVectorizer())),
    "tfidf_bigrams": Shape(lambda: words(TfidfVectorizer(ngram_range=(1, 2), min_df=2))),
    # scikit-learn drops stop words before it makes bigrams; skl2onnx's StringNormalizer compares them with whole
    # sentences, so the ONNX bigrams still span them.
    "tfidf_bigrams_stop_words": Shape(
        lambda: words(TfidfVectorizer(ngram_range=(1, 2), stop_words="english")), note=PARITY_FAILED
    ),
    # scikit-learn's sublinear tf is 1 + log(tf); skl2onnx computes log(1 + tf), so train/compile.py converts it.
    "tfidf_sublinear_tf": Shape(lambda: words(TfidfVectorizer(sublinear_tf=True))),
    "hashing_sentences": Shape(
        lambda: words(HashingVectorizer(n_features=256)), note="ONNX conversion failed: MissingShapeCalculator"
    ),
    "count_sentences": Shape(
        lambda: logistic(
            ("words", CountVectorizer(), SENTENCES), ("text", text(), TEXT), ("numbers", numbers(), FLOATS)
        )
    ),
    "random_forest": Shape(lambda: prepared(RandomForestClassifier(n_estimators=30, random_state=0)), label="three"),
    "gradient_boosting": Shape(lambda: prepared(GradientBoostingClassifier(n_estimators=30, random_state=0))),
    "hist_gradient_boosting": Shape(
        lambda: prepared(HistGradientBoostingClassifier(max_iter=30, random_state=0)), label="three"
    ),
    "hist_gradient_boosting_raw_blanks": Shape(
        lambda: HistGradientBoostingClassifier(max_iter=30, random_state=0), columns=FLOATS + INTEGERS + FLAGS
    ),
    "svc_probability": Shape(lambda: prepared(SVC(probability=True, random_state=0))),
    "k_neighbors": Shape(lambda: prepared(KNeighborsClassifier(n_neighbors=7)), label="three"),
    "mlp": Shape(lambda: prepared(MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0))),
    "soft_voting": Shape(
        lambda: prepared(
            VotingClassifier(
                [
                    ("logistic", LogisticRegression(max_iter=1000)),
                    ("forest", RandomForestClassifier(n_estimators=20, random_state=0)),
                ],
                voting="soft",
            )
        ),
        label="three",
    ),
    "stacking": Shape(
        lambda: prepared(
            StackingClassifier(
                [
                    ("logistic", LogisticRegression(max_iter=1000)),
                    ("forest", RandomForestClassifier(n_estimators=20, random_state=0)),
                ],
                final_estimator=LogisticRegression(),
                cv=3,
            )
        )
    ),
    "calibrated_linear_svc": Shape(lambda: prepared(CalibratedClassifierCV(LinearSVC(), cv=3))),
    "nested_pipelines": Shape(nested),
    "remainder_passthrough": Shape(
        lambda: logistic(
            ("income", numbers(), ["income"]),
            ("text", OneHotEncoder(handle_unknown="ignore"), ["plan", *CATEGORY]),
            remainder="passthrough",
        ),
        columns=["income", "age", "visits", "member", "plan", *CATEGORY],
    ),
    "remainder_drop": Shape(
        lambda: logistic(("numbers", numbers(), ["income", "age"]), ("text", text(), ["plan"]), remainder="drop")
    ),
}


@dataclass(frozen=True)
class Compiled:
    """One shape fitted on the training rows, its features, and what compiling it against all rows made."""

    model: Any
    features: list[FeatureSpec]
    compiled: CompiledModel


@functools.cache
def compiled_shape(name: str) -> Compiled:
    """Fit the shape on the training rows and compile it against training and test rows, as training does."""
    shape = SHAPES[name]
    frame, labels = shapes_frame()
    X = frame if shape.columns is None else frame[shape.columns]
    X_train, X_test = X.iloc[:TRAIN_ROWS], X.iloc[TRAIN_ROWS:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and similar notices: not what is pinned here
        model = shape.build().fit(X_train, labels[shape.label][:TRAIN_ROWS])
        features = describe_features(X_train, use=column_use(model, [str(c) for c in X_train.columns]))
        return Compiled(model, features, compile_to_onnx(model, features, pd.concat([X_train, X_test])))


def probability_gap(model: Any, features: list[FeatureSpec], onnx_bytes: bytes, frame: pd.DataFrame) -> float:
    """The largest gap between the served ONNX path and scikit-learn fed the training dtypes, on `frame`'s rows."""
    table = FeatureTable.from_frame(features, frame[[spec.name for spec in features]])
    onnx = run_onnx(onnx_bytes, table)
    sklearn = np.asarray(model.predict_proba(table.to_frame(features)))
    assert class_changes(onnx, sklearn, PROBABILITY_TOLERANCE) == 0
    return float(np.abs(onnx - sklearn).max())


@pytest.mark.parametrize("name", list(SHAPES))
def test_each_shape_compiles_as_pinned(name: str) -> None:
    shape, outcome = SHAPES[name], compiled_shape(name)
    note = outcome.compiled.note
    assert note.startswith(shape.note), note
    assert (outcome.compiled.onnx_bytes is not None) is (shape.note == KEPT), note


@pytest.mark.parametrize("name", [name for name, shape in SHAPES.items() if shape.note == KEPT])
def test_kept_onnx_answers_new_rows_like_sklearn(name: str) -> None:
    # Rows the gate never saw, with blanks, through the table the service builds (sklearn fed its to_frame).
    outcome = compiled_shape(name)
    assert outcome.compiled.onnx_bytes is not None, outcome.compiled.note
    fresh, _ = shapes_frame(seed=12, rows=200)
    gap = probability_gap(outcome.model, outcome.features, outcome.compiled.onnx_bytes, fresh)
    assert gap <= PROBABILITY_TOLERANCE


def test_shapes_cover_what_notebooks_write() -> None:
    assert len(SHAPES) >= 22
    assert sum(shape.note == KEPT for shape in SHAPES.values()) >= 30
