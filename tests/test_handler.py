"""The one request path: codecs decode each wire format to rows and encode answers; the handler predicts and records."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
from typing import Annotated, Any

import pytest
from pydantic import Field, RootModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from modelcard.schema import features_model
from monitoring.monitor import Monitor
from runtime.predictor import Predictor
from serving.codecs import (
    Codec,
    CsvCodec,
    JsonListCodec,
    JsonObjectCodec,
    field_row,
    model_rows,
    record_rows,
    result,
    validation_error_body,
)
from serving.handler import INTERNAL_ERROR, PredictionHandler
from serving.jsoninput import harden
from tests.fakes import CHURN_ROW, FixedRuntime, make_churn_card
from tests.loops import run_async

CARD = make_churn_card()
NAMES = [spec.name for spec in CARD.features]
Single = features_model(CARD)
Batch = RootModel[Annotated[list[Single], Field(min_length=1, max_length=5)]]  # type: ignore[valid-type]
refused: list[ValidationError] = []
for _model in (Single, Batch):
    harden(_model, Single, refused.append)
ROW = tuple(CHURN_ROW.get(name) for name in NAMES)


class RecordingMonitor(Monitor):
    """A Monitor that keeps what it is told instead of counting it."""

    def __init__(self) -> None:
        super().__init__(CARD, "churn_clf:test", "fixed", None)
        self.records: list[tuple[str, int]] = []
        self.requests: list[tuple[str, list[str]]] = []

    def record(self, source: str, table: Any, predictions: Any, latency_s: float) -> None:
        self.records.append((source, table.rows))

    def record_requests(self, source: str, table: Any, predictions: Any, request_ids: Any, latencies_s: Any) -> None:
        self.requests.append((source, list(request_ids)))


def _handler(runtime: Any = None) -> tuple[PredictionHandler, RecordingMonitor, FixedRuntime]:
    fixed = runtime or FixedRuntime([0.25, 0.75])
    monitor = RecordingMonitor()
    return PredictionHandler(Predictor("churn_clf:test", CARD, fixed), monitor), monitor, fixed


def _csv(*rows: dict[str, Any]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([["" if row.get(n) is None else row[n] for n in NAMES] for row in rows])
    return buffer.getvalue().encode()


CODECS: dict[str, Codec] = {
    "object": JsonObjectCodec(Single, "churn_clf:test"),
    "list": JsonListCodec(Batch, "churn_clf:test"),
    "csv": CsvCodec(Batch, Single, CARD, max_rows=5, refused=refused.append),
}


def test_every_codec_decodes_to_rows_in_the_features_order() -> None:
    shuffled = dict(reversed(list(CHURN_ROW.items())))
    assert CODECS["object"].decode(json.dumps(shuffled).encode()) == [ROW]
    assert CODECS["list"].decode(json.dumps([shuffled, CHURN_ROW]).encode()) == [ROW, ROW]
    assert CODECS["csv"].decode(_csv(CHURN_ROW, CHURN_ROW)) == [ROW, ROW]
    assert record_rows([shuffled], CARD.features) == [ROW]
    assert model_rows([Single.model_validate(CHURN_ROW)]) == [ROW]
    fields = Single.model_validate(CHURN_ROW).__dict__
    assert field_row(fields, len(NAMES)) == ROW


def test_a_blank_is_none_in_every_format() -> None:
    blank = {**CHURN_ROW, "totalcharges": None}
    index = NAMES.index("totalcharges")
    for rows in (
        CODECS["object"].decode(json.dumps(blank).encode()),
        CODECS["list"].decode(json.dumps([blank]).encode()),
        CODECS["csv"].decode(_csv(blank)),
        record_rows([{k: v for k, v in blank.items() if k != "totalcharges"}], CARD.features),
    ):
        assert rows[0][index] is None


@pytest.mark.parametrize("name", ["object", "list", "csv"])
def test_every_codec_refuses_with_a_400_body_that_names_the_field(name: str) -> None:
    bad = {**CHURN_ROW, "contract": "weekly"}
    body = {"object": json.dumps(bad).encode(), "list": json.dumps([CHURN_ROW, bad]).encode(), "csv": _csv(bad)}
    codec = CODECS[name]
    with pytest.raises(ValidationError) as refusal:
        codec.decode(body[name])
    answer = json.loads(codec.refusal(refusal.value))
    assert answer["detail"][0]["loc"][-1] == "contract"
    assert answer["detail"][0]["type"] == "literal_error"


def test_sagemaker_codecs_locate_errors_by_row_and_column() -> None:
    codec = JsonListCodec(Batch, "churn_clf:test", rows_located=True)
    with pytest.raises(ValidationError) as refusal:
        codec.decode(json.dumps([CHURN_ROW, {**CHURN_ROW, "contract": "weekly"}]).encode())
    assert json.loads(codec.refusal(refusal.value))["detail"][0]["loc"] == [1, "contract"]
    # BentoML's list input model puts "root" first: /predict_batch keeps it, SageMaker's answers leave it out.
    detail = InitErrorDetails(type=PydanticCustomError("literal_error", "no"), loc=("root", 1, "contract"), input="")
    bentoml_style = ValidationError.from_exception_data("Batch", [detail])
    assert validation_error_body(bentoml_style)["detail"][0]["loc"] == ("root", 1, "contract")
    assert validation_error_body(bentoml_style, rows_located=True)["detail"][0]["loc"] == (1, "contract")


def test_encoders_write_each_format() -> None:
    handler, _, _ = _handler()
    (prediction,) = handler.explore([ROW])
    expected = {
        "class": "yes",
        "probability": 0.75,
        "probabilities": {"no": 0.25, "yes": 0.75},
        "model": "churn_clf:test",
    }
    assert json.loads(CODECS["object"].encode([prediction])) == expected
    assert json.loads(CODECS["list"].encode([prediction, prediction])) == [expected, expected]
    assert CODECS["csv"].encode([prediction]) == b"yes,0.25,0.75\n"
    assert result(prediction, "churn_clf:test").model_dump(by_alias=True) == expected


def test_predict_records_each_request_with_its_source_and_explore_does_not() -> None:
    handler, monitor, runtime = _handler()
    assert [p.class_name for p in handler.predict("batch", [ROW, ROW], 0.0)] == ["yes", "yes"]
    handler.explore([ROW, ROW, ROW])
    assert monitor.records == [("batch", 2)]
    assert [table.rows for table in runtime.calls] == [2, 3]


def test_answer_micro_batches_single_rows_and_reports_each_request() -> None:
    handler, monitor, runtime = _handler()
    body = json.dumps(CHURN_ROW).encode()

    async def three_at_once() -> list[Any]:
        return list(await asyncio.gather(*(handler.answer(body, CODECS["object"]) for _ in range(3))))

    answers = run_async(three_at_once)
    assert [status for status, _, _ in answers] == [200, 200, 200]
    assert [table.rows for table in runtime.calls] == [3]  # one model call for the three requests
    ((source, request_ids),) = monitor.requests
    assert source == "api" and len(set(request_ids)) == 3


def test_answer_decodes_with_one_codec_and_encodes_with_another() -> None:
    handler, monitor, _ = _handler()
    status, body, media = run_async(lambda: handler.answer(_csv(CHURN_ROW), CODECS["csv"], CODECS["list"]))
    assert (status, media) == (200, "application/json")
    assert json.loads(body)[0]["class"] == "yes"
    assert monitor.records == [("batch", 1)]


def test_a_refused_body_is_a_400_and_nothing_is_predicted() -> None:
    handler, monitor, runtime = _handler()
    status, body, _ = run_async(lambda: handler.answer(b'{"tenure": "twelve"}', CODECS["object"]))
    assert status == 400 and "tenure" in body.decode()
    assert runtime.calls == [] and monitor.records == monitor.requests == []


class BrokenRuntime(FixedRuntime):
    def predict_proba(self, table: Any) -> Any:
        raise RuntimeError("/srv/secret/path is gone")


@pytest.mark.parametrize("name", ["object", "list"])
def test_a_failure_is_a_logged_500_that_tells_the_client_nothing(name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="serving.handler")
    handler, _, _ = _handler(BrokenRuntime([0.5, 0.5]))
    body = json.dumps(CHURN_ROW if name == "object" else [CHURN_ROW]).encode()
    status, answer, _ = run_async(lambda: handler.answer(body, CODECS[name]))
    assert (status, answer) == (500, INTERNAL_ERROR)
    assert "secret" not in answer.decode()
    logged = [r for r in caplog.records if r.name == "serving.handler" and r.exc_info]
    assert any("/srv/secret/path" in str(r.exc_info[1]) for r in logged if r.exc_info)
