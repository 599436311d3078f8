"""POST /feedback: what really happened to earlier predictions, matched with the prediction log and kept beside it.

A request is decoded once (BentoML validates the list against `serving.schemas.outcome_model`; a CSV body is
first read into that list, `CsvOutcomes`), recorded by the monitor (matched by request id or by key, counted,
written: monitoring/outcomes.py), and answered with how many matched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bentoml.exceptions import ServiceUnavailable

from monitoring.context import current_request_id, new_request_id
from monitoring.monitor import Monitor, OutcomesOff
from monitoring.outcomes import Outcome
from serving.schemas import LISTED_UNMATCHED, FeedbackResult, key_values

FEEDBACK_PATH = "/feedback"


class FeedbackOff(ServiceUnavailable):
    """Outcomes cannot be taken: the prediction log, which they are matched with and kept beside, is off."""


def record_feedback(monitor: Monitor, outcomes: Sequence[Any], tag: str) -> FeedbackResult:
    """Match the validated outcomes with the logged predictions, keep them, and say how many matched."""
    # A window's bound without a time zone is UTC: monitoring/outcomes.py reads and writes it so.
    reported = [
        Outcome(o.request_id, o.row, o.label, None if o.key is None else key_values(o.key), o.since, o.until)
        for o in outcomes
    ]
    try:
        found = monitor.record_outcomes(reported, current_request_id() or new_request_id())
    except OutcomesOff as error:
        raise FeedbackOff(str(error)) from None
    unmatched = [outcome for outcome, logged in zip(reported, found, strict=True) if logged is None]
    return FeedbackResult(
        received=len(reported),
        matched=len(reported) - len(unmatched),
        unmatched=len(unmatched),
        unmatched_request_ids=[o.request_id for o in unmatched if o.key is None and o.request_id][:LISTED_UNMATCHED],
        unmatched_keys=[dict(o.key) for o in unmatched if o.key is not None][:LISTED_UNMATCHED],
        model=tag,
    )
