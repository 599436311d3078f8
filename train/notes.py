"""What a notebook may say about its model for people: the optional `model_card` variable.

```python
model_card = {
    "title": "Telco customer churn",
    "description": "Which customers are about to leave.",
    "features": {"tenure": {"title": "Tenure", "description": "months with us", "unit": "months", "upper": 600}},
    "unused": ["customer_id"],
    "gate": {"roc_auc": 0.8},
}
```
Every key is optional. The titles, descriptions and units reach the API docs, the web UI and the card; `lower`
and `upper` replace a number's accepted range (by default a training range beyond what training saw, never
below zero for a feature never negative); `max_chars` replaces a free-text feature's longest accepted value;
`unused` names columns of X_train the model never reads (identifiers kept to join predictions to one's own
records), which requests may send but need not, and which training proves unread; the gate is the quality bar
the model must clear (flags on the command line replace it).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runtime.evaluation import METRIC_NAMES
from train.errors import ModelCheckFailed


class FeatureNote(BaseModel):
    """People-facing text for one feature."""

    model_config = ConfigDict(extra="forbid")

    title: str = ""
    description: str = ""
    unit: str = ""
    lower: float | None = None  # numbers only: the smallest value a request may send
    upper: float | None = None  # numbers only: the largest
    max_chars: int | None = Field(None, gt=0)  # free text only: the longest value a request may send


class CardNotes(BaseModel):
    """The notebook's `model_card` variable."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = None
    description: str = ""
    features: dict[str, FeatureNote] = {}
    unused: list[str] = []
    gate: dict[str, float] = {}


def read_notes(value: Any, variable: str, feature_names: list[str]) -> CardNotes:
    """Check the notebook's variable; a wrong key, type, feature or metric name is refused by name."""
    if value is None:
        return CardNotes()
    try:
        notes = CardNotes.model_validate(value)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ModelCheckFailed(f"`{variable}` is not a valid model card description ({problems}).") from None
    unknown = sorted((set(notes.features) | set(notes.unused)) - set(feature_names))
    if unknown:
        raise ModelCheckFailed(f"`{variable}` describes features the data does not have: {', '.join(unknown)}.")
    for feature, note in notes.features.items():
        if note.lower is not None and note.upper is not None and note.lower > note.upper:
            raise ModelCheckFailed(f"`{variable}` gives `{feature}` a lower bound above its upper bound.")
    metrics = sorted(set(notes.gate) - set(METRIC_NAMES))
    if metrics:
        raise ModelCheckFailed(
            f"`{variable}` gates on unknown metrics {', '.join(metrics)}; use {', '.join(METRIC_NAMES)}."
        )
    return notes
