"""The API's answer models (the request schema itself: modelcard/schema.py)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    SerializerFunctionWrapHandler,
    ValidationError,
    WithJsonSchema,
    create_model,
    model_serializer,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from modelcard.card import FeatureKind, ModelCard
from modelcard.schema import MAX_UNUSED_CHARS
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


def _key_value(value: Any) -> Any:
    """A key column's value as logged: text, a number or a boolean; null identifies no prediction."""
    if isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    if isinstance(value, str) and 0 < len(value) <= MAX_UNUSED_CHARS:
        return value
    raise ValueError(f"must be text of 1 to {MAX_UNUSED_CHARS} characters, a number, true or false")


KeyValue = Annotated[
    Any,
    PlainValidator(_key_value),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "maxLength": MAX_UNUSED_CHARS}, {"type": "number"}, {"type": "boolean"}]}
    ),
]


class _OutcomeRules(BaseModel):
    """What every outcome model checks beyond its fields' types: one way to name the prediction, a sound window."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _names_one_prediction(self) -> Any:
        fields: Any = self
        by_id, by_key = fields.request_id is not None, fields.key is not None
        if by_id == by_key:
            raise PydanticCustomError(
                "outcome_target", "give either request_id (and row) or key (and optionally since/until), not both"
            )
        if by_id and (fields.since is not None or fields.until is not None):
            raise PydanticCustomError("outcome_window", "since and until go with key, not with request_id")
        if by_key and "row" in self.model_fields_set:
            raise PydanticCustomError("outcome_row", "row goes with request_id; a key finds its row itself")
        if fields.since is not None and fields.until is not None and fields.since >= fields.until:
            raise PydanticCustomError("outcome_window", "since must be before until")
        return self


def outcome_model(card: ModelCard) -> Any:
    """One outcome reported for an earlier prediction: by its answer's X-Request-ID and row, or by key columns."""
    example: JsonDict = {
        "request_id": "4f1c0a9e2b7d4e110000000000000001",
        "row": 0,
        "label": card.class_names[-1],
    }
    names = [spec.name for spec in card.features]
    keys = [spec.name for spec in card.features if spec.kind is FeatureKind.UNUSED] or names
    logged_example = card.examples[0].get(keys[0]) if card.examples else None
    key_example = {keys[0]: logged_example if logged_example is not None else "…"}
    labels: Any = Literal[tuple(card.class_names)]
    columns: Any = Literal[tuple(names)]
    model: Any = create_model(
        "Outcome",
        __base__=_OutcomeRules,
        __doc__="What really happened to one earlier prediction, reported later (a warehouse job, a person): "
        "by the prediction's X-Request-ID, or by the value of a column the prediction log keeps (an id).",
        request_id=(
            str | None,
            Field(
                None,
                pattern=f"^{REQUEST_ID_PATTERN}$",
                description="the X-Request-ID header of the prediction's answer",
                json_schema_extra={"example": example["request_id"]},
            ),
        ),
        row=(int, Field(0, ge=0, strict=True, description="the row of a /predict_batch request; 0 for /prediction")),
        key=(
            dict[columns, KeyValue] | None,
            Field(
                None,
                min_length=1,
                description="instead of request_id: the logged values of one or more input columns, e.g. a "
                "customer id the model does not read; the newest prediction in the window with all of them matches",
                json_schema_extra={"example": key_example},
            ),
        ),
        since=(
            datetime | None,
            Field(None, description="with key: the earliest prediction time to match (ISO 8601; UTC unless it says)"),
        ),
        until=(
            datetime | None,
            Field(None, description="with key: predictions before this time (ISO 8601; default: now)"),
        ),
        label=(labels, Field(description="the class that really happened: one of the model's classes")),
    )
    model.model_config["json_schema_extra"] = {"example": example}
    model.model_rebuild(force=True)
    return model


class FeedbackResult(BaseModel):
    """How many of the reported outcomes belong to a prediction in the log (all of them are kept)."""

    model_config = ConfigDict(protected_namespaces=())

    received: int = Field(description="outcomes in the call")
    matched: int = Field(description="outcomes whose prediction is in the prediction log")
    unmatched: int = Field(
        description="outcomes whose prediction is not (yet) in it: an unknown id or key, a row the request did not "
        "have, a prediction older than the log keeps, or one answered less than a second ago; kept all the same"
    )
    unmatched_request_ids: list[str] = Field(
        description=f"the first {LISTED_UNMATCHED} of those reported by request id, in call order"
    )
    unmatched_keys: list[dict[str, Any]] = Field(
        default_factory=list,
        description=f"the first {LISTED_UNMATCHED} of those reported by key (no prediction with those values in "
        "the window), in call order",
    )
    model: str = Field(description="tag of the model serving")


def unseen_categories(error: ValidationError, card: ModelCard) -> list[str]:
    """The category features an error refused because their value was not one training saw."""
    categories = {spec.name for spec in card.features if spec.kind is FeatureKind.CATEGORY}
    return [
        str(entry["loc"][-1])
        for entry in error.errors(include_url=False)
        if entry["type"] == "literal_error" and entry["loc"] and str(entry["loc"][-1]) in categories
    ]
