"""SageMaker's container contract: GET /ping and POST /invocations, in JSON or CSV, beside the service's own API.

SageMaker starts the image as `<image> serve`, probes GET /ping, and forwards InvokeEndpoint calls to POST
/invocations with the caller's Content-Type and Accept. Requests are read by the same input models as
/prediction and /predict_batch (one JSON object, a list of them, or CSV rows in the card's feature order,
without a header), predicted and logged by the same predictor, and answered in the request's format or the
one Accept asks for:

- JSON: a JSON object gets /prediction's object, a list (or CSV) gets /predict_batch's list;
- CSV: one line per row, `class,<probability of each class>`, the classes in the card's order (GET /model).

Mistakes get /prediction's 400 body, naming the row and the column.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, RootModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError, to_json
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelcard.card import FeatureSpec, ModelCard
from runtime.cells import CellError, cell_value
from runtime.predictor import Prediction
from runtime.table import FeatureTable, TableBuilder
from serving.asgi import is_json, media_type, read_body, send_error
from serving.fastpath import INTERNAL_ERROR, validation_error_body
from serving.jsoninput import MAX_ERRORS, cap_errors
from serving.offload import Offload
from serving.schemas import rows_to_table

logger = logging.getLogger(__name__)

PING_PATH = "/ping"
INVOCATIONS_PATH = "/invocations"
# /ping answers what the service's own readiness probe answers.
READY_PATH = "/readyz"
JSON, CSV = "application/json", "text/csv"
# Accept's wildcards and what they get (None: the request's own format).
MEDIA_RANGES = {"*/*": None, "application/*": JSON, "text/*": CSV}

# predict(source, table, started): the service's predict-and-record, so /invocations is counted and logged too.
Predict = Callable[[str, FeatureTable, float], list[Prediction]]


@dataclass(frozen=True)
class Invocations:
    """Read an /invocations body with the service's input models, predict, and write the answer."""

    single: type[BaseModel]  # one row: the /prediction input model
    batch: type[RootModel[Any]]  # a list of rows: the /predict_batch input model, with its row limit
    card: ModelCard
    tables: TableBuilder
    predict: Predict
    result: Callable[[Prediction], dict[str, object]]  # one prediction as /prediction's JSON object
    max_rows: int  # the /predict_batch row limit, checked before any row of a CSV body
    refused: Callable[[ValidationError], None] = lambda error: None  # told of every refused CSV body

    def answer(self, body: bytes, request_type: str, answer_type: str, started: float) -> tuple[int, bytes, str]:
        """(status, body, content type) for a non-empty body of `request_type`, answered as `answer_type`."""
        try:
            if request_type == CSV:
                rows, source = self.csv_rows(body), "batch"
            elif body.lstrip().startswith(b"["):
                rows, source = list(self.batch.model_validate_json(body).root), "batch"
            else:
                rows, source = [self.single.model_validate_json(body)], "api"
        except ValidationError as error:
            return 400, json.dumps(_rows_located(validation_error_body(error))).encode(), JSON
        predictions = self.predict(source, rows_to_table(self.tables, rows), started)
        if answer_type == CSV:
            return 200, self.csv_lines(predictions), f"{CSV}; charset=utf-8"
        if source == "api":
            return 200, to_json(self.result(predictions[0])), JSON
        return 200, to_json([self.result(p) for p in predictions]), JSON

    def csv_rows(self, body: bytes) -> list[BaseModel]:
        """CSV rows (no header, the card's feature order) checked by the batch input model.

        The row count is checked before any row is, and at most MAX_ERRORS errors are listed (with the total).
        """
        try:
            lines = [cells for cells in csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")) if cells]
        except (UnicodeDecodeError, csv.Error) as error:
            raise self._invalid(
                [_error("csv_invalid", "Invalid CSV: {error}", ("body",), {"error": str(error)})]
            ) from None
        if len(lines) > self.max_rows:
            message = "{rows} rows; send at most {limit} per call"
            raise self._invalid([_error("too_long", message, ("body",), {"rows": len(lines), "limit": self.max_rows})])
        features = self.card.features
        names = [spec.name for spec in features]
        records: list[dict[str, Any]] = []
        errors: list[InitErrorDetails] = []
        for row, cells in enumerate(lines):
            shape_error = _shape_error(row, cells, names)
            if shape_error is not None:
                errors.append(shape_error)
                continue
            record = {}
            for spec, cell in zip(features, cells, strict=True):
                value = _cell_value(spec, cell.strip(), (row, spec.name), errors)
                if value is not None:  # a blank is left out: allowed where training had blanks, else "required"
                    record[spec.name] = value
            records.append(record)
        try:
            if errors:
                raise self._invalid(_listed(errors))
            return list(self.batch.model_validate(records).root)
        except ValidationError as error:
            capped = error if errors else cap_errors(self.batch, error, lambda: records, self.single, is_batch=True)
            self.refused(capped)
            raise capped from None

    def csv_lines(self, predictions: Sequence[Prediction]) -> bytes:
        """One `class,p1,p2,...` line per prediction, the probabilities in the card's class order."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows([p.class_name, *p.probabilities.values()] for p in predictions)
        return buffer.getvalue().encode()

    def _invalid(self, errors: list[InitErrorDetails]) -> ValidationError:
        return ValidationError.from_exception_data(self.batch.__name__, errors)


def _rows_located(body: dict[str, Any]) -> dict[str, Any]:
    """Errors located as [row, column] (BentoML's list model puts "root" first), alike for CSV and JSON lists."""
    for entry in body["detail"]:
        entry["loc"] = entry["loc"][1:] if entry["loc"][:1] == ("root",) else entry["loc"]
    return body


def _listed(errors: list[InitErrorDetails]) -> list[InitErrorDetails]:
    """At most MAX_ERRORS of `errors`, and one that gives their number when there are more."""
    if len(errors) <= MAX_ERRORS:
        return errors
    summary = "{total} errors in all; only the first {shown} are listed"
    return [*errors[:MAX_ERRORS], _error("too_many_errors", summary, (), {"total": len(errors), "shown": MAX_ERRORS})]


def _error(
    kind: str, message: str, loc: tuple[int | str, ...], context: dict[str, Any] | None = None
) -> InitErrorDetails:
    """One error in pydantic's shape, so a CSV mistake reads like a JSON one."""
    return InitErrorDetails(type=PydanticCustomError(kind, message, context), loc=loc, input="")


def _shape_error(row: int, cells: list[str], names: list[str]) -> InitErrorDetails | None:
    """A header row, or a row with the wrong number of fields; None for a row of the right shape."""
    if row == 0 and [cell.strip() for cell in cells] == names:
        return _error("csv_header", "This is a header row; send the rows without one", (row,))
    if len(cells) == len(names):
        return None
    expected = f"{len(names)} columns, the features in this order: {', '.join(names)}"
    return _error(
        "csv_columns", "{got} columns, expected {expected}", (row,), {"got": len(cells), "expected": expected}
    )


def _cell_value(spec: FeatureSpec, text: str, loc: tuple[int, str], errors: list[InitErrorDetails]) -> Any:
    """One CSV cell as its feature's JSON value (None when empty); a cell that is no value of its kind is an error."""
    try:
        return cell_value(spec, text)
    except CellError as error:
        errors.append(InitErrorDetails(type=error.kind, loc=loc, input=text))
        return None


def answer_type(scope: Scope, request_type: str) -> str | None:
    """The answer's media type: the first one Accept lists that we write (none or */*: the request's); else None."""
    accept = next((bytes(value) for name, value in scope["headers"] if name == b"accept"), b"").decode("latin-1")
    if not accept.strip():
        return request_type
    for entry in accept.split(","):
        wanted = entry.split(";")[0].strip().lower()
        if wanted in (JSON, CSV):
            return wanted
        if wanted in MEDIA_RANGES:
            return MEDIA_RANGES[wanted] or request_type
    return None


class SageMakerRoutes:
    """ASGI middleware: GET /ping and POST /invocations, SageMaker's way; everything else passes on."""

    def __init__(
        self, app: ASGIApp, invocations: Invocations, max_body_bytes: int, server_name: str, offload: Offload
    ) -> None:
        self.app = app
        self.invocations = invocations
        self.max_body_bytes = max_body_bytes
        self.server_header = (b"server", server_name.encode())
        # A slow runtime (scikit-learn, ~ms a call) or a large body is answered in a thread, off the event loop.
        self.offload = offload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path") if scope["type"] == "http" else None
        if path == PING_PATH and scope["method"] in ("GET", "HEAD"):
            await self._ping(scope, receive, send)
        elif path == INVOCATIONS_PATH and scope["method"] == "POST":
            await self._invoke(scope, receive, send)
        elif path in (PING_PATH, INVOCATIONS_PATH):
            allowed = "GET" if path == PING_PATH else "POST"
            await send_error(
                send, 405, f"{path} takes {allowed}", ["method"], "method_not_allowed", [(b"allow", allowed.encode())]
            )
        else:
            await self.app(scope, receive, send)

    async def _ping(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The status /readyz answers (200 once the worker has loaded the model), with an empty body."""
        status = 500

        async def keep_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app({**scope, "path": READY_PATH, "raw_path": READY_PATH.encode()}, receive, keep_status)
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    async def _invoke(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        content_type = media_type(scope)
        request_type = JSON if is_json(content_type) else CSV if content_type == CSV.encode() else None
        if request_type is None:
            message = f"Content-Type must be {JSON} or {CSV}, not {content_type.decode(errors='replace')}"
            await send_error(send, 415, message, ["header", "content-type"], "unsupported_media_type")
            return
        wanted = answer_type(scope, request_type)
        if wanted is None:
            await send_error(send, 406, f"Accept must allow {JSON} or {CSV}", ["header", "accept"], "not_acceptable")
            return
        body = await read_body(receive, limit=self.max_body_bytes)
        if body is None:
            message = f"request body is over {self.max_body_bytes:,} bytes; send fewer rows per call"
            await send_error(send, 413, message, ["body"], "too_large")
            return
        if not body.strip():
            await send_error(send, 400, "empty request body: send rows of features", ["body"], "missing")
            return
        try:
            status, payload, answer_media = await self.offload(
                self.invocations.answer, body, request_type, wanted, started
            )
        except Exception:
            # Answered here, as the fast path does: an exception escaping would leave the client without an answer.
            logger.exception("Prediction failed on %s", INVOCATIONS_PATH)
            status, payload, answer_media = 500, INTERNAL_ERROR, JSON
        headers = [(b"content-type", answer_media.encode()), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": [*headers, self.server_header]})
        await send({"type": "http.response.body", "body": payload})
