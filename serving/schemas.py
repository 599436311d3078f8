"""The API's answer models (the request schema itself: modelcard/schema.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelcard.card import FeatureKind, ModelCard


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


def unseen_categories(error: ValidationError, card: ModelCard) -> list[str]:
    """The category features an error refused because their value was not one training saw."""
    categories = {spec.name for spec in card.features if spec.kind is FeatureKind.CATEGORY}
    return [
        str(entry["loc"][-1])
        for entry in error.errors(include_url=False)
        if entry["type"] == "literal_error" and entry["loc"] and str(entry["loc"][-1]) in categories
    ]
