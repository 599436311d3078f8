"""The API's answer models (the request schema itself: modelcard/schema.py)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
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
from pydantic.json_schema import GetJsonSchemaHandler, JsonSchemaValue
from pydantic_core import PydanticCustomError

from modelcard.card import FeatureKind, ModelCard
from modelcard.schema import MAX_UNUSED_CHARS, field_name
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
        {
            "anyOf": [
                {"type": "string", "minLength": 1, "maxLength": MAX_UNUSED_CHARS},
                {"type": "number"},
                {"type": "boolean"},
            ]
        }
    ),
]


BY_ID, BY_KEY = ("request_id", "row", "label"), ("key", "since", "until", "label")


def _date_and_time(value: Any) -> Any:
    """Text with a date and a time, as the document's date-time says: no number for a Unix time, no bare date."""
    if isinstance(value, str) and len(value) > 10 and value[10] in "Tt _":
        return value
    raise PydanticCustomError("datetime_text", "must be a date and time in ISO 8601, e.g. 2026-11-01T00:00:00Z")


DateTimeText = Annotated[datetime, BeforeValidator(_date_and_time)]


class _OutcomeRules(BaseModel):
    """What every outcome model checks beyond its fields' types: one way to name the prediction.

    Its JSON schema says so too (`oneOf` the two ways, each with only its own fields), so a client or a fuzzer
    reading the OpenAPI document makes no outcome the service refuses.
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _names_one_prediction(self) -> Any:
        fields: Any = self
        given = self.model_fields_set
        if (fields.request_id is not None) == (fields.key is not None):
            raise PydanticCustomError(
                "outcome_target", "give either request_id (and row) or key (and optionally since/until), not both"
            )
        other = [name for name in (BY_KEY if fields.request_id is not None else BY_ID) if name in given]
        other = [name for name in other if name != "label"]  # every outcome has one
        if other:
            way = "request_id" if fields.request_id is not None else "key"
            raise PydanticCustomError(
                "outcome_fields", "{fields} cannot go with {way}", {"fields": ", ".join(other), "way": way}
            )
        return self

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler.resolve_ref_schema(handler(core_schema))
        properties = schema.pop("properties")
        for name in ("type", "required", "additionalProperties"):
            schema.pop(name, None)
        schema["oneOf"] = [
            _one_way(properties, BY_ID, "request_id", not_null=("request_id",)),
            _one_way(properties, BY_KEY, "key", not_null=("key",)),
        ]
        return schema


def _one_way(properties: dict[str, Any], names: tuple[str, ...], required: str, not_null: tuple[str, ...]) -> Any:
    """One way to name a prediction: only its fields, the one that names it required and not null."""
    chosen = {name: properties[name] for name in names}
    for name in not_null:
        field = {k: v for k, v in chosen[name].items() if k != "default"}
        variants = [v for v in field.pop("anyOf", []) if v.get("type") != "null"]
        chosen[name] = {**field, **variants[0]} if len(variants) == 1 else field
    return {"type": "object", "properties": chosen, "required": [required, "label"], "additionalProperties": False}


def _key_model(card: ModelCard) -> Any:
    """The logged values of some of the card's columns: each optional, at least one, no other."""

    def _at_least_one(self: Any) -> Any:
        if not self.model_fields_set:
            raise PydanticCustomError("key_empty", "name at least one column and its logged value")
        return self

    names = [spec.name for spec in card.features]

    def _known_columns(value: Any) -> Any:
        unknown = [name for name in value if name not in names] if isinstance(value, dict) else []
        if unknown:
            raise PydanticCustomError(
                "key_column",
                "{column!r} is not an input column; the columns are: {columns}",
                {"column": str(unknown[0])[:60], "columns": ", ".join(names)},
            )
        return value

    fields: dict[str, Any] = {
        field_name(i): (KeyValue, Field(None, alias=spec.name)) for i, spec in enumerate(card.features)
    }
    model: Any = create_model(
        "OutcomeKey",
        __config__=ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1}),
        __doc__="Input columns' values as the prediction log keeps them (an id the model does not read, say).",
        __validators__={
            "known_columns": cast(Any, model_validator(mode="before")(_known_columns)),
            "at_least_one": cast(Any, model_validator(mode="after")(_at_least_one)),
        },
        **fields,
    )
    return model


def key_values(key: BaseModel) -> dict[str, Any]:
    """A validated key as {column: value}, the columns given only."""
    return key.model_dump(by_alias=True, exclude_unset=True)


def outcome_model(card: ModelCard) -> Any:
    """One outcome reported for an earlier prediction: by its answer's X-Request-ID and row, or by key columns."""
    example: JsonDict = {
        "request_id": "4f1c0a9e2b7d4e110000000000000001",
        "row": 0,
        "label": card.class_names[-1],
    }
    keys = [spec.name for spec in card.features if spec.kind is FeatureKind.UNUSED] or [card.features[0].name]
    logged_example = card.examples[0].get(keys[0]) if card.examples else None
    key_example = {keys[0]: logged_example if logged_example is not None else "…"}
    labels: Any = Literal[tuple(card.class_names)]
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
            ),
        ),
        row=(int, Field(0, ge=0, strict=True, description="the row of a /predict_batch request; 0 for /prediction")),
        key=(
            _key_model(card) | None,
            Field(
                None,
                description="instead of request_id: the logged values of one or more input columns, e.g. a "
                "customer id the model does not read; the newest prediction in the window with all of them matches",
                json_schema_extra={"example": key_example},
            ),
        ),
        since=(
            DateTimeText | None,
            Field(
                None,
                description="with key: the earliest prediction time to match (ISO 8601 date and time; UTC unless "
                "it says)",
            ),
        ),
        until=(
            DateTimeText | None,
            Field(
                None,
                description="with key: predictions before this time (default: now); a window with since at or "
                "after until matches nothing",
            ),
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
