"""The model card's shape: what training records about a model, and what serving, the UI and monitoring read."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelcard.files import CARD_FILE

# Bump when the card's shape changes, so an old model fails loudly instead of half-working. A new optional field
# with a default (`comparison`) is no change of shape: cards written before it read as having none.
CARD_VERSION = 2


class FeatureKind(StrEnum):
    """What a feature's values are; every reader of the card handles each kind."""

    NUMBER = "number"  # any finite real number
    INTEGER = "integer"  # a whole number
    BOOLEAN = "boolean"  # true or false
    CATEGORY = "category"  # one of the text values seen in training
    TEXT = "text"  # free text, read as words (a text vectorizer's input, or values nearly all distinct)
    UNUSED = "unused"  # a column the model never reads (an identifier): any JSON scalar, kept in the log only


class NumericStats(BaseModel):
    """Summary of a numeric feature over the training rows (missing values left out)."""

    min: float
    max: float
    mean: float
    std: float
    quantiles: list[float] = Field(description="the 0, 10, 20, ..., 100th percentiles")


class TextStats(BaseModel):
    """Summary of a free-text feature over the training rows: lengths, words, and a few values."""

    chars: NumericStats = Field(description="length in characters")
    words: NumericStats = Field(description="words per value (runs of two or more letters or digits, any case)")
    max_chars: int = Field(description="the longest value a request may send, in characters")
    vocabulary: list[str] = Field(
        description="training's words, most frequent first (at most modelcard.text.VOCABULARY_SIZE): "
        "the words a new value is measured against"
    )
    unseen_word_share: float = Field(
        description="the share of the test rows' words not in the vocabulary: the baseline of the live share"
    )
    samples: list[str] = Field(description="a few training values, each cut at modelcard.text.SAMPLE_CHARS")


