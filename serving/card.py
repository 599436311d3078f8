"""The model card: what the training step records about a model and the service reads back."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Bump when the card's shape changes, so an old model fails loudly instead of half-working.
CARD_VERSION = 1


class FeatureStats(BaseModel):
    """Summary of one feature over the training rows."""

    min: float
    max: float
    mean: float
    std: float


class FeatureLimits(BaseModel):
    """Values the service accepts for one feature: gt < value <= le (gt may be absent)."""

    gt: float | None
    le: float


class ClassMetrics(BaseModel):
    """Test-set precision, recall, F1 and support of one class."""

    precision: float
    recall: float
    f1: float
    support: int


class Metrics(BaseModel):
    """Test-set evaluation computed by the training step itself."""

    accuracy: float
    per_class: dict[str, ClassMetrics]
    confusion_matrix: list[list[int]] = Field(description="rows: true class, columns: predicted, in class_names order")
    n_test: int


class ModelCard(BaseModel):
    """Everything the service, the UI and monitoring need to know about a trained model."""

    model_config = ConfigDict(frozen=True)

    card_version: int = CARD_VERSION
    feature_names: list[str]
    class_names: list[str]
    metrics: Metrics
    feature_stats: dict[str, FeatureStats]
    feature_limits: dict[str, FeatureLimits]
    examples: list[dict[str, Any]] = Field(
        description="real test rows: the features plus their true class under 'label'"
    )
    reference: list[dict[str, Any]] = Field(
        default_factory=list,
        description="training rows (all, or an even sample of at most 1,000) with their class under 'label': "
        "the picture of the training data for the UI and the baseline for drift checks",
    )
    estimator: str
    sklearn_version: str
    runtime: str = Field(description="what the service runs: 'onnx' or 'sklearn'")
    runtime_note: str = ""
    notebook: str
    notebook_sha256: str
    n_train: int

    def to_metadata(self) -> dict[str, Any]:
        """Plain JSON-able dict for BentoML's model metadata."""
        return self.model_dump(mode="json")

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> ModelCard:
        """Read a card back from a stored model's metadata."""
        return cls.model_validate(metadata)
