"""The training step: run the notebook, check what it produced, describe it, store it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bentoml
import pandas as pd

from modelcard.card import FeatureKind, FeatureSpec, Lineage, ModelCard, SearchSummary
from runtime.evaluation import evaluate
from runtime.table import FeatureTable
from train import environment as notebook_environment
from train.checks import (
    check_classifier,
    check_frames,
    check_gates,
    check_kinds,
    check_labels,
    check_served_path,
    predict_test_set,
)
from train.columnuse import column_use
from train.comparison import DEFAULT_MARGIN, Candidate, compare, previous_version
from train.compile import CompiledModel, compile_to_onnx, run_onnx
from train.compose import check_composition, compose
from train.describe import pick_examples, reference_rows
from train.features import DEFAULT_LIMIT_FACTOR, describe_features
from train.labels import decode_labels
from train.lineage import fingerprint, git_commit, library_versions
from train.notebook import ExecutedNotebook, first_heading, run_notebook
from train.notebook_code import check_loads_elsewhere, notebook_code, serialize
from train.notes import CardNotes, read_notes
from train.search import best_of_search
from train.store import save_model
from train.unseen import probe_unseen, text_refused_as_category

logger = logging.getLogger(__name__)

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
DEFAULT_NOTEBOOK = NOTEBOOKS / "iris.ipynb"
# Without a gate from the command line or the notebook, a model must at least be right this often.
DEFAULT_GATES = {"accuracy": 0.9}


@dataclass(frozen=True)
class TrainOptions:
    """What to train from, what to call the result, and the bar it must pass."""

    notebook: Path = DEFAULT_NOTEBOOK
    name: str | None = None  # default: <notebook name>_clf, e.g. iris_clf
    model_var: str = "model"
    x_train_var: str = "X_train"
    y_train_var: str = "y_train"
    x_test_var: str = "X_test"
    y_test_var: str = "y_test"
    preprocessor_var: str | None = None
    card_var: str = "model_card"
    label_encoder_var: str = "label_encoder"
    requirements: Path | None = None  # default: a requirements.txt beside the notebook (train/environment.py)
    gates: dict[str, float] = field(default_factory=dict)  # empty: the notebook's gate, else DEFAULT_GATES
    # The stored version to compare with: None for `<name>:latest` if stored, "none" for none (train/comparison.py).
    gate_vs: str | None = None
    gate_vs_margin: float = DEFAULT_MARGIN
    limit_factor: float = DEFAULT_LIMIT_FACTOR
    compile_onnx: bool = True
    output_dir: Path = Path("build")
    timeout: int = 600

    @property
    def model_name(self) -> str:
        """The name in the model store."""
        return self.name or f"{self.notebook.stem}_clf"


def train(options: TrainOptions) -> bentoml.Tag:
    """Run the whole step and return the new model's tag; raise a TrainingError and store nothing on failure."""
    wanted = [options.model_var, options.x_train_var, options.y_train_var, options.x_test_var, options.y_test_var]
    if options.preprocessor_var:
        wanted.append(options.preprocessor_var)
    optional = [options.card_var, options.label_encoder_var]
    # Resolved before the notebook runs: a mistyped --gate-vs fails at once, and `latest` is the one stored then.
    previous = previous_version(options.gate_vs, options.model_name)
    executed = run_notebook(options.notebook, wanted, options.output_dir, options.timeout, optional=optional)
    objects = executed.objects
    X_train, y_train = objects[options.x_train_var], objects[options.y_train_var]
    X_test, y_test = objects[options.x_test_var], objects[options.y_test_var]

    model, search = _servable_model(objects, options, X_train, X_test)
    frames = {options.x_train_var: X_train, options.x_test_var: X_test}
    names = check_frames(frames)
    notes = read_notes(objects.get(options.card_var), options.card_var, names)
    use = column_use(model, names, notes.unused)
    check_kinds(frames, use.unread)
    check_labels(
        {
            (options.x_train_var, options.y_train_var): (X_train, y_train),
            (options.x_test_var, options.y_test_var): (X_test, y_test),
        }
    )
    feature_notes = {name: note.model_dump() for name, note in notes.features.items()}
    features = describe_features(X_train, options.limit_factor, feature_notes, use, X_test)
    _log_kinds(features)
    class_names = [str(c) for c in model.classes_]
    encoder = objects.get(options.label_encoder_var)
    if encoder is not None:
        class_names, (y_train, y_test) = decode_labels(
            encoder, options.label_encoder_var, model.classes_, y_train, y_test
        )
        logger.info("Classes decoded by `%s`: %s", options.label_encoder_var, ", ".join(class_names))
    probabilities = predict_test_set(model, X_test)
    check_served_path(model, features, X_test, probabilities)
    metrics = evaluate(probabilities, y_test, class_names)
    gates = options.gates or notes.gate or DEFAULT_GATES
    logger.info(
        "Test accuracy %.4f, balanced accuracy %.4f, ROC AUC %s on %d rows; gates %s",
        metrics.accuracy,
        metrics.balanced_accuracy,
        "n/a" if metrics.roc_auc is None else f"{metrics.roc_auc:.4f}",
        metrics.n_test,
        gates,
    )
    check_gates(metrics, gates)
    test_fingerprint = fingerprint(X_test, y_test)
    new = Candidate(
        f"{options.model_name} from {options.notebook}", X_test, y_test, class_names, metrics, test_fingerprint
    )
    # The first gate is the one the notebook (or the command line) put first: the metric the model is judged by.
    comparison = compare(previous, new, next(iter(gates)), options.gate_vs_margin) if previous is not None else None
    code = notebook_code(model)
    if code:
        logger.info("The model runs the notebook's own code, saved with it by value: %s", ", ".join(code))
    model_file = serialize(model)
    check_loads_elsewhere(model_file, X_test, probabilities, code)
    logger.info("The stored model loads in a new process and predicts the %d test rows alike", len(X_test))

    if not options.compile_onnx:
        compiled = CompiledModel(None, "ONNX compilation turned off (--no-onnx)")
    elif code:
        own = ", ".join(entry.split(" (")[0] for entry in code)
        compiled = CompiledModel(None, f"the model runs the notebook's own code ({own}), which ONNX cannot express")
    else:
        compiled = compile_to_onnx(model, features, pd.concat([X_train, X_test]))
    features = probe_unseen(model, features, X_test, _served_onnx(compiled.onnx_bytes, features))
    features = text_refused_as_category(features, X_train, X_test, options.limit_factor, feature_notes)
    card = ModelCard(
        title=_title(notes, executed, options),
        description=notes.description,
        features=features,
        class_names=class_names,
        metrics=metrics,
        gates=gates,
        examples=pick_examples(features, X_test, y_test, class_names),
        reference=reference_rows(features, X_train, y_train),
        estimator=_estimator_name(final_served(model, options)),
        runtime="onnx" if compiled.onnx_bytes is not None else "sklearn",
        runtime_note=compiled.note,
        preprocessor=_estimator_name(objects[options.preprocessor_var]) if options.preprocessor_var else None,
        search=search,
        notebook_code=code,
        comparison=comparison,
        lineage=_lineage(options.notebook, executed, model, X_train, y_train, test_fingerprint),
        n_train=len(X_train),
    )
    return save_model(options.model_name, model_file, card, executed.notebook, compiled.onnx_bytes)


