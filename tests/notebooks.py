"""Small notebooks written into tmp_path, each breaking the training contract in one way."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

LOAD_IRIS = """\
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
iris = load_iris(as_frame=True)
X = iris.data.set_axis(["sepal_length", "sepal_width", "petal_length", "petal_width"], axis=1)
y = iris.target_names[iris.target]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=1)
"""

FIT_FOREST = """\
from sklearn.ensemble import RandomForestClassifier
model = RandomForestClassifier(n_estimators=20, random_state=1).fit(X_train, y_train)
"""


def write_notebook(folder: Path, name: str, *sources: str) -> Path:
    """A notebook of a title cell and one code cell per source."""
    notebook = new_notebook(
        cells=[new_markdown_cell(f"# {name}"), *(new_code_cell(s) for s in sources)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    path = folder / f"{name}.ipynb"
    nbformat.write(notebook, path)
    return path


def good(folder: Path) -> Path:
    return write_notebook(folder, "good", LOAD_IRIS, FIT_FOREST)


def cell_error(folder: Path) -> Path:
    return write_notebook(folder, "cell_error", LOAD_IRIS, "raise ValueError('the data file moved')", FIT_FOREST)


def no_model(folder: Path) -> Path:
    return write_notebook(folder, "no_model", LOAD_IRIS, FIT_FOREST.replace("model =", "clf ="))


def low_accuracy(folder: Path) -> Path:
    return write_notebook(
        folder,
        "low_accuracy",
        LOAD_IRIS,
        "from sklearn.dummy import DummyClassifier\n"
        "model = DummyClassifier(strategy='most_frequent').fit(X_train, y_train)",
    )


def regressor(folder: Path) -> Path:
    return write_notebook(
        folder,
        "regressor",
        LOAD_IRIS,
        "from sklearn.linear_model import LinearRegression\n"
        "model = LinearRegression().fit(X_train, range(len(X_train)))",
    )


def unfitted(folder: Path) -> Path:
    return write_notebook(
        folder,
        "unfitted",
        LOAD_IRIS,
        "from sklearn.ensemble import RandomForestClassifier\nmodel = RandomForestClassifier()",
    )


def numpy_features(folder: Path) -> Path:
    return write_notebook(folder, "numpy_features", LOAD_IRIS, FIT_FOREST, "X_train = X_train.to_numpy()")


# A small data set with every kind of column the service takes: floats with blanks, integers, a nullable
# integer, booleans, text in pandas' default str dtype with a blank, a category dtype; a yes/no label.
LOAD_MIXED = """\
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
rng = np.random.default_rng(3)
n = 600
tenure = rng.integers(0, 72, n)
frame = pd.DataFrame({
    "tenure": tenure,
    "charges": np.where(rng.random(n) < 0.05, np.nan, rng.normal(70, 20, n).round(2)),
    "visits": pd.array(np.where(rng.random(n) < 0.05, None, rng.integers(0, 9, n)), dtype="Int64"),
    "senior": rng.random(n) < 0.2,
    "contract": pd.Series(rng.choice(["month", "year", "two_years"], n, p=[0.5, 0.3, 0.2])),
    "payment": pd.Series(np.where(rng.random(n) < 0.05, None, rng.choice(["card", "check", "bank"], n)), dtype="str"),
    "region": pd.Categorical(rng.choice(["north", "south"], n)),
})
risk = -1 + 1.8 * (frame["contract"] == "month") - tenure / 30 + frame["senior"] * 0.8
y = np.where(rng.random(n) < 1 / (1 + np.exp(-risk)), "yes", "no")
X_train, X_test, y_train, y_test = train_test_split(frame, y, test_size=0.25, stratify=y, random_state=1)
"""

FIT_MIXED = """\
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
model = Pipeline([
    ("prepare", ColumnTransformer([
        ("numbers", numbers, ["tenure", "charges", "visits"]),
        ("flags", "passthrough", ["senior"]),
        ("text", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
         ["contract", "payment", "region"]),
    ])),
    ("classify", LogisticRegression(max_iter=1000)),
]).fit(X_train, y_train)
model_card = {
    "title": "Mixed example",
    "features": {"tenure": {"unit": "months", "description": "months as a customer"}},
}
"""

# The churn course's style: preprocessing fitted apart from the model, on records of the raw frames.
FIT_DICT_VECTORIZER = """\
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression
df_train = X_train[["tenure", "charges", "contract"]].fillna({"charges": 70.0})
df_test = X_test[["tenure", "charges", "contract"]].fillna({"charges": 70.0})
dv = DictVectorizer(sparse=False)
features_train = dv.fit_transform(df_train.to_dict(orient="records"))
model = LogisticRegression(max_iter=1000).fit(features_train, y_train)
"""


def mixed(folder: Path) -> Path:
    return write_notebook(folder, "mixed", LOAD_MIXED, FIT_MIXED)


def dict_vectorizer(folder: Path) -> Path:
    return write_notebook(folder, "dict_vectorizer", LOAD_MIXED, FIT_DICT_VECTORIZER)


def boolean_labels(folder: Path) -> Path:
    return write_notebook(
        folder, "boolean_labels", LOAD_IRIS, "y_train = y_train == 'setosa'\ny_test = y_test == 'setosa'", FIT_FOREST
    )


def integer_labels(folder: Path) -> Path:
    codes = "y_train = (y_train == 'virginica').astype(int)\ny_test = (y_test == 'virginica').astype(int)"
    return write_notebook(folder, "integer_labels", LOAD_IRIS, codes, FIT_FOREST)


# A model that uses only the four measurements, so a column it ignores can be of any type.
FIT_ON_MEASUREMENTS = """\
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
measurements = ColumnTransformer([("keep", "passthrough", FEATURES)])
model = Pipeline([("select", measurements), ("forest", RandomForestClassifier(n_estimators=20, random_state=1))])
model.fit(X_train, y_train)
"""


ADD_DAY = (
    "import pandas as pd\n"
    "X_train = X_train.assign(day=pd.Timestamp('2026-01-01'))\n"
    "X_test = X_test.assign(day=pd.Timestamp('2026-01-02'))"
)


READ_EVERY_COLUMN = (
    "from sklearn.ensemble import RandomForestClassifier\n"
    "from sklearn.pipeline import make_pipeline\n"
    "from sklearn.preprocessing import FunctionTransformer\n"
    "def measurements(frame):\n"
    "    return frame.drop(columns='day')\n"
    "forest = RandomForestClassifier(n_estimators=20, random_state=1)\n"
    "model = make_pipeline(FunctionTransformer(measurements), forest)\n"
    "model.fit(X_train, y_train)"
)


def datetime_column(folder: Path) -> Path:
    """A date the model may read: its first step is the notebook's own function, which sees every column."""
    return write_notebook(folder, "datetime_column", LOAD_IRIS, ADD_DAY, READ_EVERY_COLUMN)


