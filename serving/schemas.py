"""Request and response models, built from the model card so the API always matches the model it serves."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from serving.card import ModelCard


class PredictionResult(BaseModel):
    """The answer for one row of measurements."""

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


def _feature_field(card: ModelCard, name: str) -> tuple[type[float], Any]:
    """One strict, bounded float field, documented with its training range."""
    stats, limits = card.feature_stats[name], card.feature_limits[name]
    return (
        float,
        Field(
            alias=name,
            strict=True,  # "5.1" or true is a client mistake, not a number to guess at
            allow_inf_nan=False,
            gt=limits.gt,
            le=limits.le,
            description=(
                f"{name}; training range {stats.min:g} to {stats.max:g}; "
                f"accepted: greater than {limits.gt:g} and at most {limits.le:g}"
            ),
            # OpenAPI 3.0 "example" (singular): BentoML's schema objects have no "examples".
            json_schema_extra={"example": card.examples[0][name]} if card.examples else None,
        ),
    )


def features_model(card: ModelCard) -> type[BaseModel]:
    """The flat JSON object of one row's features; unknown fields are refused."""
    example = {name: card.examples[0][name] for name in card.feature_names} if card.examples else None
    fields = {f"x{index}": _feature_field(card, name) for index, name in enumerate(card.feature_names)}
    return create_model(  # type: ignore[call-overload,no-any-return]
        "Features",
        __config__=ConfigDict(extra="forbid", json_schema_extra={"example": example} if example else None),
        **fields,
    )