class FeatureSpec(BaseModel):
    """One input feature: its kind, what training saw, and what the service accepts."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: FeatureKind
    dtype: str = Field(description="the pandas dtype in training, to rebuild the same frame for scikit-learn")
    nullable: bool = Field(description="missing values occurred in training, so null (or leaving it out) is accepted")
    missing: int = Field(0, description="training rows where it was missing")
    blank_as_none: bool = Field(
        False,
        description="an object column whose blanks were None in training, not NaN: rebuilt so for the model "
        "(an imputer with missing_values=None looks for None)",
    )
    stats: NumericStats | None = Field(None, description="number and integer features")
    categories: dict[str, int] | None = Field(
        None, description="category features: each value seen in training with its count, most frequent first"
    )
    dtype_categories: list[str] | None = Field(
        None, description="a pandas 'category' dtype's categories in their order (codes depend on it)"
    )
    true_count: int | None = Field(None, description="boolean features: training rows where it was true")
    text: TextStats | None = Field(None, description="text features: lengths, words and samples")
    placeholder: Any = Field(
        None,
        description='unused features: the constant of its dtype the model is handed in its place ("", 0, false, the '
        "epoch; never a training value): it never reads it, which training checks",
    )
    unseen_answered: bool | None = Field(
        None,
        description="category features: training sent the model a value it never saw and the served model answered "
        "(handle_unknown='ignore' and the like), so a deployment may accept such values (SERVING_UNSEEN_CATEGORIES)",
    )
    lower: float | None = Field(None, description="number and integer features: the smallest value accepted")
    upper: float | None = Field(None, description="number and integer features: the largest value accepted")
    title: str = Field("", description="a label for people; the name when the notebook gave none")
    description: str = ""
    unit: str = ""

    @property
    def label(self) -> str:
        """What a person sees: the title (or the name), with the unit."""
        text = self.title or self.name.replace("_", " ")
        return f"{text} ({self.unit})" if self.unit else text


class ClassMetrics(BaseModel):
    """Test-set precision, recall, F1 and support of one class."""

    precision: float
    recall: float
    f1: float
    support: int


class Metrics(BaseModel):
    """Test-set evaluation computed by the training step itself."""

    accuracy: float
    balanced_accuracy: float
    f1_macro: float
    log_loss: float | None = Field(description="None when it is undefined (a class missing from the test set)")
    roc_auc: float | None = Field(
        description="binary: of the positive class; multiclass: macro one-vs-rest; None when undefined"
    )
    positive_class: str | None = Field(None, description="binary models: the class ROC AUC is computed for")
    per_class: dict[str, ClassMetrics]
    confusion_matrix: list[list[int]] = Field(description="rows: true class, columns: predicted, in class_names order")
    n_test: int

    def value(self, name: str) -> float | None:
        """A headline metric by name (accuracy, balanced_accuracy, f1_macro, log_loss, roc_auc)."""
        return getattr(self, name)  # type: ignore[no-any-return]


class Lineage(BaseModel):
    """Where the model came from, so a run can be traced and repeated."""

    notebook: str
    notebook_sha256: str
    git_commit: str | None = Field(None, description="the commit of the repository the notebook sits in, if any")
    git_dirty: bool | None = Field(None, description="the notebook had changes not committed")
    train_fingerprint: str = Field(description="SHA-256 over the training features, labels, names and dtypes")
    test_fingerprint: str = Field(description="the same over the test split")
    libraries: dict[str, str] = Field(description="versions of the libraries the model needs to load and run")
    requirements: dict[str, str] = Field(
        default_factory=dict,
        description="the packages the notebook's requirements.txt added to the project's, as installed for "
        "training (distribution -> version): what a bento of this model installs besides the project's",
    )
    requirement_urls: dict[str, str] = Field(
        default_factory=dict,
        description="those installed from a URL rather than an index (distribution -> URL, credentials removed)",
    )
    index_options: list[str] = Field(
        default_factory=list,
        description="the index options the requirements gave (--index-url URL, --find-links …), credentials removed",
    )


class SearchSummary(BaseModel):
    """A hyper-parameter search the notebook left as its model: the service runs its best estimator."""

    search: str = Field(description="the search's class, e.g. sklearn.model_selection.GridSearchCV")
    best_params: dict[str, Any] = Field(description="the best candidate's parameters (non-JSON values as text)")
    best_score: float | None = Field(description="its mean cross-validated score; None when the search kept none")
    scoring: str | None = Field(None, description="what the score measures; None for the estimator's own score")
    candidates: int = Field(description="parameter settings tried")


# How a new model stood against the version it was to replace; a worse one was never stored.
Verdict = Literal["better", "equal", "within margin"]


class Comparison(BaseModel):
    """How the model scored, before it was stored, against the stored version it was to replace (`--gate-vs`)."""

    against: str = Field(description="the stored version compared with, its exact tag (`:latest` resolved)")
    metric: str = Field(description="the gate metric compared: the first of the model's gates")
    new: float = Field(description="this model's figure on its test rows")
    old: float = Field(
        description="the stored version's figure on the same rows, predicted through the runtime the service runs"
    )
    margin: float = Field(description="how much worse than `old` this model was allowed to be")
    verdict: Verdict = Field(description="how `new` stood against `old`")
    rows: int = Field(description="the test rows both were scored on: this model's test split")
    same_test_rows: bool = Field(
        description="the stored version's card has the same test fingerprint: both were tested on these very rows"
    )


class ModelCard(BaseModel):
    """Everything the service, the UI and monitoring need to know about a trained model."""

    model_config = ConfigDict(frozen=True)

    card_version: int = CARD_VERSION
    title: str
    description: str = ""
    features: list[FeatureSpec]
    class_names: list[str]
    metrics: Metrics
    gates: dict[str, float] = Field(
        default_factory=dict, description="the quality gates the model passed: metric -> threshold"
    )
    examples: list[dict[str, Any]] = Field(
        description="real test rows: the features (null where missing) plus their true class under 'label'"
    )
    reference: list[dict[str, Any]] = Field(
        default_factory=list,
        description="training rows (all, or an even sample of at most 1,000) with their class under 'label': "
        "the picture of the training data for the UI and the baseline for drift checks",
    )
    estimator: str
    runtime: str = Field(description="what the service runs: 'onnx' or 'sklearn'")
    runtime_note: str = ""
    preprocessor: str | None = Field(
        None, description="when the notebook kept its preprocessing apart (e.g. a DictVectorizer): its class"
    )
    search: SearchSummary | None = Field(None, description="when the notebook's model was a hyper-parameter search")
    notebook_code: list[str] = Field(
        default_factory=list,
        description="functions and classes the notebook defined itself that the model runs: saved with the model "
        "by value, and served on scikit-learn (ONNX has no form for them)",
    )
    comparison: Comparison | None = Field(
        None,
        description="the comparison with the version it was to replace; None for a first training, --gate-vs none, "
        "or a card written before comparisons",
    )
    lineage: Lineage
    n_train: int

    @property
    def feature_names(self) -> list[str]:
        """The features' names, in the model's order."""
        return [f.name for f in self.features]

    def feature(self, name: str) -> FeatureSpec:
        """One feature's spec by name."""
        for spec in self.features:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def to_json(self) -> str:
        """The card as JSON text, as it is stored beside the model (modelcard.files.CARD_FILE)."""
        return self.model_dump_json(indent=1)

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelCard:
        """Read a card back; an older card's version is named in the error."""
        data = json.loads(text)
        version = data.get("card_version") if isinstance(data, dict) else None
        if version != CARD_VERSION:
            raise ValueError(f"its card has version {version}, this service reads version {CARD_VERSION}")
        return cls.model_validate(data)

    def summary(self) -> dict[str, Any]:
        """A few headline facts for BentoML's model metadata (`bentoml models get`), which takes no nulls."""
        metrics = {name: self.metrics.value(name) for name in ("accuracy", "balanced_accuracy", "roc_auc")}
        return {
            "title": self.title,
            "card_version": self.card_version,
            "runtime": self.runtime,
            "classes": ", ".join(self.class_names),
            "features": len(self.features),
            **{f"test_{name}": round(value, 4) for name, value in metrics.items() if value is not None},
        }


def read_card(model_dir: Path) -> ModelCard:
    """The card stored in a model's folder; a model trained before cards were files is named as such."""
    path = model_dir / CARD_FILE
    if not path.is_file():
        raise ValueError(f"it has no {CARD_FILE}: it was trained by an older version of the training step")
    return ModelCard.from_json(path.read_bytes())
