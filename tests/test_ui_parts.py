"""The UI's parts without a server: the form by kind, CSV reading with clear errors, the card tables, the picture."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest
from gradio.utils import get_upload_folder
from pydantic import ValidationError

from modelcard.card import FeatureKind, FeatureSpec, ModelCard, NumericStats, TextStats
from modelcard.schema import MAX_UNUSED_CHARS, features_model
from runtime.predictor import Predictor
from tests.fakes import (
    CHURN_ROW,
    CONTRACTS,
    FEATURES,
    SETOSA,
    FixedRuntime,
    category,
    make_card,
    make_churn_card,
    number,
    table_of,
)
from ui.app import ModelSummary, build_ui
from ui.batch import BatchFileError, read_batch_csv
from ui.card_view import confusion_table, feature_table, metrics_table, per_class_table
from ui.files import UiFiles
from ui.form import BLANK, FeatureInput, FormError, element_id, form_inputs, read_form
from ui.picture import (
    MIN_ROWS_PER_CELL,
    most_telling_choice,
    most_telling_pair,
    numeric_features,
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


# A card with free text and a column the model never reads, beside a number and a category.
REVIEW = 'Slow, "very" slow,\nthen fixed'
TICKET_ROW = {"ticket_id": 1234, "tenure": 12, "review": REVIEW, "reply": None, "contract": "two_year"}


def _stats(low: float, high: float) -> NumericStats:
    return NumericStats(
        min=low, max=high, mean=(low + high) / 2, std=1.0, quantiles=[low + (high - low) * i / 10 for i in range(11)]
    )


def _text(name: str, *, nullable: bool, max_chars: int) -> FeatureSpec:
    stats = TextStats(
        chars=_stats(20, 380),
        words=_stats(4, 60),
        max_chars=max_chars,
        vocabulary=["slow", "fixed"],
        unseen_word_share=0.1,
        samples=["The app froze,\nthen it was fine " + "again " * 40],
    )
    return FeatureSpec(name=name, kind=FeatureKind.TEXT, dtype="object", nullable=nullable, missing=1, text=stats)


def make_ticket_card() -> ModelCard:
    """Support tickets: an identifier the model never reads (with numeric stats, to be ignored), two texts."""
    unused = FeatureSpec(
        name="ticket_id", kind=FeatureKind.UNUSED, dtype="int64", nullable=True, placeholder=1001, stats=_stats(1, 9)
    )
    features = [
        unused,
        number("tenure", 0, 72, integer=True),
        _text("review", nullable=False, max_chars=500),
        _text("reply", nullable=True, max_chars=2000),
        category("contract", CONTRACTS),
    ]
    other = {**TICKET_ROW, "ticket_id": 7, "review": "fine", "reply": "thanks", "contract": "month-to-month"}
    return make_churn_card().model_copy(
        update={
            "features": features,
            "examples": [{**TICKET_ROW, "label": "yes"}],
            "reference": [{**TICKET_ROW, "label": "yes"}, {**other, "label": "no"}],
        }
    )


def _ticket_inputs() -> dict[str, FeatureInput]:
    return {field.spec.name: field for field in form_inputs(make_ticket_card().features)}


def test_text_gets_a_text_area_and_unused_an_optional_box() -> None:
    inputs = _ticket_inputs()
    with gr.Blocks():
        review = inputs["review"].component(REVIEW)
        reply = inputs["reply"].component(None)
        ticket = inputs["ticket_id"].component(1234)
    assert isinstance(review, gr.Textbox) and isinstance(reply, gr.Textbox) and isinstance(ticket, gr.Textbox)
    assert review.max_length == 500 and reply.max_length == 2000
    assert review.lines == 3 and review.max_lines is not None and review.max_lines > review.lines  # median 200 chars
    assert review.value == REVIEW and reply.value == ""
    # No hint drawn from training's own texts or identifiers: the form shows what the public card shows.
    assert review.placeholder is None and ticket.placeholder is None
    assert review.info == "free text, up to 500 characters"
    assert reply.info == "free text, up to 2,000 characters; leave empty for a blank"
    assert ticket.lines == 1 and ticket.max_lines == 1 and ticket.value == "1234"
    assert ticket.max_length == MAX_UNUSED_CHARS
    assert ticket.label == "ticket id (optional)"
    assert ticket.info == "not used by the model; kept in the prediction log"


def test_text_and_unused_values_read_back_as_the_api_takes_them() -> None:
    card = make_ticket_card()
    inputs = form_inputs(card.features)
    shown = [field.shown(TICKET_ROW[field.spec.name]) for field in inputs]
    assert shown == ["1234", 12, REVIEW, "", "two_year"]
    row = read_form(inputs, shown)
    # The identifier comes back as typed (text); the text as written, line break, quotes and commas kept.
    assert row == {**TICKET_ROW, "ticket_id": "1234"}
    features_model(card).model_validate({name: value for name, value in row.items() if value is not None})


@pytest.mark.parametrize(
    ("name", "raw", "value"),
    [
        ("review", "", ""),  # required text left empty: the empty text, which the API takes
        ("review", "  \n ", ""),
        ("review", BLANK, BLANK),  # typed, not chosen: text like any other
        ("reply", "", None),  # blanks accepted: a blank
        ("reply", None, None),
        ("reply", "  ok  ", "  ok  "),
        ("ticket_id", "", None),  # never required
        ("ticket_id", "A-17", "A-17"),
        ("ticket_id", "0042", "0042"),  # as typed, never read as a number
    ],
)
def test_blank_text_and_unused_inputs(name: str, raw: str | None, value: str | None) -> None:
    card = make_ticket_card()
    field = _ticket_inputs()[name]
    assert field.read(raw) == value
    record = {**TICKET_ROW, name: value}
    features_model(card).model_validate({key: v for key, v in record.items() if v is not None})


def test_text_longer_than_the_card_allows_is_refused_by_the_schema() -> None:
    with pytest.raises(ValidationError, match="at most 500 characters"):
        features_model(make_ticket_card()).model_validate({**TICKET_ROW, "review": "x" * 501, "reply": "ok"})


def test_text_and_unused_flag_and_read_back_as_gradio_stores_them() -> None:
    inputs = _ticket_inputs()
    with gr.Blocks():
        review, ticket = inputs["review"].component(None), inputs["ticket_id"].component(None)
    assert review.read_from_flag(review.flag(REVIEW)) == REVIEW
    assert ticket.read_from_flag(ticket.flag("1234")) == "1234"


def _fn(blocks: gr.Blocks, api_name: str):  # noqa: ANN202
    """The Python function behind one of the page's events."""
    return next(fn.fn for fn in blocks.fns.values() if fn.api_name == api_name)


