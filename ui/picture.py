"""The picture beside a prediction, chosen by what the data offers.

With two or more numeric features: where the training rows of each class lie on the two features that
separate the classes best (cells of a grid, not the rows themselves), with the row being predicted marked.
Otherwise: the probability of each class as the most telling category (or boolean) takes each of its
values, the other inputs held fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from modelcard.card import FeatureKind, FeatureSpec, ModelCard

THIS_ROW = "this row"
NUMERIC = (FeatureKind.NUMBER, FeatureKind.INTEGER)
# The training data is shown as cells of a grid, never as rows: a cell with fewer rows of a class is left out.
GRID_CELLS = 24
MIN_ROWS_PER_CELL = 3


def numeric_features(card: ModelCard) -> list[str]:
    """Names of the number and integer features."""
    return [spec.name for spec in card.features if spec.kind in NUMERIC]


def most_telling_pair(card: ModelCard) -> tuple[str, str] | None:
    """The two numeric features whose class means differ most relative to the spread within classes."""
    names = numeric_features(card)
    if len(names) < 2:
        return None
    if not card.reference:
        return names[0], names[1]
    frame = pd.DataFrame(card.reference).astype({n: float for n in names})
    grouped = frame.groupby("label")[names]
    # A feature constant within each class but not across them separates perfectly: keep it on top.
    separation = grouped.mean().var() / grouped.var().mean().clip(lower=1e-12)
    first, second = separation.fillna(0).sort_values(ascending=False, kind="stable").index[:2]
    return str(first), str(second)


def most_telling_choice(card: ModelCard) -> FeatureSpec | None:
    """The category or boolean feature whose values shift the class mix most in training."""
    choices = [spec for spec in card.features if spec.kind in (FeatureKind.CATEGORY, FeatureKind.BOOLEAN)]
    if not choices or not card.reference:
        return choices[0] if choices else None
    frame = pd.DataFrame(card.reference)

    def spread(spec: FeatureSpec) -> float:
        shares = pd.crosstab(frame[spec.name].astype(str), frame["label"], normalize="index")
        return float(shares.var().sum())

    return max(choices, key=spread)


def choice_values(spec: FeatureSpec) -> list[Any]:
    """The values a category or boolean feature can take (blanks left out)."""
    if spec.kind is FeatureKind.BOOLEAN:
        return [False, True]
    return list(spec.categories or {})


def training_scatter(cells: pd.DataFrame, pair: tuple[str, str], row: dict[str, Any]) -> pd.DataFrame:
    """The training data's `cells` (training_cells) and the predicted row on the pair, with a "class" column."""
    columns = [*pair, "class"]
    this_row = pd.DataFrame([{pair[0]: row.get(pair[0]), pair[1]: row.get(pair[1]), "class": THIS_ROW}])
    frame = pd.concat([cells, this_row], ignore_index=True).astype({pair[0]: float, pair[1]: float})
    return frame.reindex(columns=columns).dropna(subset=list(pair))  # a blank has no place on the picture


def training_cells(card: ModelCard, pair: tuple[str, str]) -> pd.DataFrame:
    """Where each class's training rows lie on the pair of features: grid cells, never the rows themselves.

    The plane is cut into GRID_CELLS x GRID_CELLS cells, and each class is drawn at the centre of every
    cell that holds at least MIN_ROWS_PER_CELL of its rows.
    """
    columns = [*pair, "class"]
    reference = pd.DataFrame(card.reference).rename(columns={"label": "class"}).reindex(columns=columns)
    reference = reference.dropna(subset=list(pair)).astype({pair[0]: float, pair[1]: float})
    if reference.empty:
        return pd.DataFrame(columns=columns)
    centres = {}
    for name in pair:
        values = reference[name].to_numpy()
        edges = np.linspace(values.min(), values.max(), GRID_CELLS + 1)
        index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, GRID_CELLS - 1)
        centres[name] = ((edges[:-1] + edges[1:]) / 2)[index]
    binned = pd.DataFrame({**centres, "class": reference["class"].astype(str).to_numpy()})
    counts = binned.value_counts().reset_index(name="rows")
    kept = counts[counts["rows"] >= MIN_ROWS_PER_CELL]
    return kept.sort_values(columns, kind="stable")[columns].reset_index(drop=True)


def what_if(
    card: ModelCard, spec: FeatureSpec, row: dict[str, Any], predict: Callable[[list[dict[str, Any]]], list[Any]]
) -> pd.DataFrame:
    """The probability of every class for each value of `spec`, everything else as in `row`."""
    values = choice_values(spec)
    predictions = predict([{**row, spec.name: value} for value in values])
    return pd.DataFrame(
        [
            {spec.name: str(value), "class": name, "probability": float(np.round(p.probabilities[name], 4))}
            for value, p in zip(values, predictions, strict=True)
            for name in card.class_names
        ]
    )
