"""Prometheus rules made from a model card: each feature's population stability index over a window, and an alert.

Usage: python -m monitoring.rules --model TAG [--window 1h] [--for 30m] [--psi-threshold 0.2] [--min-rows 100]
                                 [--output FILE]

The live side is what /metrics counts (monitoring/metrics.py), summed over every instance and worker:
- numbers and integers: `classifier_input_decile_bucket`, twelve bins (-1 below the training minimum, the ten
  training deciles 0 to 9, 10 above the maximum), one bucket bound apart (DECILE_BUCKETS);
- free text: its lengths, `classifier_input_text_length_decile_bucket`, binned the same way;
- categories and booleans: `classifier_input_category_total{feature, value}` (the 30 most frequent training
  values, the rest as "(other)") and `classifier_input_missing_total` as a value "(blank)" of its own.

The reference side is the card's training sample (`card.reference`, the rows the batch drift check compares
with) binned exactly as /metrics bins a request, and written into the file as constant series, one per
feature and bin. A decile holds about a tenth of training, but not exactly: tied values (a measurement rounded
to one value, whole numbers of months) put more in one decile and none in the next. Training's bins outside [min, max]
are empty, like every bin training never filled; as in monitoring/stats.py, a share below PSI_FLOOR (1e-4),
live or reference, counts as PSI_FLOOR, so an empty bin adds a finite term instead of an infinite one.

PSI = sum over the bins of (live - reference) * ln(live / reference); the alert `ClassifierFeatureDrift` fires
for a feature whose PSI is above 0.2 for `--for`, once the window holds enough of its values: PSI of an
unchanged feature grows like (bins - 1) / values, so each feature needs ROWS_PER_BIN values per bin training
filled (and `--min-rows` at least).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from modelcard.card import FeatureKind, FeatureSpec, ModelCard
from monitoring.drift import CANNOT_CHECK, CannotCheck, as_category, load_card
from monitoring.metrics import DECILE_BUCKETS, MAX_CATEGORY_SERIES, OTHER, PREFIX, Deciles
from monitoring.stats import BLANK, PSI_FLOOR

logger = logging.getLogger("monitoring.rules")

# Values a feature needs per bin before its PSI may alert: monitoring/stats.py's bin_count asks the same of its bins.
ROWS_PER_BIN = 25
DECILES = [str(position) for position in range(-1, 11)]
_PROMQL_DURATION = re.compile(r"\d+[smhd]")


@dataclass(frozen=True)
class Family:
    """Series that split each feature's values into bins: how to count them, and what the alert says moved."""

    name: str  # the rules' middle part: classifier:<name>:psi1h
    bin_label: str  # the label that names a bin
    over: str  # the alert's psi_over label: what the PSI was taken over (an alert rule per family)
    moved: str  # for the alert: "<feature>'s <moved> moved away from training's"
    histogram: str | None  # a decile histogram's metric; None for the category counters


DECILE = Family("input_decile", "decile", "deciles", "values", f"{PREFIX}_input_decile_bucket")
TEXT_LENGTH = Family(
    "input_text_length_decile", "decile", "length deciles", "lengths", f"{PREFIX}_input_text_length_decile_bucket"
)
CATEGORY = Family("input_category", "value", "values", "mix of values", None)
FAMILIES = {
    FeatureKind.NUMBER: DECILE,
    FeatureKind.INTEGER: DECILE,
    FeatureKind.TEXT: TEXT_LENGTH,
    FeatureKind.CATEGORY: CATEGORY,
    FeatureKind.BOOLEAN: CATEGORY,
}


def bins(spec: FeatureSpec) -> list[str]:
    """The bins /metrics counts a feature's values in (a category's blanks in a bin of their own)."""
    if FAMILIES[spec.kind] is CATEGORY:
        return [*_category_series(spec), OTHER, BLANK]
    return list(DECILES)


def _category_series(spec: FeatureSpec) -> list[str]:
    """The values a category or boolean has a series of its own for (metrics.CategoryWatcher's labels)."""
    if spec.kind is FeatureKind.BOOLEAN:
        return ["true", "false"]
    return list(spec.categories or {})[:MAX_CATEGORY_SERIES]


def binned(spec: FeatureSpec, values: Sequence[Any]) -> list[str]:
    """Each value's bin, as /metrics counts it: numbers by training decile, text by its length's (no blanks)."""
    if FAMILIES[spec.kind] is CATEGORY:
        own = set(_category_series(spec))
        categories = [as_category(spec, value) for value in values]
        return [c if c in own or c == BLANK else OTHER for c in categories]
    stats = spec.text.chars if spec.text is not None else spec.stats
    assert stats is not None
    present = [len(v) if spec.kind is FeatureKind.TEXT else v for v in values if v is not None]
    return [str(p) for p in Deciles(stats).positions(np.asarray(present, dtype=float)).tolist()]


