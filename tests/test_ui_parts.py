"""The UI's parts without a server: the form by kind, CSV reading with clear errors, the card tables, the picture."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest
from gradio.utils import get_upload_folder

from modelcard.card import ModelCard
from modelcard.schema import features_model
from runtime.predictor import Predictor
from tests.fakes import CHURN_ROW, CONTRACTS, FEATURES, SETOSA, FixedRuntime, make_card, make_churn_card, table_of
from ui.app import ModelSummary, build_ui
from ui.batch import BatchFileError, read_batch_csv
from ui.card_view import confusion_table, feature_table, metrics_table, per_class_table
from ui.files import UiFiles
from ui.form import BLANK, FormError, element_id, form_inputs, read_form
from ui.picture import (
    MIN_ROWS_PER_CELL,
    most_telling_choice,
    most_telling_pair,
    training_cells,
    training_scatter,
    what_if,
)

HEADER = ",".join(FEATURES)
CHURN_HEADER = "tenure,monthlycharges,totalcharges,seniorcitizen,contract,paymentmethod"


def read(tmp_path: Path, text: str, card: ModelCard | None = None, max_rows: int = 10):
    path = tmp_path / "upload.csv"
    path.write_text(text)
    card = card or make_card()
    return read_batch_csv(path, features_model(card), card.features, max_rows)


def test_reads_rows_and_keeps_other_columns(tmp_path: Path) -> None:
    frame, records = read(tmp_path, f"id,{HEADER}\nx1,5.1,3.5,1.4,0.2\nx2,6.7,3,5.2,2.3\n")
    assert list(frame["id"]) == ["x1", "x2"]
    assert [r["petal_width"] for r in records] == [0.2, 2.3]


def test_columns_in_any_order_with_spaces(tmp_path: Path) -> None:
    _, records = read(tmp_path, "petal_width, petal_length, sepal_width, sepal_length\n0.2, 1.4, 3.5, 5.1\n")
    assert records[0]["sepal_length"] == 5.1


def test_categories_are_text_and_empty_cells_are_blanks(tmp_path: Path) -> None:
    text = f"{CHURN_HEADER}\n12,70.5,,no,month-to-month,\n60,20,1200.5,yes,two_year,credit_card\n"
    _, records = read(tmp_path, text, make_churn_card())
    assert records[0] == {**CHURN_ROW, "paymentmethod": None}
    assert records[1]["seniorcitizen"] is True and records[1]["tenure"] == 60 and records[1]["totalcharges"] == 1200.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sepal_length,sepal_width\n1,2\n", "Missing column(s): petal_length, petal_width"),
        (f"{HEADER}\n", "no rows"),
        (f"{HEADER}\n5.1,3.5,1.4,0.2\n5.1,,1.4,0.2\n", "Row 2, column sepal_width: '': Field required"),
        (f"{HEADER}\n5.1,3.5,1.4,wide\n", "Row 1, column petal_width: 'wide' is not a number"),
        (f"{HEADER}\n5.1,3.5,1.4,nan\n", "Row 1, column petal_width: 'nan'"),
        (f"{HEADER}\n5.1,3.5,1.4,-9\n", "Row 1, column petal_width: '-9': Input should be greater than or equal to -5"),
        (f"{HEADER}\n" + "5.1,3.5,1.4,0.2\n" * 11, "The file has 11 rows; at most 10"),
        ("", "Could not read the file as CSV"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(BatchFileError) as caught:
        read(tmp_path, text)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("12,70.5,,no,weekly,", "Row 1, column contract: 'weekly': Input should be 'month-to-month'"),
        ("12.5,70.5,,no,two_year,", "Row 1, column tenure: '12.5' is not a whole number"),
        ("12,70.5,,maybe,two_year,", "Row 1, column seniorcitizen: 'maybe' is not true or false"),
        (",70.5,,no,two_year,", "Row 1, column tenure: '': Field required"),
    ],
)
def test_bad_mixed_files_name_row_and_column(tmp_path: Path, row: str, message: str) -> None:
    with pytest.raises(BatchFileError) as caught:
        read(tmp_path, f"{CHURN_HEADER}\n{row}\n", make_churn_card())
    assert message in str(caught.value)


def test_the_form_has_the_right_input_for_each_kind() -> None:
    inputs = {field.spec.name: field for field in form_inputs(make_churn_card().features)}
    with gr.Blocks():
        kinds = {name: type(field.component(CHURN_ROW[name])).__name__ for name, field in inputs.items()}
        tenure = inputs["tenure"].component(12)
        contract = inputs["contract"].component("two_year")
        payment = inputs["paymentmethod"].component(None)
    assert kinds == {
        "tenure": "Slider",
        "monthlycharges": "Slider",
        "totalcharges": "Number",  # blanks accepted: a box that may stay empty
        "seniorcitizen": "Checkbox",
        "contract": "Dropdown",
        "paymentmethod": "Dropdown",
    }
    assert tenure.step == 1 and (tenure.minimum, tenure.maximum) == (0, 72)
    assert [c[0] for c in contract.choices] == list(CONTRACTS)
    assert BLANK in [c[0] for c in payment.choices] and payment.value == BLANK


def test_reading_the_form_gives_api_values_and_names_a_missing_one() -> None:
    inputs = form_inputs(make_churn_card().features)
    values = [12.0, 70.5, None, False, "month-to-month", BLANK]
    assert read_form(inputs, values) == {**CHURN_ROW, "paymentmethod": None}
    with pytest.raises(FormError, match="Fill in contract"):
        read_form(inputs, [12.0, 70.5, None, False, None, BLANK])
    with pytest.raises(FormError, match="whole number"):
        read_form(inputs, [12.5, 70.5, None, False, "two_year", BLANK])


def test_element_ids_are_safe_for_any_feature_name() -> None:
    assert element_id("petal_length") == "input-petal_length"
    assert element_id("monthly charges (€)") == "input-monthly-charges----"


def test_card_tables() -> None:
    card = make_card()
    assert per_class_table(card)["class"].tolist() == card.class_names
    assert confusion_table(card).iloc[1].tolist() == ["versicolor", 0, 10, 0]
    assert feature_table(card)["accepted"].iloc[0] == "-5 to 13"
    churn = feature_table(make_churn_card()).set_index("feature")
    assert churn.loc["contract", "accepted"] == "one of the 3 values seen"
    assert churn.loc["paymentmethod", "accepted"] == "one of the 4 values seen; or blank"
    assert churn.loc["tenure", "accepted"] == "whole numbers -72 to 144"
    metrics = metrics_table(make_churn_card()).set_index("metric")
    assert metrics.loc["ROC AUC (of yes)", "gate"] == "≥ 0.8"


def test_most_telling_pair_prefers_separating_features() -> None:
    rows = [
        {"sepal_length": 5.0 + i % 3 * 0.1, "sepal_width": 3.0, "petal_length": p, "petal_width": p / 3, "label": c}
        for i in range(9)
        for c, p in (("setosa", 1.4), ("versicolor", 4.3), ("virginica", 5.8))
    ]
    card = make_card().model_copy(update={"reference": rows})
    assert set(most_telling_pair(card) or ()) == {"petal_length", "petal_width"}


def test_the_scatter_leaves_blanks_out_and_marks_the_row() -> None:
    card = make_churn_card()
    rows = [{**card.reference[0], "tenure": 10 + i % 2, "totalcharges": 100.0 + i % 2, "label": "no"} for i in range(6)]
    blank = {**card.reference[0], "totalcharges": None}
    many = card.model_copy(update={"reference": [*rows, blank]})
    pair = ("tenure", "totalcharges")
    picture = training_scatter(training_cells(many, pair), pair, {**CHURN_ROW, "totalcharges": 500.0})
    assert picture["class"].tolist() == ["no", "no", "this row"]  # two cells of three rows; the blank left out
    assert picture.iloc[-1]["totalcharges"] == 500.0


def test_the_scatter_never_shows_a_training_row() -> None:
    """Cells of at least MIN_ROWS_PER_CELL rows, drawn at their centres: a row alone in its cell is not shown."""
    card = make_churn_card()
    crowd = [{**card.reference[0], "tenure": 10, "totalcharges": 100.0, "label": "no"}] * MIN_ROWS_PER_CELL
    alone = {**card.reference[0], "tenure": 70, "totalcharges": 9000.0, "label": "yes"}
    picture = training_cells(card.model_copy(update={"reference": [*crowd, alone]}), ("tenure", "totalcharges"))
    assert picture["class"].tolist() == ["no"]
    assert (picture["tenure"].iloc[0], picture["totalcharges"].iloc[0]) != (10, 100.0)  # a cell's centre


def test_with_fewer_than_two_numbers_the_picture_is_what_if_by_category() -> None:
    card = make_churn_card()
    few = card.model_copy(update={"features": [f for f in card.features if f.name in ("tenure", "contract")]})
    assert most_telling_pair(few) is None
    choice = most_telling_choice(few)
    assert choice is not None and choice.name == "contract"
    predictor = Predictor("m", few, FixedRuntime([0.4, 0.6]))
    bars = what_if(
        few,
        choice,
        {"tenure": 12, "contract": "two_year"},
        lambda r: predictor.predict(table_of(predictor.card.features, r)),
    )
    assert sorted(set(bars["contract"])) == sorted(CONTRACTS)
    assert len(bars) == len(CONTRACTS) * 2 and set(bars["class"]) == {"no", "yes"}


@pytest.mark.parametrize("make", [make_card, make_churn_card])
def test_build_ui_wires_the_predictor_for_any_card(make, tmp_path: Path) -> None:  # noqa: ANN001
    card = make()
    predictor = Predictor("m:v1", card, FixedRuntime([0.8, 0.1, 0.1][: len(card.class_names)]))
    predict = lambda records: predictor.predict(table_of(predictor.card.features, records))  # noqa: E731
    files = UiFiles(tmp_path, max_age_s=60)
    blocks = build_ui(card, ModelSummary("m:v1", "2026-01-01T00:00:00", "fixed"), predict, 10, files)
    api = {dep["api_name"] for dep in blocks.config["dependencies"] if dep.get("api_name")}
    assert {"predict", "predict_csv"} <= api
    # Every word the page shows, not the paths of its files (a served UI's folder is named after its service).
    text = str(blocks.config).replace(get_upload_folder(), "").replace(str(tmp_path), "")
    assert card.title in text
    if make is make_churn_card:
        for word in ("flower", "species", "cm", "sepal", "petal", "iris"):
            assert word not in text.lower().replace("/ui/", ""), word  # every word the UI shows comes from the card
    assert predict([SETOSA if make is make_card else CHURN_ROW])[0].class_name == card.class_names[0]


def test_the_card_tab_names_a_search_and_the_notebooks_own_code() -> None:
    from modelcard.card import SearchSummary
    from ui.app import _search_line

    card = make_churn_card()
    assert _search_line(card) == ""
    search = SearchSummary(
        search="sklearn.model_selection._search.GridSearchCV",
        best_params={"classify__C": 1.0},
        best_score=0.8312,
        scoring="roc_auc",
        candidates=6,
    )
    line = _search_line(card.model_copy(update={"search": search}))
    assert "`GridSearchCV` over 6 candidates: classify__C=1.0, cross-validated roc_auc 0.8312" in line
