"""Raw rows to the records a DictVectorizer takes: the step the composed pipeline runs before it.

Notebooks in the style of the churn course keep their preprocessing apart:
`dv.fit_transform(df_train.to_dict(orient="records"))`. The training step composes
`FunctionTransformer(frame_to_records) -> dv -> model`, so the stored model goes from raw rows to
probabilities. This module is part of the contract because that pickle refers to it by name when loaded.
"""

from __future__ import annotations

from typing import Any


def frame_to_records(frame: Any) -> list[dict[str, Any]]:
    """`frame.to_dict(orient="records")`, exactly as the notebook fed its preprocessor."""
    return frame.to_dict(orient="records")  # type: ignore[no-any-return]