def shares(spec: FeatureSpec, values: Sequence[Any]) -> dict[str, float]:
    """Each bin's share of the values (all zero for none)."""
    counts = Counter(binned(spec, values))
    total = sum(counts.values())
    return {b: counts[b] / total if total else 0.0 for b in bins(spec)}


def reference_shares(spec: FeatureSpec, card: ModelCard) -> dict[str, float]:
    """Each bin's share of the card's training sample."""
    return shares(spec, [row.get(spec.name) for row in card.reference])


def min_rows(reference: dict[str, float], floor: int) -> int:
    """Values a window must hold before the feature's PSI may alert."""
    return max(floor, ROWS_PER_BIN * sum(share > PSI_FLOOR for share in reference.values()))


def _series(family: Family, part: str, window: str = "") -> str:
    """A recorded series' name: classifier:<family>:<part><window>."""
    return f"{PREFIX}:{family.name}:{part}{window}"


def _features(specs: Sequence[FeatureSpec]) -> str:
    """A label matcher for these features, as a PromQL string."""
    pattern = "|".join(re.escape(spec.name) for spec in specs)
    return 'feature=~"' + pattern.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _histogram_counts(family: Family, specs: Sequence[FeatureSpec], window: str) -> list[dict[str, Any]]:
    """The window's values per feature and decile: the histogram's buckets are cumulative, so one minus the next."""
    buckets = _series(family, "bucket_increase", window)
    bounds = [str(bound) for bound in DECILE_BUCKETS]  # as prometheus_client writes `le`: -0.5, 0.5, ..., 10.5
    terms = [f'label_replace(sum without (le) ({buckets}{{le="{bounds[0]}"}}), "decile", "-1", "", "")']
    terms += [
        f'label_replace({buckets}{{le="{upper}"}} - ignoring (le) {buckets}{{le="{lower}"}}, "decile", "{i}", "", "")'
        for i, (lower, upper) in enumerate(zip(bounds, bounds[1:], strict=False))
    ]
    return [
        {
            "record": buckets,
            "expr": f"sum by (feature, le) (increase({family.histogram}{{{_features(specs)}}}[{window}]))",
        },
        {"record": _series(family, "increase", window), "expr": "\n  or ".join(terms) + "\n"},
    ]


def _category_counts(specs: Sequence[FeatureSpec], window: str) -> list[dict[str, Any]]:
    """The window's values per feature and value, blanks as the value "(blank)"."""
    selector = _features(specs)
    return [
        {
            "record": _series(CATEGORY, "increase", window),
            "expr": f"sum by (feature, value) (increase({PREFIX}_input_category_total{{{selector}}}[{window}]))\n"
            f"  or label_replace(sum by (feature) (increase({PREFIX}_input_missing_total{{{selector}}}[{window}])),"
            f' "value", "{BLANK}", "", "")\n',
        }
    ]


def _psi_rules(family: Family, window: str) -> list[dict[str, Any]]:
    """Rows, shares and PSI per feature from the per-bin counts and the reference constants."""
    counts, rows = _series(family, "increase", window), _series(family, "rows", window)
    share, reference = _series(family, "share", window), _series(family, "reference_share")
    on = f"on (feature, {family.bin_label})"
    live = f"clamp_min({share}, {PSI_FLOOR})"
    return [
        {"record": rows, "expr": f"sum by (feature) ({counts})"},
        {"record": share, "expr": f"{counts} / ignoring ({family.bin_label}) group_left {rows}"},
        {
            "record": _series(family, "psi", window),
            "expr": f"sum by (feature) (\n  ({live} - {on} {reference})\n  * {on} ln({live} / {on} {reference})\n)\n",
        },
    ]


def _constants(family: Family, spec: FeatureSpec, reference: dict[str, float]) -> list[dict[str, Any]]:
    """The feature's reference share of each bin (floored), as constant series."""
    name = _series(family, "reference_share")
    return [
        {
            "record": name,
            "expr": f"vector({round(max(share, PSI_FLOOR), 6)})",
            "labels": {"feature": spec.name, family.bin_label: b},
        }
        for b, share in reference.items()
    ]


@dataclass(frozen=True)
class Options:
    """What the generated rules watch: the window, how long an alert waits, its threshold, the fewest values."""

    window: str = "1h"
    wait: str = "30m"
    psi_threshold: float = 0.2
    min_rows: int = 100


