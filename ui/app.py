"""The Gradio web UI: one row, a CSV batch, and the model card. It calls the same predictor as the HTTP API.

Everything it shows comes from the model's card: the form (one input per feature, by kind), the labels
and units, the picture, the example rows. Nothing in it is written for one data set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from pydantic import ValidationError

from modelcard.card import Metrics, ModelCard
from modelcard.schema import features_model
from runtime.predictor import Prediction
from ui.batch import BatchFileError, read_batch_csv, results_csv
from ui.card_view import METRIC_LABELS, confusion_table, feature_table, live_table, metrics_table, per_class_table
from ui.files import UiFiles
from ui.form import FormError, form_inputs, read_form
from ui.picture import (
    THIS_ROW,
    choice_values,
    most_telling_choice,
    most_telling_pair,
    training_cells,
    training_scatter,
    what_if,
)

# Records {feature: JSON value} in, one Prediction per record out.
PredictFn = Callable[[list[dict[str, Any]]], list[Prediction]]
# The live figures on predictions with a reported outcome; None while there are none.
LiveFn = Callable[[], Metrics | None]
PALETTE = ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#e377c2", "#7f7f7f"]


@dataclass(frozen=True)
class ModelSummary:
    """What the UI shows about the running model besides its card."""

    tag: str
    creation_time: str
    runtime: str
    # False where the service withholds the executed notebook (no API key, rows not shared): no link to it.
    notebook_shared: bool = True


def build_ui(
    card: ModelCard,
    model: ModelSummary,
    predict: PredictFn,
    max_batch_rows: int,
    files: UiFiles,
    explore: PredictFn | None = None,
    accept_unseen: bool = False,
    live: LiveFn | None = None,
) -> gr.Blocks:
    """Three tabs: one row with a picture, CSV batch, model card. Links stay relative for path prefixes.

    `predict` is recorded by monitoring; `explore` (the what-if picture's extra rows) is not. Uploads and
    results live in `files` (Gradio must have been imported with its environment). `accept_unseen`: the
    deployment takes category values training never saw where the model answers them (as the API does).
    `live` gives the figures on the predictions with a reported outcome (None: none yet), shown on the card's tab.
    """
    with gr.Blocks(title=f"{card.title} · {model.tag}") as blocks:
        gr.Markdown(
            f"# {card.title}\n{card.description}\n\n"
            f"Model `{model.tag}` · {_headline(card)} on {card.metrics.n_test:,} test rows · "
            f"runtime {model.runtime} · [API docs](../) · [metrics](../metrics) · [model JSON](../model)",
            elem_id="header",
        )
        with gr.Tab("Predict", id="predict"):
            _single_tab(card, predict, explore or predict, accept_unseen)
        with gr.Tab("Batch (CSV)", id="batch"):
            _batch_tab(card, predict, max_batch_rows, model.tag.split(":")[0], files, accept_unseen)
        with gr.Tab("Model card", id="card"):
            _card_tab(card, model)
            if live is not None:
                live_note, live_frame = _live_quality()
                blocks.load(lambda: _live_update(card, live), outputs=[live_note, live_frame], api_visibility="private")
    return blocks


def _headline(card: ModelCard) -> str:
    """The metric the model was gated on (else accuracy), for the header."""
    name = next(iter(card.gates), "accuracy")
    value = card.metrics.value(name)
    shown = "n/a" if value is None else (f"{value:.3f}" if name in ("log_loss", "roc_auc") else f"{value:.1%}")
    return f"test {METRIC_LABELS.get(name, name)} **{shown}**"


def _single_tab(card: ModelCard, predict: PredictFn, explore: PredictFn, accept_unseen: bool) -> None:
    """The form, the answer with a bar per class, and a picture of where the row sits."""
    inputs = form_inputs(card.features, accept_unseen)
    schema = features_model(card, accept_unseen)
    first = card.examples[0] if card.examples else {}
    pair = most_telling_pair(card)
    choice = None if pair else most_telling_choice(card)
    colours = {THIS_ROW: "#d62728", **dict(zip(card.class_names, PALETTE, strict=False))}

    cells = training_cells(card, pair) if pair is not None else None

    def picture(row: dict[str, Any]) -> pd.DataFrame:
        if pair is not None and cells is not None:
            return training_scatter(cells, pair, row)
        if choice is not None:
            return what_if(card, choice, row, explore)
        return pd.DataFrame()

    def on_predict(*values: Any) -> tuple[dict[str, float], str, pd.DataFrame]:
        try:
            row = read_form(inputs, values)
            schema.model_validate({name: value for name, value in row.items() if value is not None})
        except FormError as error:
            raise gr.Error(str(error)) from None
        except ValidationError as error:
            problem = error.errors()[0]
            raise gr.Error(f"{problem['loc'][0] if problem['loc'] else 'input'}: {problem['msg']}") from None
        (prediction,) = predict([row])
        verdict = f"## {prediction.class_name}\nprobability **{prediction.probability:.1%}**"
        if prediction.unseen:
            verdict += f"\n\nValues training never saw, answered without them: {', '.join(prediction.unseen)}"
        return prediction.probabilities, verdict, picture(row)

    with gr.Row(equal_height=False):
        with gr.Column(min_width=280):
            components = [field.component(first.get(field.spec.name)) for field in inputs]
            button = gr.Button("Predict", variant="primary", elem_id="predict-button")
        with gr.Column(min_width=280):
            verdict = gr.Markdown("Fill in the form or pick a test row, then press **Predict**.", elem_id="verdict")
            bars = gr.Label(num_top_classes=len(card.class_names), label="Probability per class", elem_id="bars")
    starting_row = {spec.name: first.get(spec.name) for spec in card.features}
    if pair is not None:
        plot: gr.components.Component = gr.ScatterPlot(
            # The example row is in from the start, so the colour legend knows the "this row" category.
            value=picture(starting_row),
            x=pair[0],
            y=pair[1],
            color="class",
            color_map=colours,
            title=f"This row among the training data: {card.feature(pair[0]).label} by {card.feature(pair[1]).label}",
            height=360,
            elem_id="where",
        )
    elif choice is not None:
        plot = gr.BarPlot(
            value=None,
            x=choice.name,
            y="probability",
            color="class",
            color_map=colours,
            sort=[str(v) for v in choice_values(choice)],
            title=f"Probability of each class as {choice.label} varies, the rest as in the form",
            height=360,
            elem_id="where",
        )
    else:
        plot = gr.Markdown(visible=False, elem_id="where")
    if card.examples:
        rows = [[field.shown(example.get(field.spec.name)) for field in inputs] for example in card.examples]
        gr.Examples(examples=rows, inputs=components, label="Rows from the test set")
    button.click(on_predict, inputs=components, outputs=[bars, verdict, plot], api_name="predict")


def _batch_tab(
    card: ModelCard, predict: PredictFn, max_batch_rows: int, file_stem: str, files: UiFiles, accept_unseen: bool
) -> None:
    """Upload a CSV, see and download the results; a bad file gets a message naming the row or column."""
    names = card.feature_names
    schema = features_model(card, accept_unseen)
    template_rows = [{n: e.get(n) for n in names} for e in card.examples]
    template = _write_csv(pd.DataFrame(template_rows, columns=names), files.result_path(f"{file_stem}-template.csv"))

    def on_upload(path: str | None) -> tuple[str, Any, Any]:
        if path is None:
            return "", gr.update(value=None, visible=False), gr.update(visible=False)
        if not files.owns(path):
            # Gradio lets only uploads through; this says so again, and says nothing of the path itself.
            raise gr.Error("Upload the CSV file with the button above.")
        try:
            frame, records = read_batch_csv(path, schema, card.features, max_batch_rows)
        except BatchFileError as error:
            return f"**Cannot use this file.** {error}", gr.update(value=None, visible=False), gr.update(visible=False)
        predictions = predict(records)
        results = frame.assign(
            **{
                "class": [p.class_name for p in predictions],
                "probability": [round(p.probability, 4) for p in predictions],
            },
            **{f"p_{c}": [round(p.probabilities[c], 4) for p in predictions] for c in card.class_names},
        )
        if any(p.unseen for p in predictions):  # values training never saw, answered without them
            results = results.assign(unseen=[", ".join(p.unseen) for p in predictions])
        download = _write_csv(results, files.result_path(f"{file_stem}-predictions.csv"))
        status = f"Predicted **{len(results):,}** rows."
        return status, gr.update(value=results, visible=True), gr.update(value=download, visible=True)

    blanks = [spec.name for spec in card.features if spec.nullable]
    gr.Markdown(
        f"Upload a CSV with a header row and the columns `{'`, `'.join(names)}`; other columns are kept. "
        "Text is read as written (a category must be one of its training values; quote a cell with commas or "
        "line breaks), true/false columns as yes/no, true/false or 1/0. "
        + (f"An empty cell is a blank, accepted in `{'`, `'.join(blanks)}`. " if blanks else "")
        + f"At most {max_batch_rows:,} rows."
    )
    with gr.Row():
        upload = gr.File(file_types=[".csv"], label="CSV file", elem_id="batch-file")
        gr.DownloadButton("Download a template", value=template, elem_id="batch-template")
    status = gr.Markdown(elem_id="batch-status")
    table = gr.Dataframe(visible=False, interactive=False, elem_id="batch-table")
    download = gr.DownloadButton("Download results (CSV)", visible=False, elem_id="batch-download")
    upload.change(on_upload, inputs=upload, outputs=[status, table, download], api_name="predict_csv")


def _live_quality() -> tuple[Any, Any]:
    """Where the live figures go: a note, and the table once outcomes exist; filled when a page loads."""
    note = gr.Markdown(elem_id="live-quality")
    frame = gr.Dataframe(
        label="Live metrics (last 30 days' predictions with a reported outcome) beside the test's",
        interactive=False,
        visible=False,
        elem_id="live-table",
    )
    return note, frame


def _live_update(card: ModelCard, live: LiveFn) -> tuple[str, Any]:
    """The note and table for the live figures as they are now."""
    figures = live()
    if figures is None:
        return "No outcomes reported yet: `POST /feedback` tells the service what really happened.", gr.update(
            value=None, visible=False
        )
    return f"**Live**: {figures.n_test:,} predictions with a reported outcome.", gr.update(
        value=live_table(card, figures), visible=True
    )


def _card_tab(card: ModelCard, model: ModelSummary) -> None:
    """What the training step recorded: metrics, confusion matrix, features, provenance."""
    lineage = card.lineage
    commit = (
        f" · git commit `{lineage.git_commit[:12]}`{' (notebook changed)' if lineage.git_dirty else ''}"
        if lineage.git_commit
        else ""
    )
    gr.Markdown(
        f"**Model** `{model.tag}` · created {model.creation_time} · estimator `{card.estimator}`"
        + (f" after `{card.preprocessor}`" if card.preprocessor else "")
        + f" · runtime {model.runtime} ({card.runtime_note})"
        + _search_line(card)
        + (
            f"\n\nRuns the notebook's own code, saved with it: {', '.join(card.notebook_code)}"
            if card.notebook_code
            else ""
        )
        + "\n\n"
        f"Trained on {card.n_train:,} rows, tested on {card.metrics.n_test:,} · "
        f"notebook `{Path(lineage.notebook).name}` "
        f"(sha256 `{lineage.notebook_sha256[:12]}…`){commit} · "
        f"training data fingerprint `{lineage.train_fingerprint[:12]}…` · "
        f"scikit-learn {lineage.libraries.get('scikit-learn', '?')} · "
        + (
            "[executed notebook with its plots](../model/notebook)"
            if model.notebook_shared
            else "the executed notebook is not served (it can show training rows)"
        ),
        elem_id="card-summary",
    )
    gr.Dataframe(metrics_table(card), label="Test metrics and quality gates", interactive=False)
    gr.Dataframe(per_class_table(card), label="Per-class metrics (test set)", interactive=False)
    gr.Dataframe(confusion_table(card), label="Confusion matrix (test set)", interactive=False)
    gr.Dataframe(feature_table(card), label="Features: training data and accepted input", interactive=False)


def _search_line(card: ModelCard) -> str:
    """What the notebook's hyper-parameter search found, when its model was one; else nothing."""
    search = card.search
    if search is None:
        return ""
    score = (
        "" if search.best_score is None else f", cross-validated {search.scoring or 'score'} {search.best_score:.4f}"
    )
    params = ", ".join(f"{name}={value}" for name, value in search.best_params.items())
    return f"\n\nBest of a `{search.search.rsplit('.', 1)[-1]}` over {search.candidates} candidates: {params}{score}"


def _write_csv(frame: pd.DataFrame, path: Path) -> str:
    """Write `frame` as CSV to `path` and return the path Gradio should serve."""
    path.write_text(results_csv(frame))
    return str(path)