def dropped_odd_columns(folder: Path) -> Path:
    """A date, lists and dicts beside the measurements, which the ColumnTransformer never selects."""
    odd = (
        "X_train = X_train.assign(tags=[['a', 'b']] * len(X_train), meta=[{'k': 1}] * len(X_train))\n"
        "X_test = X_test.assign(tags=[['c']] * len(X_test), meta=[{'k': 2}] * len(X_test))"
    )
    return write_notebook(folder, "dropped_odd_columns", LOAD_IRIS, ADD_DAY, odd, FIT_ON_MEASUREMENTS)


def mixed_object_column(folder: Path) -> Path:
    add = (
        "X_train = X_train.assign(code=[1 if i % 2 else 'a' for i in range(len(X_train))])\n"
        "X_test = X_test.assign(code='a')"
    )
    fit = READ_EVERY_COLUMN.replace("columns='day'", "columns='code'")
    return write_notebook(folder, "mixed_object_column", LOAD_IRIS, add, fit)


def raises_on_a_row(folder: Path) -> Path:
    # The square root of a negative width is NaN, which logistic regression refuses.
    fails = """\
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
model = make_pipeline(FunctionTransformer(np.sqrt), LogisticRegression(max_iter=500)).fit(X_train, y_train)
X_test = X_test.copy()
X_test.iloc[3, 1] = -1.0
"""
    return write_notebook(folder, "raises_on_a_row", LOAD_IRIS, fails)


# The notebook's own function and class inside the model, as most real notebooks have one of each.
OWN_CODE = """\
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

def add_ratios(frame):
    return frame.assign(petal_ratio=frame["petal_length"] / frame["petal_width"])

class ClipOutliers(BaseEstimator, TransformerMixin):
    def __init__(self, quantile=0.01):
        self.quantile = quantile
    def fit(self, X, y=None):
        self.low_, self.high_ = np.quantile(X, self.quantile, axis=0), np.quantile(X, 1 - self.quantile, axis=0)
        return self
    def transform(self, X):
        return np.clip(X, self.low_, self.high_)

model = make_pipeline(FunctionTransformer(add_ratios), ClipOutliers(), LogisticRegression(max_iter=1000))
model.fit(X_train, y_train)
"""


def own_code(folder: Path) -> Path:
    return write_notebook(folder, "own_code", LOAD_IRIS, OWN_CODE)


def helper_module(folder: Path) -> Path:
    """A function imported from a module beside the notebook: the kernel has it, nothing else does."""
    (folder / "iris_helpers.py").write_text("def double(frame):\n    return frame * 2\n")
    uses = (
        "from iris_helpers import double\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.pipeline import make_pipeline\n"
        "from sklearn.preprocessing import FunctionTransformer\n"
        "model = make_pipeline(FunctionTransformer(double), LogisticRegression(max_iter=500)).fit(X_train, y_train)"
    )
    return write_notebook(folder, "helper_module", LOAD_IRIS, uses)