def _alert(family: Family, model: str, options: Options) -> dict[str, Any]:
    """ClassifierFeatureDrift for the family's features, once the window holds enough of a feature's values."""
    psi, rows = _series(family, "psi", options.window), _series(family, "rows", options.window)
    enough = f"{rows} >= on (feature) {PREFIX}:input_psi:min_rows"
    return {
        "alert": "ClassifierFeatureDrift",
        "expr": f"{psi} > {options.psi_threshold}\n  and on (feature) ({enough})\n",
        "for": options.wait,
        "labels": {"severity": "ticket", "model": model, "psi_over": family.over},
        "annotations": {
            "summary": f"{{{{ $labels.feature }}}}'s {family.moved} moved away from training's",
            "description": f'PSI {{{{ $value | printf "%.2f" }}}} over the last {options.window} against the model '
            f"card's training sample (above {options.psi_threshold}); run python -m monitoring.drift for the detail.",
        },
    }


def _minimum(spec: FeatureSpec, reference: dict[str, float], options: Options) -> dict[str, Any]:
    """The feature's fewest values for an alert, as a constant series."""
    rows = min_rows(reference, options.min_rows)
    return {"record": f"{PREFIX}:input_psi:min_rows", "expr": f"vector({rows})", "labels": {"feature": spec.name}}


def _family_rules(
    family: Family, specs: Sequence[FeatureSpec], card: ModelCard, model: str, options: Options
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One family's constants (reference shares and minimums), then its counts, PSI and alert."""
    constants = []
    for spec in specs:
        reference = reference_shares(spec, card)
        constants += [*_constants(family, spec, reference), _minimum(spec, reference, options)]
    if family.histogram:
        counts = _histogram_counts(family, specs, options.window)
    else:
        counts = _category_counts(specs, options.window)
    return constants, [*counts, *_psi_rules(family, options.window), _alert(family, model, options)]


def rule_groups(card: ModelCard, model: str, options: Options) -> dict[str, Any]:
    """The rule file's content: every constant first, so each evaluation's PSI reads them, then each family's rules."""
    constants: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    for family in dict.fromkeys(FAMILIES.values()):
        specs = [spec for spec in card.features if FAMILIES.get(spec.kind) is family]
        if specs:
            family_constants, family_rules = _family_rules(family, specs, card, model, options)
            constants += family_constants
            rules += family_rules
    return {"groups": [{"name": f"{PREFIX}.psi", "rules": constants + rules}]}


class _Dumper(yaml.SafeDumper):
    """YAML with multi-line PromQL as literal blocks, as people write rule files."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _text)


def rule_file(card: ModelCard, model: str, options: Options) -> str:
    """The rule file's text, with a header saying where it came from."""
    header = (
        f"# Generated by python -m monitoring.rules --model {model} --window {options.window} --for {options.wait}"
        f" --psi-threshold {options.psi_threshold} --min-rows {options.min_rows}\n"
        "# from the model card's training sample: generate it again for a new model version, do not edit.\n"
    )
    return header + yaml.dump(rule_groups(card, model, options), Dumper=_Dumper, sort_keys=False, width=200)


def promql_duration(text: str) -> str:
    """A duration an alert's `for:` takes, like 0s, 90s, 15m, 1h or 7d."""
    if _PROMQL_DURATION.fullmatch(text.strip()) is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 15m, 1h or 7d (a whole number and a unit)")
    return text.strip()


def window_duration(text: str) -> str:
    """A duration a range selector takes: as for `for:`, but more than none."""
    duration = promql_duration(text)
    if int(duration[:-1]) == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a window must be longer than nothing")
    return duration


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m monitoring.rules", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model tag in the BentoML store (BENTOML_HOME)")
    parser.add_argument("--window", type=window_duration, default="1h", help="PSI over this window (1h)")
    parser.add_argument("--for", dest="wait", type=promql_duration, default="30m", help="alert after (30m)")
    parser.add_argument("--psi-threshold", type=float, default=0.2, help="PSI above which a feature drifts (0.2)")
    parser.add_argument("--min-rows", type=int, default=100, help="fewest values in the window to alert on (100)")
    parser.add_argument("--output", type=Path, help="rule file to write (default: standard output)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 written, 2 the model cannot be read."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    options = Options(args.window, args.wait, args.psi_threshold, args.min_rows)
    try:
        card = load_card(args.model)
    except CannotCheck as problem:
        logger.error("No rules written: %s", problem)
        return CANNOT_CHECK
    if not card.reference:
        logger.error("No rules written: model %s keeps no training sample in its card; train it again", args.model)
        return CANNOT_CHECK
    import bentoml

    model = str(bentoml.models.get(args.model).tag)  # the full tag, where --model said `latest`
    text = rule_file(card, model, options)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
        logger.info("Wrote %s: PSI rules for %s over %s", args.output, model, args.window)
    return 0


if __name__ == "__main__":
    sys.exit(main())
