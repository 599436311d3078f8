"""The drift check's figures gathered batch by batch: the same as over all values, a bounded uniform sample."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from monitoring.stats import (
    binned_shares,
    category_drift,
    class_mix_drift,
    counted_category_drift,
    counted_class_mix,
    numeric_drift,
    psi,
    quantile_edges,
)
from monitoring.streamdrift import BinCounts, Sample


def test_counted_category_and_class_figures_equal_those_of_the_values_themselves() -> None:
    rng = np.random.default_rng(0)
    training = {"month-to-month": 550, "one_year": 250, "two_year": 200}
    live = [str(v) for v in rng.choice([*training, "(blank)"], 5000, p=[0.6, 0.2, 0.15, 0.05])]
    counts = {value: live.count(value) for value in dict.fromkeys(live)}
    assert counted_category_drift("contract", training, counts, 0.2, 0.01) == category_drift(
        "contract", training, live, 0.2, 0.01
    )
    labels, predicted = ["no"] * 70 + ["yes"] * 30, ["no"] * 500 + ["yes"] * 400
    assert counted_class_mix(labels, {"no": 500, "yes": 400}, ["no", "yes"], 0.2) == class_mix_drift(
        labels, predicted, ["no", "yes"], 0.2
    )


def test_bins_counted_batch_by_batch_give_the_psi_of_all_the_values() -> None:
    rng = np.random.default_rng(1)
    reference, live = rng.normal(size=1000), rng.normal(0.3, 1, 300_000)
    live[::7] = np.nan  # blanks are left out
    bins = BinCounts(reference)
    for start in range(0, len(live), 65_536):
        bins.add(live[start : start + 65_536])
    present = live[~np.isnan(live)]
    expected = psi(binned_shares(reference, bins.edges), binned_shares(present, bins.edges))
    assert len(bins.edges) == len(quantile_edges(reference)) == 9
    sampled = numeric_drift("x", reference, present[:1000], 0.2, 0.01)
    whole = bins.with_all_rows(sampled, reference, 0.2, 0.01)
    assert whole.psi == pytest.approx(expected)
    assert whole.live_summary == f"mean {present.mean():.4g}" and whole.pvalue == sampled.pvalue


def test_the_sample_holds_every_row_until_it_is_full_then_a_uniform_share() -> None:
    sample = Sample(size=1000, seed=2)
    sample.add(pa.table({"x": np.arange(600)}))
    assert sample.whole and sorted(sample.column("x").to_pylist()) == list(range(600))
    for start in range(600, 100_000, 10_000):
        sample.add(pa.table({"x": np.arange(start, min(start + 10_000, 100_000))}))
    kept = np.array(sample.column("x").to_pylist())
    assert not sample.whole and len(kept) == 1000 == len(set(kept.tolist()))
    # Uniform over the stream: each tenth of it holds about a tenth of the sample.
    shares = np.bincount(kept // 10_000, minlength=10) / 1000
    assert np.all(np.abs(shares - 0.1) < 0.04)
