"""Model files stored gzipped where that pays, and read back by the service in either form."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelcard.files import ONNX_FILE, SKLEARN_FILE, stored_file
from runtime.predictor import OnnxRuntime
from runtime.table import FeatureTable
from train.compile import compile_to_onnx
from train.features import describe_features
from train.store import COMPRESS_FROM_BYTES, write_model_file


def test_a_large_file_that_shrinks_is_gzipped_and_read_back(tmp_path: Path) -> None:
    weights = np.zeros((COMPRESS_FROM_BYTES // 8) * 2)  # 2 MiB that shrink to almost nothing
    path = write_model_file(tmp_path, SKLEARN_FILE, _pickle(weights, tmp_path))
    assert path.name == "model.joblib.gz" and stored_file(tmp_path, SKLEARN_FILE) == path
    assert path.stat().st_size < COMPRESS_FROM_BYTES // 100
    assert not (tmp_path / SKLEARN_FILE).exists()
    np.testing.assert_array_equal(joblib.load(path), weights)  # the way SklearnRuntime loads it


def test_small_or_incompressible_files_stay_as_they_are(tmp_path: Path) -> None:
    small = write_model_file(tmp_path, SKLEARN_FILE, b"x" * 1000)
    noise = os.urandom(2 * COMPRESS_FROM_BYTES)
    random = write_model_file(tmp_path, ONNX_FILE, noise)
    assert small.name == SKLEARN_FILE and small.read_bytes() == b"x" * 1000
    assert random.name == ONNX_FILE and random.read_bytes() == noise
    assert stored_file(tmp_path, ONNX_FILE) == random


def test_a_gzipped_onnx_file_answers_as_the_plain_one(tmp_path: Path) -> None:
    iris = load_iris(as_frame=True)
    X = iris.data
    model = LogisticRegression(max_iter=1000).fit(X, iris.target)
    features = describe_features(X)
    onnx_bytes = compile_to_onnx(model, features, X).onnx_bytes
    assert onnx_bytes is not None
    zipped = tmp_path / (ONNX_FILE + ".gz")
    zipped.write_bytes(gzip.compress(onnx_bytes))
    table = FeatureTable.from_frame(features, pd.DataFrame(X))
    expected = OnnxRuntime(onnx_bytes).predict_proba(table)
    np.testing.assert_array_equal(OnnxRuntime(stored_file(tmp_path, ONNX_FILE)).predict_proba(table), expected)


def _pickle(value: object, folder: Path) -> bytes:
    path = folder / "value.pkl"
    joblib.dump(value, path)
    return path.read_bytes()
