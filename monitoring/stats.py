"""Drift statistics: population stability index, the two-sample Kolmogorov-Smirnov test, class-mix shift."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

# Empty bins would make PSI infinite; this floor is the usual convention.
_FLOOR = 1e-4


def quantile_edges(reference: np.ndarray, bins: int = 10) -> np.ndarray:
    """Inner bin edges at the reference's deciles (repeated values merged), open at both ends."""
    return np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))


def binned_shares(values: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    """Share of the values in each bin: (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    counts = np.bincount(np.searchsorted(inner_edges, values, side="left"), minlength=len(inner_edges) + 1)
    return counts / max(len(values), 1)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors: < 0.1 stable, 0.1 to 0.2 moderate, >= 0.2 shifted."""
    e = np.clip(expected, _FLOOR, None)
    a = np.clip(actual, _FLOOR, None)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass(frozen=True)
class FeatureDrift:
    """How far one feature's live values moved from its training values."""

    feature: str
    psi: float
    ks_statistic: float
    ks_pvalue: float
    reference_mean: float
    live_mean: float
    drifted: bool


def bin_count(reference_size: int, live_size: int) -> int:
    """Fewer bins for small samples: PSI's noise grows with bins/rows, about (bins-1)(1/n + 1/m) for no drift."""
    return int(np.clip(min(reference_size, live_size) // 25, 4, 10))


def feature_drift(
    feature: str, reference: np.ndarray, live: np.ndarray, psi_threshold: float, alpha: float
) -> FeatureDrift:
    """PSI over the reference's quantiles and a KS test; drifted when PSI passes the threshold or p < alpha."""
    edges = quantile_edges(reference, bin_count(len(reference), len(live)))
    index = psi(binned_shares(reference, edges), binned_shares(live, edges))
    test = stats.ks_2samp(reference, live)
    return FeatureDrift(
        feature,
        index,
        float(test.statistic),
        float(test.pvalue),
        float(reference.mean()),
        float(live.mean()),
        drifted=index >= psi_threshold or float(test.pvalue) < alpha,
    )


@dataclass(frozen=True)
class ClassMixDrift:
    """How far the live predicted-class shares moved from the training label shares."""

    reference_shares: dict[str, float]
    live_shares: dict[str, float]
    psi: float
    largest_change: float
    drifted: bool


def class_shares(labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Share of each class (in `classes` order) among the labels."""
    counts = np.array([sum(1 for label in labels if label == c) for c in classes], dtype=float)
    return counts / max(counts.sum(), 1.0)


def class_mix_drift(
    reference_labels: Sequence[str], predicted: Sequence[str], classes: Sequence[str], psi_threshold: float
) -> ClassMixDrift:
    """Compare predicted-class shares with the training labels' shares."""
    expected = class_shares(reference_labels, classes)
    actual = class_shares(predicted, classes)
    index = psi(expected, actual)
    return ClassMixDrift(
        dict(zip(classes, expected.round(4).tolist(), strict=True)),
        dict(zip(classes, actual.round(4).tolist(), strict=True)),
        index,
        float(np.max(np.abs(actual - expected))),
        drifted=index >= psi_threshold,
    )
