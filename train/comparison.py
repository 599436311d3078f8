"""The gate against the version before: a new model must score about as well as the stored one it would replace.

Both are scored on the new run's test rows, the stored one through the predictor the service runs
(`runtime/predictor.py`), so each figure is what that model would answer those rows with (docs/training.md).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import bentoml
import numpy as np
import pandas as pd
from bentoml.exceptions import NotFound

from modelcard.card import Comparison, FeatureKind, Metrics, Verdict
from runtime.evaluation import LOWER_IS_BETTER, evaluate
from runtime.predictor import ModelLoadError, Predictor, load_predictor
from runtime.table import FeatureTable
from train.errors import ModelCheckFailed

logger = logging.getLogger(__name__)

# `--gate-vs none`: store the new model without comparing it (a deliberate change of features or classes).
SKIP = "none"
# A new model may score this much worse on the gate metric than the version before (docs/training.md says why).
DEFAULT_MARGIN = 0.01
# Figures closer than this are equal: the same model retrained gives the same figures, up to float rounding.
EQUAL_WITHIN = 1e-12


def previous_version(requested: str | None, name: str) -> bentoml.Model | None:
    """The stored model to compare with: `requested`, else `<name>:latest` if stored; None to skip or for a first."""
    if requested is not None and requested.lower() == SKIP:
        logger.info("--gate-vs none: the new model is not compared with a stored version")
        return None
    try:
        return bentoml.models.get(requested or f"{name}:latest")
    except NotFound:
        if requested is None:
            logger.info("No %s in the model store yet: nothing to compare the new model with", name)
            return None
        raise ModelCheckFailed(
            f"--gate-vs {requested} is not in the model store (`bentoml models list` shows what is): name a stored "
            "version, or pass --gate-vs none to store the new model without comparing it."
        ) from None


@dataclass(frozen=True)
class Candidate:
    """The new model as the comparison sees it: its name for people, its test rows and labels, classes and figures."""

    name: str  # e.g. "churn_clf from notebooks/churn.ipynb"
    rows: pd.DataFrame
    labels: Any
    class_names: list[str]
    metrics: Metrics
    test_fingerprint: str


def compare(previous: bentoml.Model, new: Candidate, metric: str, margin: float) -> Comparison:
    """Score `previous` on the new test rows and judge the new model against it; refuse one worse beyond `margin`."""
    tag = str(previous.tag)
    predictor = _load(previous, new)
    if set(predictor.card.class_names) != set(new.class_names):
        classes = f"{', '.join(predictor.card.class_names)}, the new one {', '.join(new.class_names)}"
        raise _not_comparable(tag, new, f"their classes differ ({tag} answers {classes})")
    probabilities = _predict(predictor, new)
    old_value = evaluate(probabilities, new.labels, predictor.card.class_names).value(metric)
    new_value = new.metrics.value(metric)
    if old_value is None or new_value is None:
        raise _not_comparable(tag, new, f"test {metric} is not defined for both on the new test rows")
    verdict = judge(metric, new_value, old_value, margin)
    if verdict is None:
        raise ModelCheckFailed(_worse_message(new, tag, metric, (new_value, old_value), margin))
    comparison = Comparison(
        against=tag,
        metric=metric,
        new=new_value,
        old=old_value,
        margin=margin,
        verdict=verdict,
        rows=len(new.rows),
        same_test_rows=predictor.card.lineage.test_fingerprint == new.test_fingerprint,
    )
    logger.info(
        "Compared with %s on the %d new test rows: %s %.4f against its %.4f, margin %g: %s",
        tag, len(new.rows), metric, new_value, old_value, margin, verdict,
    )  # fmt: skip
    return comparison


def judge(metric: str, new: float, old: float, margin: float) -> Verdict | None:
    """How `new` stands against `old` on `metric`; None when it is worse by more than `margin`."""
    worse_by = (new - old) if metric in LOWER_IS_BETTER else (old - new)
    if abs(worse_by) <= EQUAL_WITHIN:
        return "equal"
    if worse_by < 0:
        return "better"
    return "within margin" if worse_by <= margin + EQUAL_WITHIN else None


def _load(previous: bentoml.Model, new: Candidate) -> Predictor:
    """The stored version's predictor, as `bentoml serve` builds it (SERVING_RUNTIME=auto)."""
    try:
        return load_predictor(previous, "auto")
    except ModelLoadError as error:
        raise _not_comparable(str(previous.tag), new, f"it cannot be loaded here: {error}") from error


def _predict(predictor: Predictor, new: Candidate) -> np.ndarray:
    """The stored version's probabilities for the new rows, fed to its runtime as the service feeds a request."""
    features = predictor.card.features
    missing = [spec for spec in features if spec.name not in new.rows.columns]
    read = [spec.name for spec in missing if spec.kind is not FeatureKind.UNUSED]
    if read:
        raise _not_comparable(
            predictor.tag, new, f"{predictor.tag} reads {', '.join(read)}, which the new test rows lack"
        )
    # A request may leave out a column the model never reads, as these rows do: the model gets its placeholder.
    rows = new.rows.assign(**{spec.name: None for spec in missing})
    try:
        return np.asarray(predictor.runtime.predict_proba(FeatureTable.from_frame(features, rows)), dtype=np.float64)
    except Exception as error:  # whatever the stored model raises on rows it was never trained for
        reason = f"{predictor.tag} cannot predict the new test rows ({type(error).__name__}: {error})"
        raise _not_comparable(predictor.tag, new, reason) from error


def _not_comparable(tag: str, new: Candidate, reason: str) -> ModelCheckFailed:
    """The refusal of a comparison that cannot be made, with the ways on."""
    return ModelCheckFailed(
        f"the new {new.name} cannot be compared with {tag}, the version it would replace: {reason}. If the change "
        "is deliberate, train with --gate-vs none (its card then records no comparison), or compare with another "
        "stored version: --gate-vs NAME:VERSION."
    )


def _worse_message(new: Candidate, tag: str, metric: str, figures: tuple[float, float], margin: float) -> str:
    """Both versions, the metric, both figures (new, old) and the margin, and what to do."""
    new_value, old_value = figures
    gap = abs(new_value - old_value)
    relation = "above" if metric in LOWER_IS_BETTER else "below"
    # Rounded up, so the margin named is one this model would pass.
    enough = math.ceil(gap * 1000) / 1000
    return (
        f"the new {new.name} scores test {metric} {new_value:.4f}, {gap:.4f} {relation} the {old_value:.4f} of "
        f"{tag}, the version it would replace, on the same {len(new.rows)} test rows: worse by more than the "
        f"allowed margin {margin:g}. Improve the model in the notebook; or, if it is deliberate, allow it "
        f"(--gate-vs-margin {enough:g}) or store it without the comparison (--gate-vs none)."
    )
