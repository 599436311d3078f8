"""Turn feature rows into class predictions with the runtime the model was stored for."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import bentoml
import numpy as np
import onnxruntime as ort

from serving.card import ModelCard
from serving.files import ONNX_FILE, SKLEARN_FILE

logger = logging.getLogger(__name__)


class Runtime(Protocol):
    """Anything that maps an (n, features) float array to (n, classes) probabilities."""

    name: str

    def predict_proba(self, features: np.ndarray) -> np.ndarray: ...


class OnnxRuntime:
    """The classifier compiled to ONNX at training time: microseconds per row, no joblib overhead."""

    name = "onnx"

    def __init__(self, path: Path) -> None:
        options = ort.SessionOptions()
        # One thread per session: BentoML scales by worker processes, and threads would fight over the cores.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[1].name

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities, in the card's class order."""
        return self._session.run([self._output], {self._input: features.astype(np.float32, copy=False)})[0]


class SklearnRuntime:
    """The fitted scikit-learn object, exactly as the notebook left it."""

    name = "sklearn"

    def __init__(self, path: Path, feature_names: list[str]) -> None:
        # Imported here: pandas and joblib cost ~1 s at start-up, and the ONNX path needs neither.
        import joblib

        # The file was written by our own training step into the model store; never load a pickle from elsewhere.
        self._model = joblib.load(path)
        self._feature_names = feature_names

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities, in the card's class order."""
        import pandas as pd

        return np.asarray(self._model.predict_proba(pd.DataFrame(features, columns=self._feature_names)))


@dataclass(frozen=True)
class Prediction:
    """One row's answer."""

    class_name: str
    probability: float
    probabilities: dict[str, float]


class Predictor:
    """The model plus its card: the single prediction path for the API and the UI."""

    def __init__(self, tag: str, card: ModelCard, runtime: Runtime) -> None:
        self.tag = tag
        self.card = card
        self.runtime = runtime

    def predict_rows(self, rows: Sequence[Sequence[float]] | np.ndarray) -> list[Prediction]:
        """Predict every row of an (n, features) table, in the card's feature order."""
        probabilities = self.runtime.predict_proba(np.asarray(rows, dtype=np.float64))
        classes = self.card.class_names
        # Whole-array numpy, then plain Python floats: per-row numpy calls cost more than the model itself.
        best = probabilities.argmax(axis=1).tolist()
        return [
            Prediction(classes[b], row[b], dict(zip(classes, row, strict=True)))
            for b, row in zip(best, probabilities.tolist(), strict=True)
        ]

    def rows_from_records(self, records: list[dict[str, float]]) -> list[list[float]]:
        """{feature name: value} mappings as rows in the card's feature order."""
        names = self.card.feature_names
        return [[record[name] for name in names] for record in records]

    def predict_records(self, records: list[dict[str, float]]) -> list[Prediction]:
        """Predict rows given as {feature name: value} mappings."""
        return self.predict_rows(self.rows_from_records(records))


def choose_runtime(model_dir: Path, card: ModelCard, wanted: str) -> Runtime:
    """ONNX when the model carries a parity-checked ONNX file and `wanted` allows it, else scikit-learn."""
    onnx_path = model_dir / ONNX_FILE
    if wanted != "sklearn" and card.runtime == "onnx" and onnx_path.is_file():
        return OnnxRuntime(onnx_path)
    if wanted == "onnx":
        raise ValueError(f"IRIS_RUNTIME=onnx, but this model has no ONNX file ({card.runtime_note})")
    return SklearnRuntime(model_dir / SKLEARN_FILE, card.feature_names)


class ModelLoadError(RuntimeError):
    """A stored model whose card or files cannot be loaded."""


def load_predictor(stored: bentoml.Model, wanted_runtime: str) -> Predictor:
    """Build the predictor for a model from the store; ModelLoadError says which model and what to do."""
    try:
        card = ModelCard.from_metadata(stored.info.metadata)
        runtime = choose_runtime(Path(stored.path), card, wanted_runtime)
    # Card validation, onnxruntime and unpickling each raise their own kinds; all mean "this model is unusable".
    except Exception as error:
        raise ModelLoadError(
            f"Model {stored.tag} in {stored.path} cannot be loaded ({type(error).__name__}: {error}). "
            "Train it again with `python -m train`, or import a good copy with `bentoml models import`."
        ) from error
    logger.info("Loaded %s with the %s runtime", stored.tag, runtime.name)
    return Predictor(str(stored.tag), card, runtime)