def _servable_model(
    objects: dict[str, Any], options: TrainOptions, X_train: Any, X_test: Any
) -> tuple[Any, SearchSummary | None]:
    """The notebook's classifier (a search's best estimator), composed with its separate preprocessor if kept."""
    model, search = best_of_search(objects[options.model_var], options.model_var)
    check_classifier(model, options.model_var)
    if not options.preprocessor_var:
        return model, search
    preprocessor = objects[options.preprocessor_var]
    check_frames({options.x_train_var: X_train, options.x_test_var: X_test})
    composed = compose(preprocessor, model, X_train)
    names = f"`{options.preprocessor_var}` and `{options.model_var}`"
    check_composition(composed, preprocessor, model, X_test, names)
    logger.info("Composed %s into one pipeline from raw rows to probabilities", names)
    return composed, search


def final_served(model: Any, options: TrainOptions) -> Any:
    """What the card names as the estimator: the model, or the classifier after a composed preprocessor."""
    if options.preprocessor_var and hasattr(model, "steps"):
        return model.steps[-1][1]
    return model


def _served_onnx(onnx_file: bytes | None, features: list[FeatureSpec]) -> Callable[[pd.DataFrame], Any] | None:
    """Rows' probabilities as the service computes them on ONNX (its feature table, its runtime); None without."""
    if onnx_file is None:
        return None
    return lambda rows: run_onnx(onnx_file, FeatureTable.from_frame(features, rows))


def _log_kinds(features: list[FeatureSpec]) -> None:
    """Say which columns are served as free text and which the model never reads: the two a reader may not expect."""
    for kind, what in ((FeatureKind.TEXT, "Served as free text"), (FeatureKind.UNUSED, "Never read by the model")):
        names = [spec.name for spec in features if spec.kind is kind]
        if names:
            logger.info("%s: %s", what, ", ".join(names))


def _installed_requirements() -> dict[str, Any]:
    """What the notebook's requirements added to the project's packages, when training runs in their environment."""
    inside = notebook_environment.current()
    if inside is None:
        return {}
    public = notebook_environment.without_credentials
    return {
        "requirements": dict(inside.packages),
        "requirement_urls": {name: public(url) for name, url in inside.urls.items()},
        "index_options": [public(option) for option in inside.index_options],
    }


def _title(notes: CardNotes, executed: ExecutedNotebook, options: TrainOptions) -> str:
    """The notebook's own title for its model, its first heading, or its file name."""
    return notes.title or first_heading(executed.notebook) or options.notebook.stem.replace("_", " ")


def _estimator_name(estimator: Any) -> str:
    return f"{type(estimator).__module__}.{type(estimator).__qualname__}"


def _lineage(
    notebook: Path,
    executed: ExecutedNotebook,
    model: Any,
    X_train: pd.DataFrame,
    y_train: Any,
    test_fingerprint: str,
) -> Lineage:
    commit, dirty = git_commit(notebook)
    return Lineage(
        notebook=str(notebook),
        notebook_sha256=executed.source_sha256,
        git_commit=commit,
        git_dirty=dirty,
        train_fingerprint=fingerprint(X_train, y_train),
        test_fingerprint=test_fingerprint,
        libraries=library_versions(model),
        **_installed_requirements(),
    )
