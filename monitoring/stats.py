"""Drift statistics: the population stability index, and a test of the same question for each kind of feature.

- numbers and integers: PSI over the reference's quantile bins, and the two-sample Kolmogorov-Smirnov test;
- categories and booleans: PSI over the values (blank is a value of its own), and a chi-squared test of
  homogeneity between the training counts and the live counts;
- free text: its lengths as a number, and its share of words not in the card's vocabulary against the
  card's baseline (the test rows' share) with a one-sided exact binomial test and a minimum effect size;
- the predicted-class mix against the training labels: PSI.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

# Empty bins would make PSI infinite; this floor is the usual convention (the Prometheus rules use it too).
PSI_FLOOR = 1e-4
BLANK = "(blank)"
# The least rise in the share of new words that counts as drift, as Cohen's h (the difference of the two shares'
# arcsines, where a share's noise is the same size whatever the share): 0.2, his "small" effect, is 1 % -> 4 %,
# 3 % -> 7.3 %, 10 % -> 16.8 %. Without it a million words would flag a rise of a tenth of a point, and words
# are not independent draws (a value's words come together), so the test's p-value alone overstates the evidence.
MIN_NEW_WORD_EFFECT = 0.2
IN_VOCABULARY, NEW_WORDS = "in the vocabulary", "new"


def quantile_edges(reference: np.ndarray, bins: int = 10) -> np.ndarray:
    """Inner bin edges at the reference's deciles (repeated values merged), open at both ends."""
    return np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))


