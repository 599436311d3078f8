"""The API's answer models, and validated request rows as the feature table (the schema itself: modelcard/schema.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelcard.card import FeatureKind, ModelCard
from modelcard.schema import field_name
from runtime.table import FeatureTable, TableBuilder


class PredictionResult(BaseModel):
    """The answer for one row of features."""

    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True, protected_namespaces=())

    class_: str = Field(alias="class", description="the predicted class")
    probability: float = Field(description="probability of the predicted class")
    probabilities: dict[str, float] = Field(description="probability of every class")
    model: str = Field(description="tag of the model that answered")


class ModelInfo(BaseModel):
    """What the service is running: the model's tag, when it was made, and its card."""

    model_config = ConfigDict(protected_namespaces=())

    tag: str
    creation_time: str
    runtime: str
    card: ModelCard
    withheld: list[str] = Field(
        default_factory=list,
        description="what this service keeps from callers without the API key: the card's training rows "
        "(card.reference) and the executed notebook, unless SERVING_SHARE_TRAINING_ROWS allows them",
    )


def row_values(row: BaseModel) -> tuple[Any, ...]:
    """A validated request row's values (None for a blank), in the features' order."""
    # A row's fields are x0, x1, ... in the features' order, so its values are already in that order.
    return tuple(row.__dict__.values())


def rows_to_table(tables: TableBuilder, rows: Sequence[BaseModel]) -> FeatureTable:
    """Validated request rows (instances of features_model) as the table every later step reads."""
    return tables.from_rows([row_values(row) for row in rows])


def fields_to_table(tables: TableBuilder, fields: dict[str, Any]) -> FeatureTable:
    """One validated row given as its fields (what BentoML passes as keyword arguments) as a table."""
    return tables.from_rows([[fields.get(field_name(index)) for index in range(len(tables.names))]])


def unseen_categories(error: ValidationError, card: ModelCard) -> list[str]:
    """The category features an error refused because their value was not one training saw."""
    categories = {spec.name for spec in card.features if spec.kind is FeatureKind.CATEGORY}
    return [
        str(entry["loc"][-1])
        for entry in error.errors(include_url=False)
        if entry["type"] == "literal_error" and entry["loc"] and str(entry["loc"][-1]) in categories
    ]