def _ticket_ui(tmp_path: Path) -> tuple[gr.Blocks, list[list[dict]], UiFiles]:
    card = make_ticket_card()
    predictor = Predictor("m:v1", card, FixedRuntime([0.3, 0.7]))
    sent: list[list[dict]] = []

    def predict(records: list[dict]) -> list:
        sent.append(records)
        return predictor.predict(table_of(card.features, records))

    files = UiFiles(tmp_path, max_age_s=60)
    return build_ui(card, ModelSummary("m:v1", "2026-01-01T00:00:00", "fixed"), predict, 10, files), sent, files


def test_the_examples_fill_the_form_and_predict_with_the_text(tmp_path: Path) -> None:
    blocks, sent, _ = _ticket_ui(tmp_path)
    (dataset,) = [c for c in blocks.config["components"] if c["type"] == "dataset"]
    (sample,) = dataset["props"]["samples"]
    assert sample == ["1234", 12, REVIEW, "", "two_year"]
    loaded = _fn(blocks, "load_example")((0, sample))  # the Dataset gives (index, sample) on a click
    values = [update["value"] if isinstance(update, dict) else update for update in loaded]
    assert values == sample
    probabilities, verdict, bars = _fn(blocks, "predict")(*values)
    row, *what_ifs = sent  # the row, then the what-if picture's rows (`explore` defaults to `predict` here)
    assert row == [{**TICKET_ROW, "ticket_id": "1234"}]
    assert "yes" in verdict and probabilities == {"no": 0.3, "yes": 0.7}
    assert sorted(set(bars["contract"])) == sorted(CONTRACTS)
    assert [r["review"] for r in what_ifs[0]] == [REVIEW] * len(CONTRACTS)


def test_the_card_describes_text_and_unused_features() -> None:
    table = feature_table(make_ticket_card()).set_index("feature")
    review, ticket = table.loc["review"], table.loc["ticket id"]
    assert review["kind"] == "text"
    assert review["in training"].startswith("free text, median 200 characters (20 to 380), 32 words; e.g. “The app")
    assert review["in training"].endswith("…”") and "\n" not in review["in training"]
    assert review["accepted"] == "any text up to 500 characters, empty included"
    assert table.loc["reply", "accepted"] == "any text up to 2,000 characters, empty included; or blank"
    assert ticket["kind"] == "unused" and ticket["in training"] == "not used by the model; kept in the prediction log"
    assert ticket["accepted"] == "any value, or none (never required)"


