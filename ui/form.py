"""The prediction form, built from the card: one input per feature, the right kind of input for its kind.

- number: a slider over the training range, or a number box when blanks are accepted;
- integer: the same with whole-number steps;
- boolean: a checkbox, or a yes / no / blank choice when blanks are accepted;
- category: a dropdown of the training values, with "(blank)" when blanks are accepted;
- text: a text area of a few lines, at most the card's `max_chars`; left empty it is a blank where blanks
  are accepted, else the empty text (a value the API takes);
- unused (a column the model never reads, such as an identifier): an optional text box, sent as typed
  (kept in the prediction log), a blank when left empty.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from modelcard.card import FeatureKind, FeatureSpec, TextStats
from modelcard.schema import MAX_UNUSED_CHARS, accepts_unseen

BLANK = "(blank)"
YES, NO = "yes", "no"
# The kinds typed into a text box rather than chosen or slid.
TYPED = (FeatureKind.TEXT, FeatureKind.UNUSED)
UNUSED_NOTE = "not used by the model; kept in the prediction log"
# A text area's height follows the training values' median length, within these lines.
TEXT_LINES = (2, 6)
CHARS_PER_LINE = 80


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
        return _COMPONENTS[self.spec.kind](self, self.shown(value))

    def shown(self, value: Any) -> Any:
        """A JSON value as the input shows it."""
        kind = self.spec.kind
        if kind is FeatureKind.BOOLEAN and self.spec.nullable:
            return BLANK if value is None else (YES if value else NO)
        if kind is FeatureKind.CATEGORY:
            return BLANK if value is None else value
        if kind in TYPED:
            return "" if value is None else str(value)  # a text box holds text: an identifier 1234 is "1234"
        return value

    def read(self, raw: Any) -> Any:
        """The input's value as the API would take it (None for a blank); FormError for a required blank."""
        if self._is_blank(raw):
            return self._blank()
        kind = self.spec.kind
        if kind in (FeatureKind.CATEGORY, *TYPED):
            return str(raw)  # as typed: a person's words, or an identifier to find in the log
        if kind is FeatureKind.BOOLEAN:
            return raw == YES if isinstance(raw, str) else bool(raw)
        if kind is FeatureKind.INTEGER:
            if float(raw) != int(float(raw)):
                raise FormError(f"{self.spec.label} must be a whole number, not {raw}.")
            return int(float(raw))
        return float(raw)

    def _is_blank(self, raw: Any) -> bool:
        """Nothing given: no value, only spaces, or the "(blank)" choice of a dropdown or radio."""
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return True
        return raw == BLANK and self.spec.kind not in TYPED  # typed text "(blank)" is what was typed

    def _blank(self) -> Any:
        """What an empty input sends: None where the API takes a blank, else "" for text; else FormError."""
        if self.spec.nullable or self.spec.kind is FeatureKind.UNUSED:  # an unused column is never required
            return None
        if self.spec.kind is FeatureKind.TEXT:
            return ""  # an empty text is a value the model reads (as no words)
        raise FormError(f"Fill in {self.spec.label}.")


def _info(spec: FeatureSpec, *notes: str) -> str | None:
    """The line under an input: the notebook's description, then what the form adds."""
    parts = [part for part in (spec.description, *notes) if part]
    return "; ".join(parts) or None


def _category_input(field: FeatureInput, shown: Any) -> gr.components.Component:
    """A dropdown of the training values, "(blank)" among them where blanks are accepted."""
    spec = field.spec
    choices = [*(spec.categories or {}), *([BLANK] if spec.nullable else [])]
    return gr.Dropdown(
        choices=choices,
        value=shown,
        label=spec.label,
        info=_info(spec),
        elem_id=element_id(spec.name),
        allow_custom_value=field.any_text,
    )


def _boolean_input(field: FeatureInput, shown: Any) -> gr.components.Component:
    """A checkbox, or yes / no / blank where blanks are accepted."""
    spec, elem = field.spec, element_id(field.spec.name)
    if spec.nullable:
        return gr.Radio([YES, NO, BLANK], value=shown, label=spec.label, info=_info(spec), elem_id=elem)
    return gr.Checkbox(value=bool(shown), label=spec.label, info=_info(spec), elem_id=elem)


def _numeric_input(field: FeatureInput, shown: Any) -> gr.components.Component:
    """A slider over the training range, or a number box that may stay empty where blanks are accepted."""
    spec, elem = field.spec, element_id(field.spec.name)
    assert spec.stats is not None
    step = 1 if spec.kind is FeatureKind.INTEGER else _step(spec.stats.min, spec.stats.max)
    if spec.nullable:
        return gr.Number(
            value=shown, label=spec.label, info=_info(spec, "leave empty for a blank"), step=step, elem_id=elem
        )
    return gr.Slider(
        minimum=spec.stats.min,
        maximum=spec.stats.max,
        value=shown,
        step=step,
        label=spec.label,
        info=_info(spec),
        elem_id=elem,
    )


def _text_input(field: FeatureInput, shown: Any) -> gr.components.Component:
    """A text area as tall as training's typical value, at most the length the API accepts."""
    spec = field.spec
    assert spec.text is not None
    blank = "leave empty for a blank" if spec.nullable else ""
    return gr.Textbox(
        value=shown,
        lines=_text_lines(spec.text),
        max_lines=TEXT_LINES[1] * 2,
        max_length=spec.text.max_chars,
        label=spec.label,
        info=_info(spec, f"free text, up to {spec.text.max_chars:,} characters", blank),
        elem_id=element_id(spec.name),
    )


def _unused_input(field: FeatureInput, shown: Any) -> gr.components.Component:
    """A one-line optional box: the model never reads it, the prediction log keeps it to join on."""
    spec = field.spec
    return gr.Textbox(
        value=shown,
        lines=1,
        max_lines=1,
        max_length=MAX_UNUSED_CHARS,  # as the API takes
        label=f"{spec.label} (optional)",
        info=_info(spec, UNUSED_NOTE),
        elem_id=element_id(spec.name),
    )


_COMPONENTS: dict[FeatureKind, Callable[[FeatureInput, Any], gr.components.Component]] = {
    FeatureKind.NUMBER: _numeric_input,
    FeatureKind.INTEGER: _numeric_input,
    FeatureKind.BOOLEAN: _boolean_input,
    FeatureKind.CATEGORY: _category_input,
    FeatureKind.TEXT: _text_input,
    FeatureKind.UNUSED: _unused_input,
}


def _text_lines(text: TextStats) -> int:
    """Lines enough for the median training value, within TEXT_LINES."""
    quantiles = text.chars.quantiles
    median = quantiles[len(quantiles) // 2]
    low, high = TEXT_LINES
    return min(high, max(low, math.ceil(median / CHARS_PER_LINE)))


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