GRID_SEARCH = """\
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
search = GridSearchCV(
    make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
    {"logisticregression__C": [0.1, 1.0, 10.0]},
    cv=3,
    scoring="accuracy",
    refit=REFIT,
)
model = search.fit(X_train, y_train)
"""


def grid_search(folder: Path) -> Path:
    return write_notebook(folder, "grid_search", LOAD_IRIS, GRID_SEARCH.replace("REFIT", "True"))


def grid_search_without_refit(folder: Path) -> Path:
    return write_notebook(folder, "grid_search_without_refit", LOAD_IRIS, GRID_SEARCH.replace("REFIT", "False"))


def no_probabilities(folder: Path) -> Path:
    fit = (
        "from sklearn.pipeline import make_pipeline\n"
        "from sklearn.preprocessing import StandardScaler\n"
        "from sklearn.svm import LinearSVC\n"
        "model = make_pipeline(StandardScaler(), LinearSVC()).fit(X_train, y_train)"
    )
    return write_notebook(folder, "no_probabilities", LOAD_IRIS, fit)


def bad_card_variable(folder: Path) -> Path:
    return write_notebook(
        folder, "bad_card_variable", LOAD_IRIS, FIT_FOREST, "model_card = {'features': {'colour': {}}}"
    )


def strict_encoder(folder: Path) -> Path:
    """The mixed data with an encoder that refuses what it never saw (OneHotEncoder's default)."""
    strict = FIT_MIXED.replace('OneHotEncoder(handle_unknown="ignore")', "OneHotEncoder()")
    return write_notebook(folder, "strict_encoder", LOAD_MIXED, strict)


LOAD_REVIEWS = """\
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
rng = np.random.default_rng(7)
good = ["works well", "great value", "love it", "sturdy and fast", "exactly as described"]
bad = ["broke quickly", "waste of money", "arrived damaged", "too slow", "stopped working"]
filler = ["for my kitchen", "after a week", "as a gift", "on day one", "for the price", "out of the box"]
n = 600
liked = rng.random(n) < 0.5
text = [f"{rng.choice(good if l else bad)} {rng.choice(filler)} #{i}" for i, l in enumerate(liked)]
X = pd.DataFrame({
    "order_ref": [f"ORD-{i:05d}" for i in range(n)],
    "note": text,
    "shop": rng.choice(["north", "south", "east"], n),
    "price": rng.uniform(5, 80, n).round(2),
})
y = np.where(liked ^ (rng.random(n) < 0.05), "liked", "disliked")
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=1)
"""

FIT_REVIEWS = """\
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
prep = ColumnTransformer(
    [("words", TfidfVectorizer(), "note"), ("shop", OneHotEncoder(handle_unknown="ignore"), ["shop"]),
     ("price", "passthrough", ["price"])],
    remainder="drop",
)
model = Pipeline([("prep", prep), ("clf", LogisticRegression(max_iter=1000))]).fit(X_train, y_train)
"""


def reviews(folder: Path) -> Path:
    """Free text read by a vectorizer, an order reference the ColumnTransformer drops, a category and a price."""
    return write_notebook(folder, "reviews", LOAD_REVIEWS, FIT_REVIEWS)


def reviews_declaring_a_read_column(folder: Path) -> Path:
    """The reviews, with `model_card` calling the price (which the model reads) unused."""
    return write_notebook(folder, "reviews_declared", LOAD_REVIEWS, FIT_REVIEWS, "model_card = {'unused': ['price']}")


ENCODE_LABELS = """\
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import LabelEncoder
label_encoder = LabelEncoder().fit(y_train)
y_train, y_test = label_encoder.transform(y_train), label_encoder.transform(y_test)
model = LogisticRegression(max_iter=1000).fit(X_train, y_train)
"""


def encoded_labels(folder: Path) -> Path:
    """Labels coded 0..k-1 with a LabelEncoder, as XGBoost needs them, the encoder left as `label_encoder`."""
    return write_notebook(folder, "encoded_labels", LOAD_IRIS, ENCODE_LABELS)


def encoder_of_other_labels(folder: Path) -> Path:
    """A `label_encoder` left beside labels it did not code."""
    fit = ENCODE_LABELS.replace(
        "y_train, y_test = label_encoder.transform(y_train), label_encoder.transform(y_test)\n", ""
    )
    return write_notebook(folder, "encoder_of_other_labels", LOAD_IRIS, fit)


def needs_a_training_only_package(folder: Path) -> Path:
    """A pipeline step from a package the training step has but a served model would not (skl2onnx)."""
    fit = (
        "from skl2onnx.sklapi import CastTransformer\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.pipeline import make_pipeline\n"
        "model = make_pipeline(CastTransformer(), LogisticRegression(max_iter=500)).fit(X_train, y_train)"
    )
    return write_notebook(folder, "needs_a_training_only_package", LOAD_IRIS, fit)
