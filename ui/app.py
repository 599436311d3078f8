"""Gradio Blocks for single predictions; it calls the same predictor as the HTTP API."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from serving.card import ModelCard
from serving.predictor import Prediction

PredictFn = Callable[[list[dict[str, float]]], list[Prediction]]


def build_ui(card: ModelCard, tag: str, predict: PredictFn) -> gr.Blocks:
    """Inputs bounded by the training ranges, a Predict button, and a bar per class."""
    names = card.feature_names
    first = card.examples[0] if card.examples else {n: card.feature_stats[n].mean for n in names}

    def on_predict(*values: float) -> dict[str, float]:
        if any(v is None for v in values):
            raise gr.Error("Fill in every measurement.")
        (prediction,) = predict([dict(zip(names, map(float, values), strict=True))])
        return prediction.probabilities

    with gr.Blocks(title=f"{tag} classifier") as blocks:
        gr.Markdown(
            f"# Iris species classifier\n"
            f"Model **{tag}** · test accuracy **{card.metrics.accuracy:.1%}** on {card.metrics.n_test} rows · "
            f"runtime {card.runtime}"
        )
        with gr.Row():
            with gr.Column():
                inputs = [
                    gr.Slider(
                        minimum=card.feature_stats[n].min,
                        maximum=card.feature_stats[n].max,
                        value=first[n],
                        step=0.1,
                        label=f"{n.replace('_', ' ')} (cm)",
                    )
                    for n in names
                ]
                button = gr.Button("Predict", variant="primary")
            with gr.Column():
                output = gr.Label(num_top_classes=len(card.class_names), label="Predicted class")
        gr.Examples(examples=[[row[n] for n in names] for row in card.examples], inputs=inputs, label="Test rows")
        button.click(on_predict, inputs=inputs, outputs=output, api_name="predict")
    return blocks
