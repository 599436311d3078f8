"""The OpenAPI document at /docs.json, corrected to match what the API really answers.

BentoML's generated document (1.4.39) is OpenAPI 3.0 but (a) writes pydantic's JSON-Schema-2020 bounds
(`"exclusiveMinimum": 0.0`), which 3.0 spells `"minimum": 0.0, "exclusiveMinimum": true`, and nulls
(`anyOf: [..., {"type": "null"}]`), which 3.0 spells `nullable: true`, and (b) documents a 400's `detail`
as a string while it is a list of errors. Schemathesis found both (tests/e2e/test_fuzz_api.py).
Here the document is generated once, fixed, and given the 401/413/415 answers the request guards send.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from serving.asgi import send_json

ERROR_DETAIL = {
    "type": "object",
    "title": "ErrorDetail",
    "required": ["type", "loc", "msg"],
    "properties": {
        "type": {"type": "string", "description": "machine-readable kind, e.g. missing, float_type, too_large"},
        "loc": {
            "type": "array",
            "items": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "description": "where the problem is: a field name, a batch row index, 'header' or 'body'",
        },
        "msg": {"type": "string", "description": "what is wrong, for people"},
    },
}
ERROR = {
    "type": "object",
    "title": "Error",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "title": "Message"},
        "detail": {"type": "array", "items": {"$ref": "#/components/schemas/ErrorDetail"}},
    },
}
GUARD_ANSWERS = {
    "413": "Request body over the size limit (SERVING_MAX_BODY_BYTES)",
    "415": "Content-Type is not JSON",
}


def _json_error(description: str) -> dict[str, Any]:
    """A response whose body is the Error object."""
    schema = {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi_3_0_bounds(node: Any) -> None:
    """Rewrite numeric exclusiveMinimum/Maximum (JSON Schema 2020) to OpenAPI 3.0's boolean form, in place."""
    if isinstance(node, dict):
        for bound, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            value = node.get(bound)
            if isinstance(value, int | float) and not isinstance(value, bool):
                node[inclusive], node[bound] = value, True
        for child in node.values():
            openapi_3_0_bounds(child)
    elif isinstance(node, list):
        for child in node:
            openapi_3_0_bounds(child)


def openapi_3_0_nullable(node: Any) -> None:
    """Rewrite `anyOf: [X, {"type": "null"}]` (JSON Schema 2020) to X plus `nullable: true` (OpenAPI 3.0), in place.

    OpenAPI 3.0 has no "null" type, so a 3.0 reader (schemathesis, code generators) took a feature that may be
    blank for one that must not be.
    """
    if isinstance(node, dict):
        for key in ("anyOf", "oneOf"):
            options = node.get(key)
            if isinstance(options, list) and {"type": "null"} in options:
                rest = [option for option in options if option != {"type": "null"}]
                del node[key]
                if len(rest) == 1:
                    node.update({k: v for k, v in rest[0].items() if k not in node})
                else:
                    node[key] = rest
                node["nullable"] = True
        for child in node.values():
            openapi_3_0_nullable(child)
    elif isinstance(node, list):
        for child in node:
            openapi_3_0_nullable(child)


def _referenced(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """A request body's inline copy of a component schema replaced by a $ref to that component.

    BentoML writes the single-row body inline, flattened on the way: a field that may be null lost its null
    there, while the component of the same title keeps it. One definition, referenced, says the same thing twice.
    """
    title = schema.get("title")
    if schema.get("type") == "object" and isinstance(title, str) and title in schemas:
        return {"$ref": f"#/components/schemas/{title}"}
    return schema


def corrected(document: dict[str, Any], prediction_paths: Iterable[str], key_paths: Iterable[str]) -> dict[str, Any]:
    """The document with 3.0 bounds and nulls, the real error shape, the guards' answers, 401 where a key is needed."""
    openapi_3_0_bounds(document)
    openapi_3_0_nullable(document)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorDetail"] = ERROR_DETAIL
    schemas["Error"] = ERROR
    schemas["InvalidArgument"] = {**ERROR, "title": "InvalidArgument", "description": "Bad Request"}
    for path in prediction_paths:
        operation = document["paths"][path]["post"]
        # An empty body is refused (every feature is required), so the body itself is required.
        operation["requestBody"]["required"] = True
        for media in operation["requestBody"].get("content", {}).values():
            media["schema"] = _referenced(media["schema"], schemas)
        for status, description in GUARD_ANSWERS.items():
            operation["responses"][status] = _json_error(description)
    key_paths = [path for path in key_paths if path in document["paths"]]
    if key_paths:
        document["components"].setdefault("securitySchemes", {})["apiKey"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "the service's API key (SERVING_API_KEY)",
        }
    for path in key_paths:
        for operation in document["paths"][path].values():
            operation.setdefault("responses", {})["401"] = _json_error("Missing or wrong API key")
            operation["security"] = [{"apiKey": []}]
    return document


class CorrectedOpenAPI:
    """ASGI middleware: GET /docs.json answers the corrected document, built once on first use."""

    def __init__(self, app: ASGIApp, build: Callable[[], dict[str, Any]], path: str = "/docs.json") -> None:
        self.app = app
        self.build = build
        self.path = path
        self._body: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        if self._body is None:
            self._body = json.dumps(self.build()).encode()
        await send_json(send, 200, self._body)
