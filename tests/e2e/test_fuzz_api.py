"""Property-based fuzzing of the served API from its own OpenAPI document (/docs.json) with schemathesis.

Valid and invalid inputs alike, with a fixed seed and example budget so CI runs the same cases every time:
no answer may be a 5xx, and every answer must match what the document says (status, content type, schema).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.e2e.server import Server

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 150
FUZZED = "^/(prediction|predict_batch|model)$"


@pytest.fixture
def api_schema(served_bento: Server) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{served_bento.url}/docs.json")
    return schema.include(path_regex=FUZZED)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,  # the same examples on every run: a CI failure reproduces locally
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_never_errors_and_matches_its_document(case: schemathesis.Case) -> None:
    case.call_and_validate()
