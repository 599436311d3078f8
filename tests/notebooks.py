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