def test_text_and_unused_are_never_axes_or_choices() -> None:
    card = make_ticket_card()
    assert numeric_features(card) == ["tenure"] and most_telling_pair(card) is None
    assert (most_telling_choice(card) or card.features[0]).name == "contract"
    with_categories = card.model_copy(
        update={"features": [spec.model_copy(update={"categories": {"A": 2}}) for spec in card.features[:4]]}
    )
    assert most_telling_choice(with_categories) is None  # an identifier's values are no choice either
    predictor = Predictor("m", card, FixedRuntime([0.3, 0.7]))
    rows: list[dict] = []

    def explore(records: list[dict]) -> list:
        rows.extend(records)
        return predictor.predict(table_of(card.features, records))

    what_if(card, card.feature("contract"), {**TICKET_ROW, "ticket_id": "1234"}, explore)
    assert [row["contract"] for row in rows] == list(CONTRACTS)
    assert all(row["review"] == REVIEW and row["ticket_id"] == "1234" and row["reply"] is None for row in rows)


def test_with_two_numbers_the_axes_skip_text_and_unused() -> None:
    card = make_ticket_card()
    features = [*card.features, number("charges", 18.0, 120.0)]
    reference = [{**row, "charges": 50.0 + i} for i, row in enumerate(card.reference)]
    both = card.model_copy(update={"features": features, "reference": reference})
    assert set(most_telling_pair(both) or ()) == {"tenure", "charges"}


TICKET_CSV = (
    "ticket_id,tenure,review,reply,contract,source\n"
    'A-17,12,"Slow, ""very"" slow,\nthen fixed",,two_year,mail\n'
    '0042,3,ok,"thanks, bye",month-to-month,web\n'
)


def test_a_csv_with_text_and_an_unused_column_reads_as_written(tmp_path: Path) -> None:
    frame, records = read(tmp_path, TICKET_CSV, make_ticket_card())
    assert records[0] == {**TICKET_ROW, "ticket_id": "A-17"}
    assert records[1]["ticket_id"] == "0042" and records[1]["reply"] == "thanks, bye"
    assert frame["review"].iloc[0] == REVIEW and list(frame["source"]) == ["mail", "web"]


def test_the_batch_results_show_text_and_unused_columns(tmp_path: Path) -> None:
    blocks, sent, files = _ticket_ui(tmp_path)
    upload = files.gradio_dir / "0123abcd" / "tickets.csv"
    upload.parent.mkdir(parents=True)
    upload.write_text(TICKET_CSV)
    status, table, download = _fn(blocks, "predict_csv")(str(upload))
    assert status == "Predicted **2** rows."
    results = table["value"]
    assert list(results["ticket_id"]) == ["A-17", "0042"] and results["review"].iloc[0] == REVIEW
    assert list(results["reply"]) == ["", "thanks, bye"] and list(results["source"]) == ["mail", "web"]
    assert list(results["class"]) == ["yes", "yes"]
    assert [r["review"] for r in sent[-1]] == [REVIEW, "ok"]
    assert '"Slow, ""very"" slow,\nthen fixed"' in Path(download["value"]).read_text()


def test_the_card_tab_shows_live_figures_beside_the_test_ones_once_outcomes_exist(tmp_path: Path) -> None:
    from ui.app import _live_update

    card = make_churn_card()
    predictor = Predictor("m:v1", card, FixedRuntime([0.8, 0.2]))
    predict = lambda records: predictor.predict(table_of(card.features, records))  # noqa: E731
    figures: list = [None]
    blocks = build_ui(
        card, ModelSummary("m:v1", "2026-01-01T00:00:00", "fixed"), predict, 10, UiFiles(tmp_path, 60),
        live=lambda: figures[0],
    )  # fmt: skip
    assert any(dep["targets"] and dep["targets"][0][1] == "load" for dep in blocks.config["dependencies"])
    note, table = _live_update(card, lambda: figures[0])
    assert "No outcomes reported yet" in note and table["visible"] is False
    live = card.metrics.model_copy(update={"accuracy": 0.5, "n_test": 1234})
    note, table = _live_update(card, lambda: live)
    assert "1,234 predictions" in note and table["visible"] is True
    accuracy = table["value"].set_index("metric").loc["accuracy"]
    assert (accuracy["test"], accuracy["live"]) == (round(card.metrics.accuracy, 4), 0.5)
