"""The PSI rules made from the churn card, in a real Prometheus scraping the served churn bento: only the shifted
feature drifts, at the PSI Python computes from the same rows."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest

from monitoring.drift import check, load_card
from monitoring.rules import CATEGORY, FAMILIES, main, reference_shares, shares
from monitoring.stats import PSI_FLOOR, psi
from tests.e2e.prometheus import Prometheus, run_prometheus
from tests.e2e.server import Server

pytestmark = pytest.mark.slow

ROWS = 400  # of the card's training sample: more than any feature's minimum, in one /predict_batch


def _firing(prometheus: Prometheus) -> set[str]:
    """The features ClassifierFeatureDrift is pending or firing for."""
    alerts = httpx.get(f"{prometheus.url}/api/v1/alerts").json()["data"]["alerts"]
    return {a["labels"]["feature"] for a in alerts if a["labels"]["alertname"] == "ClassifierFeatureDrift"}


def test_only_the_shifted_feature_drifts(
    served_churn_bento: Server, churn_tag: str, tmp_path: Path, artifacts: Path
) -> None:
    started = time.monotonic()
    rules = tmp_path / "psi.rules.yml"
    assert main(["--model", churn_tag, "--window", "1m", "--for", "0s", "--output", str(rules)]) == 0
    card = load_card(churn_tag)
    rows = [{k: v for k, v in row.items() if k != "label"} for row in card.reference[:ROWS]]
    shifted = [{**row, "contract": "month-to-month"} for row in rows]
    target = served_churn_bento.url.removeprefix("http://")
    with run_prometheus(target, tmp_path, artifacts / "prometheus-psi.log", rules=rules) as prometheus:
        # One scrape before the batch: the window's increase starts from it.
        assert prometheus.wait_for('up{job="model-service"}', 1.0) == 1.0
        baseline = time.monotonic()
        assert httpx.post(f"{served_churn_bento.url}/predict_batch", json=shifted, timeout=30).status_code == 200
        sent = time.monotonic()
        while "contract" not in _firing(prometheus):
            assert time.monotonic() < sent + 20, "ClassifierFeatureDrift never fired for contract"
            time.sleep(0.25)
        to_alert = time.monotonic() - sent
        time.sleep(2)  # two more evaluations: nothing else fires meanwhile
        assert _firing(prometheus) == {"contract"}
        # increase() stretches each counter's rise to the window's edges, less for one that started near 0, so the
        # cumulative buckets' differences come out a little off: a PSI 0.006 off 15 s after the first scrape (with
        # 9 rows counted before it), more before. Over an hour's window it is nothing.
        time.sleep(max(0.0, baseline + 15 - time.monotonic()))
        measured = {
            r["metric"]["feature"]: float(r["value"][1])
            for r in prometheus.query('{__name__=~"classifier:input_.*:psi1m"}')
        }
        counted = {
            r["metric"]["feature"]: float(r["value"][1])
            for r in prometheus.query('{__name__=~"classifier:input_.*:rows1m"}')
        }
    watched = [spec for spec in card.features if spec.kind in FAMILIES]
    assert set(measured) == {spec.name for spec in watched}
    now = datetime.now(UTC)
    window = argparse.Namespace(psi_threshold=0.2, alpha=0.01, start=now, end=now)
    checked, _, _ = check([{"features": row, "class": card.class_names[0]} for row in shifted], card, "", window)
    by_feature = {drift.feature.removesuffix(" (length)"): drift.psi for drift in checked.features}
    python, batch = {}, {}
    for spec in watched:
        values = [row.get(spec.name) for row in shifted]
        reference = np.array([round(max(s, PSI_FLOOR), 6) for s in reference_shares(spec, card).values()])
        python[spec.name] = psi(reference, np.array(list(shares(spec, values).values())))
        batch[spec.name] = by_feature[spec.name]  # the batch drift check's, on the same rows
    figures = {
        name: {"prometheus": measured[name], "python": python[name], "batch check": batch[name], "rows": counted[name]}
        for name in measured
    }
    timings = {"seconds": time.monotonic() - started, "seconds_to_alert": to_alert}
    (artifacts / "prometheus-psi.json").write_text(json.dumps({**timings, "psi": figures}, indent=1))
    assert [name for name, value in measured.items() if value > 0.2] == ["contract"], figures
    for spec in watched:
        name = spec.name
        assert measured[name] == pytest.approx(python[name], rel=0.02, abs=0.01), (name, figures[name])
        # The batch check bins numbers at its sample's quantiles, open at both ends; these rules at the card's
        # deciles with a bin on either side of training's range. Categories are binned alike.
        tolerance = 1e-4 if FAMILIES[spec.kind] is CATEGORY else 0.02
        assert abs(python[name] - batch[name]) < tolerance, (name, figures[name])
