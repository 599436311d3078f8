"""Compile a fitted classifier to ONNX and keep it only if it answers like the original."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
from skl2onnx import to_onnx

logger = logging.getLogger(__name__)

PROBABILITY_TOLERANCE = 1e-5


@dataclass(frozen=True)
class CompiledModel:
    """The outcome of compiling: ONNX bytes when parity held, else None and the reason."""

    onnx_bytes: bytes | None
    note: str


def compile_to_onnx(model: Any, reference: pd.DataFrame, tolerance: float = PROBABILITY_TOLERANCE) -> CompiledModel:
    """Convert `model` with skl2onnx and check it on `reference` rows: same class everywhere, close probabilities."""
    features = reference.to_numpy(dtype=np.float32)
    try:
        onnx_model = to_onnx(model, features[:1], options={id(model): {"zipmap": False}})
    except (
        Exception
    ) as error:  # skl2onnx raises many kinds for unsupported estimators; any of them means "keep sklearn"
        logger.warning("ONNX conversion failed, serving with scikit-learn: %s", error)
        return CompiledModel(None, f"ONNX conversion failed: {type(error).__name__}: {error}")
    onnx_bytes = onnx_model.SerializeToString()
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    onnx_proba = session.run(None, {session.get_inputs()[0].name: features})[1]
    sklearn_proba = model.predict_proba(reference)
    mismatched = int((onnx_proba.argmax(axis=1) != sklearn_proba.argmax(axis=1)).sum())
    largest_gap = float(np.abs(onnx_proba - sklearn_proba).max())
    if mismatched or largest_gap > tolerance:
        note = (
            f"ONNX parity failed on {len(reference)} rows: {mismatched} class changes, "
            f"largest probability gap {largest_gap:.2e}"
        )
        logger.warning("%s; serving with scikit-learn", note)
        return CompiledModel(None, note)
    note = f"ONNX parity held on {len(reference)} rows: same class on all, largest probability gap {largest_gap:.2e}"
    logger.info(note)
    return CompiledModel(onnx_bytes, note)
