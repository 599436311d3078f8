"""The notebook's own code inside a fitted model, and proof that the stored model loads where the notebook never ran.

Functions and classes a notebook defines live in its kernel's `__main__`. The kernel saves the model with
cloudpickle (train/notebook.py), which stores them by value, as BentoML and MLflow do; the stored file is
written the same way. Before it enters the store, a new Python process that never ran the notebook loads it
as the service does and predicts the test rows: only the same probabilities, bit for bit, let it through.
"""

from __future__ import annotations

import inspect
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd

from runtime.environments import normalized_name
from train import environment
from train.environment import SERVING_REQUIREMENTS, requirement_names
from train.errors import ModelCheckFailed

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_MODULE = "__main__"
# A fresh interpreter imports scikit-learn and pandas in ~2 s; a large model takes longer to unpickle.
LOAD_TIMEOUT_S = 300


def notebook_code(model: Any) -> list[str]:
    """`name (kind, at where)` for each function and class defined in the notebook that the model refers to."""
    found: dict[str, None] = {}
    for where, value in _walk(model, "model"):
        defined = _defined_in_notebook(value)
        if defined is not None:
            found.setdefault(f"{defined[0]} ({defined[1]}, at {where})")
    return list(found)


def _defined_in_notebook(value: Any) -> tuple[str, str] | None:
    """(qualified name, "class" or "function") when the notebook itself defined `value` or its class."""
    if isinstance(value, type):
        return (value.__qualname__, "class") if value.__module__ == NOTEBOOK_MODULE else None
    if inspect.isfunction(value) or inspect.ismethod(value):
        return (value.__qualname__, "function") if value.__module__ == NOTEBOOK_MODULE else None
    kind = type(value)
    return (kind.__qualname__, "class") if kind.__module__ == NOTEBOOK_MODULE else None


