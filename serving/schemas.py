"""The API's answer models (the request schema itself: modelcard/schema.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    create_model,
    model_serializer,
)
from pydantic.config import JsonDict

from modelcard.card import FeatureKind, ModelCard
from monitoring.context import REQUEST_ID_PATTERN

# How many of a call's unmatched request ids an answer lists: enough to look into, never the whole call back.
LISTED_UNMATCHED = 20


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


def outcome_model(card: ModelCard) -> Any:
    """One outcome reported for an earlier prediction: its answer's X-Request-ID, its row, and the true class."""
    example: JsonDict = {
        "request_id": "4f1c0a9e2b7d4e110000000000000001",
        "row": 0,
        "label": card.class_names[-1],
    }
    labels: Any = Literal[tuple(card.class_names)]
    model: Any = create_model(
        "Outcome",
        __config__=ConfigDict(extra="forbid", json_schema_extra={"example": example}),
        __doc__="What really happened to one earlier prediction, reported later (a warehouse job, a person).",
        request_id=(
            str,
            Field(pattern=f"^{REQUEST_ID_PATTERN}$", description="the X-Request-ID header of the prediction's answer"),
        ),
        row=(int, Field(0, ge=0, strict=True, description="the row of a /predict_batch request; 0 for /prediction")),
        label=(labels, Field(description="the class that really happened: one of the model's classes")),
    )
    return model


class FeedbackResult(BaseModel):
    """How many of the reported outcomes belong to a prediction in the log (all of them are kept)."""

    model_config = ConfigDict(protected_namespaces=())

    received: int = Field(description="outcomes in the call")
    matched: int = Field(description="outcomes whose prediction is in the prediction log")
    unmatched: int = Field(
        description="outcomes whose prediction is not (yet) in it: an unknown id, a row the request did not have, "
        "a prediction older than the log keeps, or one answered less than a second ago; kept all the same"
    )
    unmatched_request_ids: list[str] = Field(description=f"the first {LISTED_UNMATCHED} of those, in call order")
    model: str = Field(description="tag of the model serving")


def unseen_categories(error: ValidationError, card: ModelCard) -> list[str]:
    """The category features an error refused because their value was not one training saw."""
    categories = {spec.name for spec in card.features if spec.kind is FeatureKind.CATEGORY}
    return [
        str(entry["loc"][-1])
        for entry in error.errors(include_url=False)
        if entry["type"] == "literal_error" and entry["loc"] and str(entry["loc"][-1]) in categories
    ]
