"""Category values training never saw: probed in training, refused by default, answered and flagged where accepted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import bentoml
import pytest
from pydantic import ValidationError

from modelcard.card import read_card
from modelcard.schema import features_model
from monitoring.monitor import Monitor
from runtime.predictor import Predictor
from serving.codecs import JsonListCodec, JsonObjectCodec
from serving.handler import PredictionHandler
from serving.schemas import PredictionResult
from serving.settings import Settings
from tests import notebooks
from tests.fakes import CHURN_ROW, FixedRuntime, make_churn_card
from tests.loops import run_async
from train.pipeline import TrainOptions, train


def _card(tmp_path: Path, make: Any) -> Any:
    tag = train(TrainOptions(notebook=make(tmp_path), output_dir=tmp_path / "build", gates={"accuracy": 0.5}))
    return read_card(Path(bentoml.models.get(tag).path))


def test_training_records_which_categories_the_served_model_answers_unseen(tmp_path: Path) -> None:
    card = _card(tmp_path, notebooks.mixed)
    answered = {spec.name: spec.unseen_answered for spec in card.features if spec.kind.value == "category"}
    # handle_unknown="ignore" answers; a pandas category dtype has a fixed set of values, so it is never probed.
    assert answered == {"contract": True, "payment": True, "region": False}
    assert all(spec.unseen_answered is None for spec in card.features if spec.kind.value != "category")


def test_an_encoder_that_refuses_unseen_values_is_recorded_as_such(tmp_path: Path) -> None:
    card = _card(tmp_path, notebooks.strict_encoder)
    assert {spec.name: spec.unseen_answered for spec in card.features if spec.kind.value == "category"} == {
        "contract": False,
        "payment": False,
        "region": False,
    }


def _tolerant_card() -> Any:
    card = make_churn_card()
    features = [
        spec.model_copy(update={"unseen_answered": spec.name == "contract"}) if spec.kind.value == "category" else spec
        for spec in card.features
    ]
    return card.model_copy(update={"features": features})


def test_the_schema_refuses_unseen_values_unless_accepted_and_answered() -> None:
    card = _tolerant_card()
    weekly = {**CHURN_ROW, "contract": "weekly"}
    with pytest.raises(ValidationError, match="contract"):
        features_model(card).model_validate(weekly)
    accepting = features_model(card, accept_unseen=True)
    assert accepting.model_validate(weekly)
    other = next(s.name for s in card.features if s.kind.value == "category" and s.name != "contract")
    with pytest.raises(ValidationError, match=other):  # its model did not answer one in training
        accepting.model_validate({**CHURN_ROW, other: "never-seen"})
    with pytest.raises(ValidationError, match="at most 200 characters"):
        accepting.model_validate({**CHURN_ROW, "contract": "x" * 201})
    schema = accepting.model_json_schema()["properties"]["contract"]
    assert "any other value is answered" in schema["description"]


class CountingMonitor(Monitor):
    def __init__(self, card: Any) -> None:
        super().__init__(card, "churn_clf:test", "fixed", None)
        self.unseen: list[tuple[str, ...]] = []

    def count_unseen(self, features: Any) -> None:
        self.unseen.append(tuple(features))


def test_an_accepted_unseen_value_is_answered_counted_and_named_in_the_answer() -> None:
    card = _tolerant_card()
    monitor = CountingMonitor(card)
    handler = PredictionHandler(Predictor("churn_clf:test", card, FixedRuntime([0.3, 0.7])), monitor, True)
    Single = features_model(card, accept_unseen=True)
    weekly = json.dumps({**CHURN_ROW, "contract": "weekly"}).encode()
    status, body, _ = run_async(lambda: handler.answer(weekly, JsonObjectCodec(Single, "churn_clf:test")))
    answer = json.loads(body)
    assert status == 200 and answer["class"] == "yes"
    assert answer["warnings"] == [
        {
            "type": "unseen_category",
            "loc": ["contract"],
            "msg": "a value training never saw: the model answered without it (SERVING_UNSEEN_CATEGORIES=accept)",
        }
    ]
    status, body, _ = run_async(lambda: handler.answer(json.dumps(CHURN_ROW).encode(), JsonObjectCodec(Single, "t")))
    assert "warnings" not in json.loads(body)  # a row of seen values answers exactly as before
    assert monitor.unseen == [("contract",)]
    from pydantic import RootModel

    rows = RootModel[list[Single]]  # type: ignore[valid-type]
    batch = json.dumps([CHURN_ROW, {**CHURN_ROW, "contract": "weekly"}]).encode()
    _, body, _ = run_async(lambda: handler.answer(batch, JsonListCodec(rows, "t")))
    assert ["warnings" in row for row in json.loads(body)] == [False, True]


def test_bentomls_answer_model_leaves_out_warnings_it_does_not_have() -> None:
    plain = PredictionResult.model_validate(
        {"class": "a", "probability": 1.0, "probabilities": {"a": 1.0}, "model": "m"}
    )
    assert "warnings" not in plain.model_dump()
    warned = PredictionResult.model_validate(
        {
            "class": "a",
            "probability": 1.0,
            "probabilities": {"a": 1.0},
            "model": "m",
            "warnings": [{"type": "unseen_category", "loc": ["contract"], "msg": "m"}],
        }
    )
    assert warned.model_dump()["warnings"][0]["loc"] == ["contract"]


def test_the_setting_is_refuse_by_default_and_checked() -> None:
    assert Settings.from_env({}).unseen_categories == "refuse"
    assert Settings.from_env({"SERVING_UNSEEN_CATEGORIES": "accept"}).unseen_categories == "accept"
    with pytest.raises(ValueError, match="SERVING_UNSEEN_CATEGORIES"):
        Settings.from_env({"SERVING_UNSEEN_CATEGORIES": "sometimes"})
