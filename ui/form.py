"""The prediction form, built from the card: one input per feature, the right kind of input for its kind.

- number: a slider over the training range, or a number box when blanks are accepted;
- integer: the same with whole-number steps;
- boolean: a checkbox, or a yes / no / blank choice when blanks are accepted;
- category: a dropdown of the training values, with "(blank)" when blanks are accepted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from modelcard.card import FeatureKind, FeatureSpec
from modelcard.schema import accepts_unseen

BLANK = "(blank)"
YES, NO = "yes", "no"


class FormError(ValueError):
    """A form value the model cannot take; the message names the feature, for the person filling it in."""


def element_id(name: str) -> str:
    """The HTML id of a feature's input: `input-<name>`, with characters ids cannot hold made dashes."""
    return "input-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


@dataclass(frozen=True)
class FeatureInput:
    """One feature's input: how to draw it, and how to read its value back."""

    spec: FeatureSpec
    # A category whose model answers values training never saw, where the deployment accepts them: typed in.
    any_text: bool = False

    def component(self, value: Any) -> gr.components.Component:
        """The Gradio input, showing `value` (a JSON value, None for a blank)."""
        spec, label, elem = self.spec, self.spec.label, element_id(self.spec.name)
        info = spec.description or None
        if spec.kind is FeatureKind.CATEGORY:
            choices = [*(spec.categories or {}), *([BLANK] if spec.nullable else [])]
            return gr.Dropdown(
                choices=choices,
                value=self.shown(value),
                label=label,
                info=info,
                elem_id=elem,
                allow_custom_value=self.any_text,
            )
        if spec.kind is FeatureKind.BOOLEAN:
            if spec.nullable:
                return gr.Radio([YES, NO, BLANK], value=self.shown(value), label=label, info=info, elem_id=elem)
            return gr.Checkbox(value=bool(value), label=label, info=info, elem_id=elem)
        assert spec.stats is not None
        step = 1 if spec.kind is FeatureKind.INTEGER else _step(spec.stats.min, spec.stats.max)
        if spec.nullable:
            hint = f"{info + '; ' if info else ''}leave empty for a blank"
            return gr.Number(value=value, label=label, info=hint, step=step, elem_id=elem)
        return gr.Slider(
            minimum=spec.stats.min, maximum=spec.stats.max, value=value, step=step, label=label, info=info, elem_id=elem
        )

    def shown(self, value: Any) -> Any:
        """A JSON value as the input shows it."""
        if self.spec.kind is FeatureKind.BOOLEAN and self.spec.nullable:
            return BLANK if value is None else (YES if value else NO)
        if self.spec.kind is FeatureKind.CATEGORY:
            return BLANK if value is None else value
        return value

    def read(self, raw: Any) -> Any:
        """The input's value as the API would take it (None for a blank); FormError for a required blank."""
        spec = self.spec
        blank = raw is None or raw == BLANK or (isinstance(raw, str) and not raw.strip())
        if blank:
            if not spec.nullable:
                raise FormError(f"Fill in {spec.label}.")
            return None
        if spec.kind is FeatureKind.CATEGORY:
            return str(raw)
        if spec.kind is FeatureKind.BOOLEAN:
            return raw == YES if isinstance(raw, str) else bool(raw)
        if spec.kind is FeatureKind.INTEGER:
            if float(raw) != int(float(raw)):
                raise FormError(f"{spec.label} must be a whole number, not {raw}.")
            return int(float(raw))
        return float(raw)


def _step(low: float, high: float) -> float:
    """A slider step of about a hundredth of the range, rounded to 1, 2 or 5 times a power of ten."""
    span = (high - low) or 1.0
    raw = span / 100
    power = 10 ** int(f"{raw:e}".split("e")[1])
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)


def form_inputs(features: Sequence[FeatureSpec], accept_unseen: bool = False) -> list[FeatureInput]:
    """One input per feature, in the card's order; `accept_unseen`: text for categories that answer any value."""
    return [FeatureInput(spec, accepts_unseen(spec, accept_unseen)) for spec in features]


def read_form(inputs: Sequence[FeatureInput], values: Sequence[Any]) -> dict[str, Any]:
    """The form's values as one record {feature: JSON value}; FormError names the first unusable one."""
    return {field.spec.name: field.read(value) for field, value in zip(inputs, values, strict=True)}
