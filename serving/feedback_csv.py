"""POST /feedback in CSV, as a warehouse exports outcomes: read into the JSON list the endpoint validates.

A header names the columns: `label`, and `request_id` (with `row`), or key columns (any of the card's inputs,
e.g. `customer_id`) with `since` and `until`. A blank cell is a value not given, so one file may mix both ways.
Key cells stay text: the match compares a key's text (monitoring/outcomes.py `key_text`), so `42` finds 42.
The list then meets the same input model as JSON, whose errors name the row (0: the first line after the header).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from pydantic_core import to_json
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.asgi import media_type, read_body, replay_body, send_error

CSV = b"text/csv"
OUTCOME_COLUMNS = ("request_id", "row", "label", "since", "until")


class CsvError(ValueError):
    """A CSV body that is no list of outcomes: says where."""

    def __init__(self, message: str, loc: list[Any]) -> None:
        super().__init__(message)
        self.loc = loc


def outcomes_from_csv(body: bytes, columns: Iterable[str]) -> list[dict[str, Any]]:
    """The outcomes a CSV body with a header holds, as JSON objects; CsvError naming the cell that is wrong."""
    known = set(columns)
    try:
        reader = csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline=""))
        header = reader.fieldnames or []
        unknown = [name for name in header if name not in OUTCOME_COLUMNS and name not in known]
        if unknown or "label" not in header:
            allowed = ", ".join([*OUTCOME_COLUMNS, *sorted(known)])
            problem = f"unknown column {unknown[0]!r}" if unknown else "no label column"
            raise CsvError(f"The header must name the columns ({allowed}): {problem}", ["body", "header"])
        return [_outcome(cells, index) for index, cells in enumerate(reader)]
    except (UnicodeDecodeError, csv.Error) as error:
        raise CsvError(f"Invalid CSV: {error}", ["body"]) from None


def _outcome(cells: dict[str | Any, Any], index: int) -> dict[str, Any]:
    """One CSV line as an outcome object: blank cells left out, `row` a number, other columns the key."""
    if None in cells:  # csv.DictReader keeps a line's extra cells under None
        raise CsvError("more cells than the header has columns", ["body", index])
    outcome: dict[str, Any] = {}
    key: dict[str, str] = {}
    for name, cell in cells.items():
        if cell is None or cell == "":
            continue
        if name == "row":
            if not cell.isdigit():
                raise CsvError(f"row must be a whole number, not {cell[:40]!r}", ["body", index, "row"])
            outcome["row"] = int(cell)
        elif name in OUTCOME_COLUMNS:
            outcome[name] = cell
        else:
            key[name] = cell
    if key:
        outcome["key"] = key
    return outcome


class CsvOutcomes:
    """ASGI middleware for POST /feedback: a text/csv body is handed on as the JSON list of its outcomes."""

    def __init__(self, app: ASGIApp, path: str, columns: Iterable[str], max_body_bytes: int) -> None:
        self.app = app
        self.path = path
        self.columns = tuple(columns)
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != self.path
            or media_type(scope) != CSV
        ):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive, limit=self.max_body_bytes)
        if body is None:  # the request guard has checked a declared length; this is a chunked upload
            await send_error(send, 413, f"request body is over {self.max_body_bytes:,} bytes", ["body"], "too_large")
            return
        try:
            outcomes = outcomes_from_csv(body, self.columns)
        except CsvError as error:
            await send_error(send, 400, str(error), error.loc, "csv_invalid")
            return
        converted = to_json(outcomes)
        headers = [(n, v) for n, v in scope["headers"] if n not in (b"content-type", b"content-length")]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(converted)).encode())]
        await self.app({**scope, "headers": headers}, replay_body(converted, receive), send)