def binned_shares(values: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    """Share of the values in each bin: (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    counts = np.bincount(np.searchsorted(inner_edges, values, side="left"), minlength=len(inner_edges) + 1)
    return counts / max(len(values), 1)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors: < 0.1 stable, 0.1 to 0.2 moderate, >= 0.2 shifted."""
    e = np.clip(expected, PSI_FLOOR, None)
    a = np.clip(actual, PSI_FLOOR, None)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass(frozen=True)
class FeatureDrift:
    """How far one feature's live values moved from its training values."""

    feature: str
    kind: str  # "numeric", "category" or "words" (a text feature's new words)
    psi: float
    test: str  # "KS", "chi-squared" or "binomial"
    statistic: float
    pvalue: float
    reference_summary: str  # the mean, or the most common value and its share
    live_summary: str
    drifted: bool
    reference_shares: dict[str, float] = field(default_factory=dict)  # categories and words only
    live_shares: dict[str, float] = field(default_factory=dict)


def bin_count(reference_size: int, live_size: int) -> int:
    """Fewer bins for small samples: PSI's noise grows with bins/rows, about (bins-1)(1/n + 1/m) for no drift."""
    return int(np.clip(min(reference_size, live_size) // 25, 4, 10))


def numeric_drift(
    feature: str, reference: np.ndarray, live: np.ndarray, psi_threshold: float, alpha: float
) -> FeatureDrift:
    """PSI over the reference's quantiles and a KS test, on the values present (blanks left out)."""
    reference, live = reference[~np.isnan(reference)], live[~np.isnan(live)]
    if live.size == 0 or reference.size == 0:
        return FeatureDrift(feature, "numeric", 0.0, "KS", 0.0, 1.0, _mean(reference), "no values", drifted=False)
    edges = quantile_edges(reference, bin_count(len(reference), len(live)))
    index = psi(binned_shares(reference, edges), binned_shares(live, edges))
    test = stats.ks_2samp(reference, live)
    return FeatureDrift(
        feature,
        "numeric",
        index,
        "KS",
        float(test.statistic),
        float(test.pvalue),
        _mean(reference),
        _mean(live),
        drifted=index >= psi_threshold or float(test.pvalue) < alpha,
    )


def category_drift(
    feature: str, reference_counts: Mapping[str, int], live: Sequence[str], psi_threshold: float, alpha: float
) -> FeatureDrift:
    """PSI over the values and a chi-squared test of the training counts against the live counts."""
    return counted_category_drift(feature, reference_counts, Counter(live), psi_threshold, alpha)


def counted_category_drift(
    feature: str,
    reference_counts: Mapping[str, int],
    live_counts: Mapping[str, int],
    psi_threshold: float,
    alpha: float,
) -> FeatureDrift:
    """category_drift from the live values' counts: what a streamed window gathers (monitoring/streamdrift.py)."""
    counts = {value: 0 for value in reference_counts} | dict(live_counts)
    values = list(counts)
    expected = np.array([reference_counts.get(v, 0) for v in values], dtype=float)
    actual = np.array([counts[v] for v in values], dtype=float)
    expected_shares, actual_shares = expected / max(expected.sum(), 1), actual / max(actual.sum(), 1)
    index = psi(expected_shares, actual_shares)
    seen = (expected + actual) > 0
    if seen.sum() >= 2 and actual.sum() > 0:
        test = stats.chi2_contingency(np.vstack([expected[seen], actual[seen]]))
        statistic, pvalue = float(test.statistic), float(test.pvalue)
    else:
        statistic, pvalue = 0.0, 1.0  # a single value on both sides: nothing to test
    return FeatureDrift(
        feature,
        "category",
        index,
        "chi-squared",
        statistic,
        pvalue,
        _top(values, expected_shares),
        _top(values, actual_shares),
        drifted=index >= psi_threshold or pvalue < alpha,
        reference_shares=dict(zip(values, expected_shares.round(4).tolist(), strict=True)),
        live_shares=dict(zip(values, actual_shares.round(4).tolist(), strict=True)),
    )


def cohens_h(baseline: float, share: float) -> float:
    """Cohen's h of a share against a baseline: positive when the share is larger."""
    return 2 * math.asin(math.sqrt(share)) - 2 * math.asin(math.sqrt(baseline))


def new_word_drift(feature: str, baseline: float, words: int, unseen: int, alpha: float) -> FeatureDrift:
    """The live share of words not in the vocabulary against the card's baseline share.

    It drifts when a one-sided exact binomial test finds more new words than the baseline (p < alpha) and the
    rise is at least MIN_NEW_WORD_EFFECT. Fewer new words is no drift: live text like training's own has
    fewer than the test rows the baseline was measured on. The PSI over the two shares is reported, not used.
    """
    baseline = min(max(baseline, 0.0), 1.0)
    expected = {IN_VOCABULARY: round(1.0 - baseline, 4), NEW_WORDS: round(baseline, 4)}
    if words == 0:
        return FeatureDrift(
            feature, "words", 0.0, "binomial", 0.0, 1.0, _share(baseline), "no words", False, expected, {}
        )
    share = unseen / words
    pvalue = float(stats.binomtest(unseen, words, baseline, alternative="greater").pvalue)
    effect = cohens_h(baseline, share)
    return FeatureDrift(
        feature,
        "words",
        psi(np.array([1.0 - baseline, baseline]), np.array([1.0 - share, share])),
        "binomial",
        effect,
        pvalue,
        _share(baseline),
        _share(share),
        drifted=pvalue < alpha and effect >= MIN_NEW_WORD_EFFECT,
        reference_shares=expected,
        live_shares={IN_VOCABULARY: round(1.0 - share, 4), NEW_WORDS: round(share, 4)},
    )


def _share(share: float) -> str:
    return f"new words {share:.1%}"


def _mean(values: np.ndarray) -> str:
    return f"mean {values.mean():.4g}" if values.size else "no values"


def _top(values: list[str], shares: np.ndarray) -> str:
    if not values or shares.sum() == 0:
        return "no values"
    best = int(shares.argmax())
    return f"{values[best]} {shares[best]:.0%}"


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
    return _shares_of(Counter(labels), classes)


def _shares_of(counts: Mapping[str, int], classes: Sequence[str]) -> np.ndarray:
    """Share of each class (in `classes` order) among the counted labels of these classes."""
    values = np.array([counts.get(c, 0) for c in classes], dtype=float)
    return values / max(values.sum(), 1.0)


def class_mix_drift(
    reference_labels: Sequence[str], predicted: Sequence[str], classes: Sequence[str], psi_threshold: float
) -> ClassMixDrift:
    """Compare predicted-class shares with the training labels' shares."""
    return counted_class_mix(reference_labels, Counter(predicted), classes, psi_threshold)


def counted_class_mix(
    reference_labels: Sequence[str], predicted: Mapping[str, int], classes: Sequence[str], psi_threshold: float
) -> ClassMixDrift:
    """class_mix_drift from the predicted classes' counts."""
    expected = class_shares(reference_labels, classes)
    actual = _shares_of(predicted, classes)
    index = psi(expected, actual)
    return ClassMixDrift(
        dict(zip(classes, expected.round(4).tolist(), strict=True)),
        dict(zip(classes, actual.round(4).tolist(), strict=True)),
        index,
        float(np.max(np.abs(actual - expected))),
        drifted=index >= psi_threshold,
    )
