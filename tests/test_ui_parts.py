"""The UI's parts without a server: CSV reading with clear errors, the card tables, and building the Blocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.predictor import Predictor
from serving.schemas import features_model
from tests.fakes import FEATURES, SETOSA, FixedRuntime, make_card
from ui.batch import BatchFileError, read_batch_csv
from ui.card_view import confusion_table, feature_table, most_telling_pair, per_class_table

HEADER = ",".join(FEATURES)


def read(tmp_path: Path, text: str, max_rows: int = 10):
    path = tmp_path / "upload.csv"
    path.write_text(text)
    card = make_card()
    return read_batch_csv(path, features_model(card), card.feature_names, max_rows)


def test_reads_rows_and_keeps_other_columns(tmp_path: Path) -> None:
    frame = read(tmp_path, f"id,{HEADER}\nx1,5.1,3.5,1.4,0.2\nx2,6.7,3,5.2,2.3\n")
    assert list(frame["id"]) == ["x1", "x2"]
    assert frame["petal_width"].tolist() == [0.2, 2.3]


def test_columns_in_any_order_with_spaces(tmp_path: Path) -> None:
    frame = read(tmp_path, "petal_width, petal_length, sepal_width, sepal_length\n0.2, 1.4, 3.5, 5.1\n")
    assert frame.loc[0, "sepal_length"] == 5.1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sepal_length,sepal_width\n1,2\n", "Missing column(s): petal_length, petal_width"),
        (f"{HEADER}\n", "no rows"),
        (f"{HEADER}\n5.1,3.5,1.4,0.2\n5.1,,1.4,0.2\n", "Row 2, column sepal_width: '' is not a number"),
        (f"{HEADER}\n5.1,3.5,1.4,wide\n", "Row 1, column petal_width: 'wide' is not a number"),
        (f"{HEADER}\n5.1,3.5,1.4,nan\n", "Row 1, column petal_width: 'nan'"),
        (f"{HEADER}\n5.1,3.5,1.4,0\n", "Row 1, column petal_width: '0': Input should be greater than 0"),
        (f"{HEADER}\n" + "5.1,3.5,1.4,0.2\n" * 11, "The file has 11 rows; at most 10"),
        ("", "Could not read the file as CSV"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(BatchFileError, match=None) as caught:
        read(tmp_path, text)
    assert message in str(caught.value)


def test_card_tables() -> None:
    card = make_card()
    assert per_class_table(card)["class"].tolist() == card.class_names
    assert confusion_table(card).iloc[1].tolist() == ["versicolor", 0, 9, 1]
    assert feature_table(card)["accepted"].iloc[0] == "> 0 and ≤ 70"


def test_most_telling_pair_prefers_separating_features() -> None:
    rows = [
        {"sepal_length": 5.0 + i % 3 * 0.1, "sepal_width": 3.0, "petal_length": p, "petal_width": p / 3, "label": c}
        for i in range(9)
        for c, p in (("setosa", 1.4), ("versicolor", 4.3), ("virginica", 5.8))
    ]
    card = make_card().model_copy(update={"reference": rows})
    assert set(most_telling_pair(card)) == {"petal_length", "petal_width"}


def test_build_ui_wires_the_predictor() -> None:
    from ui.app import ModelSummary, build_ui

    card = make_card()
    predictor = Predictor("iris_clf:v1", card, FixedRuntime([0.8, 0.1, 0.1]))
    blocks = build_ui(card, ModelSummary("iris_clf:v1", "2026-01-01T00:00:00", "fixed"), predictor.predict_records, 10)
    api = {dep["api_name"] for dep in blocks.config["dependencies"] if dep.get("api_name")}
    assert {"predict", "predict_csv"} <= api
    assert predictor.predict_records([SETOSA])[0].class_name == "setosa"
