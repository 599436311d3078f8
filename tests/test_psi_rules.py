"""PSI rules made from a model card: valid for the real cards, and promtool finds only the shifted feature."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import bentoml
import numpy as np
import pytest
import yaml

from modelcard.card import FeatureKind, ModelCard
from monitoring.drift import load_card
from monitoring.metrics import DECILE_BUCKETS, PREFIX
from monitoring.rules import CATEGORY, FAMILIES, Options, binned, bins, main, reference_shares, rule_file, shares
from monitoring.stats import BLANK, PSI_FLOOR, psi
from tests.fakes import CONTRACTS, PAYMENTS, make_churn_card, spread, text_feature
from tests.test_prometheus_rules import promtool

MODEL = "churn_clf:test"


@pytest.mark.parametrize("tag_fixture", ["trained_tag", "churn_tag"])
def test_rules_for_the_iris_and_churn_cards_pass_promtool(
    tag_fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    tag = request.getfixturevalue(tag_fixture)
    output = tmp_path / "psi.rules.yml"
    latest = str(bentoml.models.get(tag.split(":")[0] + ":latest").tag)  # other tests may have stored a newer one
    assert main(["--model", tag.split(":")[0] + ":latest", "--output", str(output)]) == 0
    result = promtool("check", "rules", output)
    assert result.returncode == 0 and "error" not in result.stdout + result.stderr, result.stdout + result.stderr
    rules = [rule for group in yaml.safe_load(output.read_text())["groups"] for rule in group["rules"]]
    minimums = {rule["labels"]["feature"] for rule in rules if rule.get("record") == f"{PREFIX}:input_psi:min_rows"}
    card = load_card(latest)
    assert minimums == {spec.name for spec in card.features if spec.kind is not FeatureKind.UNUSED}
    alerts = [rule for rule in rules if "alert" in rule]
    assert {a["alert"] for a in alerts} == {"ClassifierFeatureDrift"} and alerts[0]["labels"]["model"] == latest


def test_an_unknown_model_writes_nothing(tmp_path: Path) -> None:
    assert main(["--model", "no_such_clf:latest", "--output", str(tmp_path / "psi.rules.yml")]) == 2
    assert not (tmp_path / "psi.rules.yml").exists()


def _rows(count: int, seed: int) -> list[dict[str, Any]]:
    """Customers like make_churn_card's training, with a short note."""
    rng = np.random.default_rng(seed)
    return [
        {
            "tenure": int(rng.integers(0, 73)),
            "monthlycharges": round(float(rng.uniform(18, 120)), 2),
            "totalcharges": None if rng.random() < 0.05 else round(float(rng.uniform(18, 8700)), 2),
            "seniorcitizen": bool(rng.random() < 0.16),
            "contract": str(rng.choice(list(CONTRACTS), p=[0.55, 0.25, 0.2])),
            "paymentmethod": None if rng.random() < 0.02 else str(rng.choice(list(PAYMENTS))),
            "note": "a" * int(rng.integers(1, 101)),
        }
        for _ in range(count)
    ]


@pytest.fixture
def card() -> ModelCard:
    """make_churn_card with a free-text note and a training sample of 500 rows."""
    base = make_churn_card()
    note = text_feature("note", ["a"], spread(1, 100), 0.05)
    return base.model_copy(update={"features": [*base.features, note], "reference": _rows(500, seed=1)})


def _input_series(card: ModelCard, rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Counters growing each minute by what /metrics counts for these rows."""
    series = []
    for spec in card.features:
        counts = Counter(binned(spec, [row[spec.name] for row in rows]))
        family = FAMILIES[spec.kind]
        if family is CATEGORY:
            named = [
                (f'{PREFIX}_input_category_total{{feature="{spec.name}",value="{b}"}}', counts[b]) for b in bins(spec)
            ]
            named[-1] = (f'{PREFIX}_input_missing_total{{feature="{spec.name}"}}', counts[BLANK])
        else:
            cumulative = np.cumsum([counts[b] for b in bins(spec)]).tolist()
            bounds = [*map(str, DECILE_BUCKETS), "+Inf"]
            named = [
                (f'{family.histogram}{{feature="{spec.name}",le="{le}"}}', n)
                for le, n in zip(bounds, [*cumulative, cumulative[-1]], strict=True)
            ]
        series += [{"series": name, "values": f"0+{n}x120"} for name, n in named]
    return series


def _expected_psi(card: ModelCard, rows: list[dict[str, Any]]) -> dict[str, float]:
    """Each feature's PSI computed in Python with monitoring.stats, against the file's (rounded) reference."""
    expected = {}
    for spec in card.features:
        reference = [round(max(share, PSI_FLOOR), 6) for share in reference_shares(spec, card).values()]
        live = list(shares(spec, [row[spec.name] for row in rows]).values())
        expected[spec.name] = psi(np.array(reference), np.array(live))
    return expected


def test_promtool_finds_only_the_shifted_feature_at_pythons_psi(card: ModelCard, tmp_path: Path) -> None:
    rows = [{**row, "monthlycharges": row["monthlycharges"] + 40} for row in _rows(300, seed=2)]
    expected = _expected_psi(card, rows)
    assert [name for name, value in expected.items() if value > 0.2] == ["monthlycharges"]
    (tmp_path / "psi.rules.yml").write_text(rule_file(card, MODEL, Options()))
    psi_samples = [
        {
            "expr": f"round({PREFIX}:{FAMILIES[spec.kind].name}:psi1h{{feature={spec.name!r}}}, 0.001)".replace(
                "'", '"'
            ),
            "eval_time": "100m",
            "exp_samples": [
                {"labels": f'{{feature="{spec.name}"}}', "value": math.floor(expected[spec.name] * 1000 + 0.5) / 1000}
            ],
        }
        for spec in card.features
    ]
    quiet = _input_series(card, rows[:1])  # one value a minute: fewer than any feature's minimum in an hour
    drifted_alert = {
        "exp_labels": {"severity": "ticket", "model": MODEL, "psi_over": "deciles", "feature": "monthlycharges"},
        "exp_annotations": {
            "summary": "monthlycharges's values moved away from training's",
            "description": f"PSI {expected['monthlycharges']:.2f} over the last 1h against the model card's training "
            "sample (above 0.2); run python -m monitoring.drift for the detail.",
        },
    }
    tests = {
        "rule_files": ["psi.rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": "monthly charges 40 higher",
                "interval": "1m",
                "input_series": _input_series(card, rows),
                "promql_expr_test": psi_samples,
                "alert_rule_test": [
                    {"eval_time": "20m", "alertname": "ClassifierFeatureDrift", "exp_alerts": []},
                    {"eval_time": "100m", "alertname": "ClassifierFeatureDrift", "exp_alerts": [drifted_alert]},
                ],
            },
            {
                "name": "the same, one row a minute",
                "interval": "1m",
                "input_series": quiet,
                "alert_rule_test": [{"eval_time": "100m", "alertname": "ClassifierFeatureDrift", "exp_alerts": []}],
            },
        ],
    }
    (tmp_path / "psi.test.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = promtool("test", "rules", tmp_path / "psi.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
