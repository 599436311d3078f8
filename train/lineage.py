"""Where a model came from: data fingerprints, library versions, and the notebook's git commit."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

# Always recorded: what loading and running any scikit-learn model needs.
BASE_LIBRARIES = ("scikit-learn", "numpy", "pandas", "scipy", "joblib")


def fingerprint(features: pd.DataFrame, labels: Any) -> str:
    """SHA-256 over the column names, dtypes, every value and every label: the same data gives the same hex."""
    digest = hashlib.sha256()
    digest.update(repr([(str(name), str(dtype)) for name, dtype in features.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(_hashable(features), index=False).to_numpy().tobytes())
    digest.update(
        pd.util.hash_pandas_object(pd.Series(np.asarray(labels).astype(str)), index=False).to_numpy().tobytes()
    )
    return digest.hexdigest()


def library_versions(model: Any) -> dict[str, str]:
    """Versions of scikit-learn and friends, plus every package an estimator inside the model comes from."""
    wanted = set(BASE_LIBRARIES)
    by_module = importlib.metadata.packages_distributions()
    for estimator in _estimators(model):
        top = type(estimator).__module__.split(".")[0]
        wanted.update(by_module.get(top, []))
    versions = {"python": platform.python_version()}
    for name in sorted(wanted):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _estimators(model: Any) -> list[Any]:
    """The model and every estimator nested in it (pipeline steps, ensemble members, transformers)."""
    found = [model]
    if isinstance(model, BaseEstimator):
        for value in model.get_params(deep=True).values():
            if isinstance(value, BaseEstimator):
                found.append(value)
            elif isinstance(value, list | tuple):
                found += [
                    v for item in value for v in (item if isinstance(item, tuple) else (item,)) if hasattr(v, "fit")
                ]
    return found


def _hashable(features: pd.DataFrame) -> pd.DataFrame:
    """The frame with any column of unhashable values (lists, dicts: an unused column may hold them) as their repr."""
    columns = {}
    for name, column in features.items():
        try:
            pd.util.hash_pandas_object(column, index=False)
            columns[name] = column
        except TypeError:
            columns[name] = column.map(repr)
    return pd.DataFrame(columns, index=features.index)


def git_commit(path: Path) -> tuple[str | None, bool | None]:
    """The commit of the repository holding `path`, and whether `path` has uncommitted changes; None outside git."""
    folder = path.resolve().parent
    try:
        commit = _git(folder, "rev-parse", "HEAD")
        changed = _git(folder, "status", "--porcelain", "--", path.resolve().name)
    except (OSError, subprocess.CalledProcessError):
        return None, None
    return commit, bool(changed)


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=True).stdout.strip()
