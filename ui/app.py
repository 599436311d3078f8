"""The Gradio web UI: one flower, a CSV batch, and the model card. It calls the same predictor as the HTTP API."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from serving.card import ModelCard
from serving.predictor import Prediction
from serving.schemas import features_model
from ui.batch import BatchFileError, read_batch_csv, results_csv
from ui.card_view import confusion_table, feature_table, most_telling_pair, per_class_table

PredictFn = Callable[[list[dict[str, float]]], list[Prediction]]
YOUR_FLOWER = "your flower"


@dataclass(frozen=True)
class ModelSummary:
    """What the UI shows about the running model besides its card."""

    tag: str
    creation_time: str
    runtime: str


def build_ui(card: ModelCard, model: ModelSummary, predict: PredictFn, max_batch_rows: int) -> gr.Blocks:
    """Three tabs: single prediction with a picture, CSV batch, model card. Links stay relative for path prefixes."""
    with gr.Blocks(title=f"{model.tag} · iris classifier") as blocks:
        gr.Markdown(
            f"# Iris species classifier\n"
            f"Model `{model.tag}` · test accuracy **{card.metrics.accuracy:.1%}** on {card.metrics.n_test} rows · "
            f"runtime {model.runtime} · [API docs](../) · [metrics](../metrics) · [model JSON](../model)",
            elem_id="header",
        )
        with gr.Tab("Predict", id="predict"):
            _single_tab(card, predict)
        with gr.Tab("Batch (CSV)", id="batch"):
            _batch_tab(card, predict, max_batch_rows)
        with gr.Tab("Model card", id="card"):
            _card_tab(card, model)
    return blocks


def _single_tab(card: ModelCard, predict: PredictFn) -> None:
    """Sliders bounded by the training ranges, the answer with a bar per class, and where the flower sits."""
    names = card.feature_names
    first = card.examples[0] if card.examples else {n: card.feature_stats[n].mean for n in names}
    x, y = most_telling_pair(card)
    reference = pd.DataFrame(card.reference, columns=[*names, "label"]).rename(columns={"label": "species"})

    def picture(row: dict[str, float]) -> pd.DataFrame:
        return pd.concat([reference, pd.DataFrame([{**row, "species": YOUR_FLOWER}])], ignore_index=True)

    def on_predict(*values: float) -> tuple[dict[str, float], str, pd.DataFrame]:
        if any(v is None for v in values):
            raise gr.Error("Fill in every measurement.")
        row = dict(zip(names, map(float, values), strict=True))
        (prediction,) = predict([row])
        verdict = f"## {prediction.class_name}\nprobability **{prediction.probability:.1%}**"
        return prediction.probabilities, verdict, picture(row)

    with gr.Row(equal_height=False):
        with gr.Column(min_width=280):
            inputs = [
                gr.Slider(
                    minimum=card.feature_stats[n].min,
                    maximum=card.feature_stats[n].max,
                    value=first[n],
                    step=0.1,
                    label=f"{n.replace('_', ' ')} (cm)",
                    elem_id=f"input-{n}",
                )
                for n in names
            ]
            button = gr.Button("Predict", variant="primary", elem_id="predict-button")
        with gr.Column(min_width=280):
            verdict = gr.Markdown("Move the sliders or pick a test row, then press **Predict**.", elem_id="verdict")
            bars = gr.Label(num_top_classes=len(card.class_names), label="Probability per class", elem_id="bars")
    palette = ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"]
    plot = gr.ScatterPlot(
        # The pre-filled flower is in from the start, so the colour legend knows the "your flower" category.
        value=picture({n: first[n] for n in names}),
        x=x,
        y=y,
        color="species",
        color_map={YOUR_FLOWER: "#d62728", **dict(zip(card.class_names, palette, strict=False))},
        title="Your flower among the training data",
        height=360,
        elem_id="where",
    )
    gr.Examples(
        examples=[[row[n] for n in names] for row in card.examples], inputs=inputs, label="Rows from the test set"
    )
    button.click(on_predict, inputs=inputs, outputs=[bars, verdict, plot], api_name="predict")


def _batch_tab(card: ModelCard, predict: PredictFn, max_batch_rows: int) -> None:
    """Upload a CSV, see and download the results; a bad file gets a message naming the row or column."""
    names = card.feature_names
    schema = features_model(card)
    template = _write_csv(pd.DataFrame([{n: e[n] for n in names} for e in card.examples]), "iris-template.csv")

    def on_upload(path: str | None) -> tuple[str, Any, Any]:
        if path is None:
            return "", gr.update(value=None, visible=False), gr.update(visible=False)
        try:
            frame = read_batch_csv(path, schema, names, max_batch_rows)
        except BatchFileError as error:
            return f"**Cannot use this file.** {error}", gr.update(value=None, visible=False), gr.update(visible=False)
        predictions = predict(frame[names].to_dict("records"))
        results = frame.assign(
            **{
                "class": [p.class_name for p in predictions],
                "probability": [round(p.probability, 4) for p in predictions],
            },
            **{f"p_{c}": [round(p.probabilities[c], 4) for p in predictions] for c in card.class_names},
        )
        download = _write_csv(results, "iris-predictions.csv")
        status = f"Predicted **{len(results):,}** rows."
        return status, gr.update(value=results, visible=True), gr.update(value=download, visible=True)

    gr.Markdown(
        f"Upload a CSV with a header row and the columns `{'`, `'.join(names)}` (cm); other columns are kept. "
        f"At most {max_batch_rows:,} rows."
    )
    with gr.Row():
        upload = gr.File(file_types=[".csv"], label="CSV file", elem_id="batch-file")
        gr.DownloadButton("Download a template", value=template, elem_id="batch-template")
    status = gr.Markdown(elem_id="batch-status")
    table = gr.Dataframe(visible=False, interactive=False, elem_id="batch-table")
    download = gr.DownloadButton("Download results (CSV)", visible=False, elem_id="batch-download")
    upload.change(on_upload, inputs=upload, outputs=[status, table, download], api_name="predict_csv")


def _card_tab(card: ModelCard, model: ModelSummary) -> None:
    """What the training step recorded: metrics, confusion matrix, feature ranges, provenance."""
    gr.Markdown(
        f"**Model** `{model.tag}` · created {model.creation_time} · estimator `{card.estimator}` · "
        f"scikit-learn {card.sklearn_version} · runtime {model.runtime} ({card.runtime_note})\n\n"
        f"**Test accuracy** {card.metrics.accuracy:.1%} on {card.metrics.n_test} rows · trained on {card.n_train} rows "
        f"· notebook `{Path(card.notebook).name}` (sha256 `{card.notebook_sha256[:12]}…`) · "
        f"[executed notebook with its plots](../model/notebook)",
        elem_id="card-summary",
    )
    gr.Dataframe(per_class_table(card), label="Per-class metrics (test set)", interactive=False)
    gr.Dataframe(confusion_table(card), label="Confusion matrix (test set)", interactive=False)
    gr.Dataframe(feature_table(card), label="Features (cm): training statistics and accepted range", interactive=False)


def _write_csv(frame: pd.DataFrame, name: str) -> str:
    """Write `frame` to a fresh temp folder under `name` and return the path Gradio should serve."""
    path = Path(tempfile.mkdtemp(prefix="iris-ui-")) / name
    path.write_text(results_csv(frame))
    return str(path)
