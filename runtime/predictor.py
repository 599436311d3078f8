"""Turn a table of features into class predictions with the runtime the model was stored for."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import bentoml
import numpy as np
import onnxruntime as ort

from modelcard.card import FeatureSpec, ModelCard, read_card
from modelcard.files import GZIP_SUFFIX, ONNX_FILE, SKLEARN_FILE, stored_file
from runtime.environments import add_notebook_packages, normalized_name
from runtime.table import FeatureTable, TableBuilder

logger = logging.getLogger(__name__)


class Runtime(Protocol):
    """Anything that maps a table of features to (rows, classes) probabilities in the card's class order."""

    name: str

    def predict_proba(self, table: FeatureTable) -> np.ndarray: ...


class OnnxRuntime:
    """The classifier compiled to ONNX at training time, one input per feature: microseconds per row."""

    name = "onnx"

    def __init__(self, model: Path | bytes) -> None:
        options = ort.SessionOptions()
        # One thread per session: BentoML scales by worker processes, and threads would fight over the cores.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        source = model if isinstance(model, bytes) else _onnx_source(model)
        self._session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self._input_types = {i.name: i.type for i in self._session.get_inputs()}
        # With ZipMap off the second output is the (rows, classes) probability matrix.
        self._outputs = [self._session.get_outputs()[1].name]
        # The compiled session's own run. InferenceSession.run first re-reads every input's name and type
        # through pybind11 to check none is missing (6 µs a call for 15 inputs, a tenth of a request): the
        # feed is always built from those very inputs, from numpy arrays, on the CPU provider, so nothing it
        # checks can fail here. tests/test_onnx_parity.py pins this to the public run's answers.
        self._run = self._session._sess.run

    def predict_proba(self, table: FeatureTable) -> np.ndarray:
        """Class probabilities, in the card's class order."""
        return self._run(self._outputs, table.onnx_inputs(self._input_types), None)[0]  # type: ignore[no-any-return]


class SklearnRuntime:
    """The fitted scikit-learn object, exactly as the notebook left it, fed frames with the training dtypes."""

    name = "sklearn"

    def __init__(self, path: Path, features: list[FeatureSpec]) -> None:
        # Imported here: joblib costs start-up time, and the ONNX path never needs it.
        import joblib

        # The file was written by our own training step into the model store; never load a pickle from elsewhere.
        self._model: Any = joblib.load(path)
        self._features = features

    def predict_proba(self, table: FeatureTable) -> np.ndarray:
        """Class probabilities, in the card's class order."""
        return np.asarray(self._model.predict_proba(table.to_frame(self._features)))


@dataclass(frozen=True)
class Prediction:
    """One row's answer."""

    class_name: str
    probability: float
    probabilities: dict[str, float]
    # The category features whose value training never saw, answered where the deployment accepts them.
    unseen: tuple[str, ...] = ()


class Predictor:
    """The model plus its card: the single prediction path for the API and the UI."""

    def __init__(self, tag: str, card: ModelCard, runtime: Runtime) -> None:
        self.tag = tag
        self.card = card
        self.runtime = runtime
        self.tables = TableBuilder(card.features)

    def predict(self, table: FeatureTable) -> list[Prediction]:
        """Predict every row of the table."""
        probabilities = self.runtime.predict_proba(table)
        classes = self.card.class_names
        # Whole-array numpy, then plain Python floats: per-row numpy calls cost more than the model itself.
        best = probabilities.argmax(axis=1).tolist()
        return [
            Prediction(classes[b], row[b], dict(zip(classes, row, strict=True)))
            for b, row in zip(best, probabilities.tolist(), strict=True)
        ]


def choose_runtime(model_dir: Path, card: ModelCard, wanted: str) -> Runtime:
    """ONNX when the model carries a parity-checked ONNX file and `wanted` allows it, else scikit-learn."""
    onnx_path = stored_file(model_dir, ONNX_FILE)
    if wanted != "sklearn" and card.runtime == "onnx" and onnx_path.is_file():
        return OnnxRuntime(onnx_path)
    if wanted == "onnx":
        raise ValueError(f"SERVING_RUNTIME=onnx, but this model has no ONNX file ({card.runtime_note})")
    # From the source tree, the notebook's own packages (a booster) may be in the environment training made.
    add_notebook_packages(card.lineage.requirements)
    # joblib reads a gzipped pickle by its magic bytes.
    return SklearnRuntime(stored_file(model_dir, SKLEARN_FILE), card.features)


def _onnx_source(path: Path) -> str | bytes:
    """What onnxruntime loads: the file's path, or its bytes unzipped when training stored it gzipped."""
    if path.name.endswith(GZIP_SUFFIX):
        import gzip

        return gzip.decompress(path.read_bytes())
    return str(path)


class ModelLoadError(RuntimeError):
    """A stored model whose card or files cannot be loaded."""


def missing_package(tag: str, card: ModelCard | None, error: ModuleNotFoundError) -> str:
    """One line: the package the model needs, at the version the card says it was trained with, and how to add it."""
    module = (error.name or str(error)).split(".")[0]
    libraries = card.lineage.libraries if card is not None else {}
    wanted = normalized_name(module)
    package = next((name for name in libraries if normalized_name(name) == wanted), module)
    requirement = f"{package}=={libraries[package]}" if package in libraries else package
    return (
        f"Model {tag} needs the Python package {requirement}, which is not installed here: install it "
        f"(`pip install {requirement}`) or serve from a bento built with it."
    )


def load_predictor(stored: bentoml.Model, wanted_runtime: str) -> Predictor:
    """Build the predictor for a model from the store; ModelLoadError says which model and what to do."""
    card = None
    try:
        card = read_card(Path(stored.path))
        runtime = choose_runtime(Path(stored.path), card, wanted_runtime)
    except ModuleNotFoundError as error:
        # The model is fine; this environment lacks a package its pickle refers to (a notebook's booster, say).
        raise ModelLoadError(missing_package(str(stored.tag), card, error)) from error
    # Card validation, onnxruntime and unpickling each raise their own kinds; all mean "this model is unusable".
    except Exception as error:
        raise ModelLoadError(
            f"Model {stored.tag} in {stored.path} cannot be loaded ({type(error).__name__}: {error}). "
            "Train it again with `python -m train`, or import a good copy with `bentoml models import`."
        ) from error
    logger.info("Loaded %s with the %s runtime", stored.tag, runtime.name)
    return Predictor(str(stored.tag), card, runtime)
