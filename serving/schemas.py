"""The API's answer models (the request schema itself: modelcard/schema.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, ValidationError, model_serializer

from modelcard.card import FeatureKind, ModelCard


class AnswerWarning(BaseModel):
    """Something about a row the model answered anyway: a category value training never saw."""

    type: str = Field(description="unseen_category")
    loc: list[str] = Field(description="the feature")
    msg: str


class PredictionResult(BaseModel):
    """The answer for one row of features."""

    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True, protected_namespaces=())

    class_: str = Field(alias="class", description="the predicted class")
    probability: float = Field(description="probability of the predicted class")
    probabilities: dict[str, float] = Field(description="probability of every class")
    model: str = Field(description="tag of the model that answered")
    warnings: list[AnswerWarning] | None = Field(
        None,
        description="only where a deployment accepts category values training never saw "
        "(SERVING_UNSEEN_CATEGORIES=accept) and the row had one: each such feature",
    )

    @model_serializer(mode="wrap")
    def _without_empty_warnings(self, serialize: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """No `warnings` key when there are none, as the JSON routes answer."""
        data: dict[str, Any] = serialize(self)
        if data.get("warnings") is None:
            data.pop("warnings", None)
        return data


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
        "(card.reference), free text's training values and words, and the executed notebook, unless "
        "SERVING_SHARE_TRAINING_ROWS allows them",
    )


def unseen_categories(error: ValidationError, card: ModelCard) -> list[str]:
    """The category features an error refused because their value was not one training saw."""
    categories = {spec.name for spec in card.features if spec.kind is FeatureKind.CATEGORY}
    return [
        str(entry["loc"][-1])
        for entry in error.errors(include_url=False)
        if entry["type"] == "literal_error" and entry["loc"] and str(entry["loc"][-1]) in categories
    ]