def _walk(value: Any, where: str, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """Every object reachable through estimators' parameters, lists, tuples and dicts, with its path."""
    yield where, value
    if depth > 20 or isinstance(value, type | str | bytes | np.ndarray | pd.DataFrame | pd.Series):
        return
    if hasattr(value, "get_params"):
        try:
            params = value.get_params(deep=False)
        except Exception:  # a notebook's estimator whose get_params breaks: its parts are still pickled
            params = {}
        for name, param in params.items():
            yield from _walk(param, f"{where}.{name}", depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if isinstance(item, tuple) and item and isinstance(item[0], str):  # a (name, step, ...) entry
                for part in item[1:]:
                    yield from _walk(part, f"{where}[{item[0]!r}]", depth + 1)
            else:
                yield from _walk(item, f"{where}[{index}]", depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{where}[{key!r}]", depth + 1)


def serialize(model: Any) -> bytes:
    """The model as the stored file holds it: a pickle with the notebook's own code saved by value."""
    buffer = io.BytesIO()
    cloudpickle.dump(model, buffer, protocol=pickle.HIGHEST_PROTOCOL)
    return buffer.getvalue()


def check_loads_elsewhere(model_file: bytes, X_test: pd.DataFrame, expected: np.ndarray, code: list[str]) -> None:
    """Load the stored bytes in a new process, as the service does, and predict X_test; refuse any difference."""
    with tempfile.TemporaryDirectory(prefix="train-reload-") as folder:
        model_path, rows_path = Path(folder) / "model.pkl", Path(folder) / "rows.pkl"
        model_path.write_bytes(model_file)
        rows_path.write_bytes(pickle.dumps(X_test, protocol=pickle.HIGHEST_PROTOCOL))
        try:
            run = subprocess.run(
                [sys.executable, "-m", "train.notebook_code", str(model_path), str(rows_path)],
                cwd=folder,
                env=_fresh_env(),
                capture_output=True,
                text=True,
                timeout=LOAD_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise ModelCheckFailed(
                f"the stored model did not load in a new process within {LOAD_TIMEOUT_S} s"
            ) from None
        answer = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
        if run.returncode != 0 or not answer.startswith("{"):
            raise ModelCheckFailed(_load_failure(run.stderr or run.stdout, code))
        result = json.loads(answer)
        if "error" in result:
            raise ModelCheckFailed(_load_failure(result["error"], code))
        probabilities = np.load(Path(folder) / "probabilities.npy")
    check_packages_served(result.get("packages", {}))
    if probabilities.shape != expected.shape or not np.array_equal(probabilities, expected):
        gap = float(np.abs(probabilities - expected).max()) if probabilities.shape == expected.shape else float("inf")
        raise ModelCheckFailed(
            "the stored model, loaded in a new process, does not predict the test rows as the notebook's model "
            f"did (largest gap {gap:.3g}). Something it runs depends on state of the notebook's kernel"
            + (f" ({', '.join(code)})" if code else "")
            + ": make it depend only on its parameters and what it learned in fit."
        )


def check_packages_served(packages: dict[str, str]) -> None:
    """Refuse a model whose pickle needs a distribution the served model would lack, naming the line to add.

    `packages` are the distributions the stored model's classes and imports come from, found while loading it.
    A served model has the project's serving packages (requirements/serving.txt) and what the notebook's
    requirements add (recorded in the card; a bento that installs them is still to come, docs/training.md).
    """
    served = {normalized_name(name) for name in requirement_names(SERVING_REQUIREMENTS.read_text())}
    inside = environment.current()
    served |= {normalized_name(name) for name in (inside.packages if inside is not None else {})}
    missing = {name: version for name, version in packages.items() if normalized_name(name) not in served}
    if missing:
        lines = ", ".join(f"`{name}=={version}`" for name, version in sorted(missing.items()))
        raise ModelCheckFailed(
            f"the model needs {', '.join(sorted(missing))}, which a served model would not have: neither the "
            "project's serving packages (requirements/serving.txt) nor the notebook's requirements name "
            f"{'it' if len(missing) == 1 else 'them'}; add {lines} to a requirements.txt beside the notebook."
        )


def _fresh_env() -> dict[str, str]:
    """The environment without a path that could import the notebook's folder: only the project and its packages."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _load_failure(detail: str, code: list[str]) -> str:
    """The refusal when the stored model does not load elsewhere, naming the notebook code it relies on."""
    last = detail.strip().splitlines()[-1] if detail.strip() else "no output"
    named = f" The model runs the notebook's own code: {', '.join(code)}." if code else ""
    return (
        f"the stored model does not load in a process that never ran the notebook ({last}).{named} "
        "Code imported from a module in the notebook's folder is not saved with the model: define it in the "
        "notebook. A package the project does not have goes in a requirements.txt beside the notebook, which "
        "training installs for it (see docs/training.md)."
    )


def _main(model_path: str, rows_path: str) -> int:
    """In the new process: load as the service does (joblib), predict, and write the probabilities beside."""
    try:
        model, packages = _load_recording(Path(model_path))
        with open(rows_path, "rb") as file:
            rows = pickle.load(file)
        probabilities = np.asarray(model.predict_proba(rows), dtype=np.float64)
    except Exception as error:  # whatever fails to load or run is the answer
        sys.stdout.write(json.dumps({"error": f"{type(error).__name__}: {error}"}) + "\n")
        return 0
    np.save(Path(model_path).parent / "probabilities.npy", probabilities)
    sys.stdout.write(json.dumps({"rows": len(probabilities), "packages": packages}) + "\n")
    return 0


def _load_recording(model_path: Path) -> tuple[Any, dict[str, str]]:
    """The model, loaded once by joblib.load as the service loads it, and the distributions (with versions) whose
    modules its pickle names: its classes, and the imports of the notebook's own code (cloudpickle's subimport)."""
    import importlib.metadata

    import cloudpickle.cloudpickle as by_value
    import joblib
    import joblib.numpy_pickle as joblib_pickle

    modules: set[str] = set()
    unpickler, original = joblib_pickle.NumpyUnpickler, by_value.subimport

    class Recording(joblib_pickle.NumpyUnpickler):  # joblib.load's own unpickler, watched
        def find_class(self, module: str, name: str) -> Any:
            modules.add(module.split(".")[0])
            return super().find_class(module, name)

    def subimport(name: str) -> Any:  # a module the notebook's own code imports, saved by name
        modules.add(name.split(".")[0])
        return original(name)

    joblib_pickle.NumpyUnpickler, by_value.subimport = Recording, subimport
    try:
        model = joblib.load(model_path)
    finally:
        joblib_pickle.NumpyUnpickler, by_value.subimport = unpickler, original
    if not modules:  # every model's pickle names its class: joblib no longer loads through NumpyUnpickler
        raise RuntimeError("joblib.load read the model without naming a module; the packages check cannot run")
    distributions = importlib.metadata.packages_distributions()
    found = {name for module in modules for name in distributions.get(module, [])}
    return model, {name: importlib.metadata.version(name) for name in sorted(found)}


if __name__ == "__main__":
    raise SystemExit(_main(*sys.argv[1:3]))
