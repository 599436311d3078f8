"""The drift report: a table on the terminal, and an HTML page with per-feature plots of training vs live data."""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monitoring.stats import ClassMixDrift, FeatureDrift


@dataclass(frozen=True)
class DriftResult:
    """Everything one drift check found."""

    model: str
    window_start: str
    window_end: str
    live_rows: int
    reference_rows: int
    features: list[FeatureDrift]
    classes: ClassMixDrift
    psi_threshold: float
    alpha: float
    skipped: list[str] = field(default_factory=list)  # unused features: the model never reads them

    @property
    def drifted(self) -> bool:
        """True when any feature or the class mix drifted."""
        return self.classes.drifted or any(f.drifted for f in self.features)


def table(result: DriftResult) -> str:
    """A plain-text table for the terminal."""
    width = max([16, *(len(f.feature) + 1 for f in result.features)])
    lines = [
        f"Model {result.model}: {result.live_rows} live rows from {result.window_start} to {result.window_end}, "
        f"against {result.reference_rows} training rows (PSI threshold {result.psi_threshold}, alpha {result.alpha} "
        f"over {len(result.features)} tests)",
        *_skipped_line(result),
        "",
        f"{'feature':<{width}} {'PSI':>7} {'test':>11} {'stat':>8} {'p-value':>9} "
        f"{'training':>24} {'live':>24}  verdict",
    ]
    for f in result.features:
        verdict = "DRIFT" if f.drifted else "ok"
        lines.append(
            f"{f.feature:<{width}} {f.psi:>7.3f} {f.test:>11} {f.statistic:>8.3f} {f.pvalue:>9.2g} "
            f"{f.reference_summary[:24]:>24} {f.live_summary[:24]:>24}  {verdict}"
        )
    mix = result.classes
    shares = ", ".join(f"{c} {mix.reference_shares[c]:.0%}→{mix.live_shares[c]:.0%}" for c in mix.reference_shares)
    lines += [
        "",
        f"class mix (train labels → live predictions): {shares}; PSI {mix.psi:.3f}  {'DRIFT' if mix.drifted else 'ok'}",
        "",
        "DRIFT FOUND" if result.drifted else "No drift found",
    ]
    return "\n".join(lines) + "\n"


def _skipped_line(result: DriftResult) -> list[str]:
    """The line naming the features not checked, if any."""
    return [f"Not checked (the model never reads them): {', '.join(result.skipped)}"] if result.skipped else []


def pyplot() -> Any:
    """matplotlib's pyplot drawing to files only; imported when a report is drawn (0.5 s a check without one)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no screen
    import matplotlib.pyplot as plt

    return plt


def write_report(
    result: DriftResult,
    reference: dict[str, np.ndarray],
    live: dict[str, np.ndarray],
    directory: Path,
) -> Path:
    """Write report.html, report.json and one PNG per feature plus classes.png; return the HTML's path."""
    directory.mkdir(parents=True, exist_ok=True)
    images = {
        f.feature: _numeric_plot(f, reference[f.feature], live[f.feature], directory)
        if f.kind == "numeric"
        else _category_plot(f, directory)
        for f in result.features
    }
    images["classes"] = _class_plot(result.classes, directory)
    (directory / "report.json").write_text(json.dumps({**asdict(result), "drifted": result.drifted}, indent=2))
    page = directory / "report.html"
    page.write_text(_html(result, images))
    return page


def _numeric_plot(drift: FeatureDrift, reference: np.ndarray, live: np.ndarray, directory: Path) -> Path:
    """Training and live distributions of one numeric feature on shared bins (blanks left out)."""
    reference, live = reference[~np.isnan(reference)], live[~np.isnan(live)]
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(5, 3.2))
    if reference.size and live.size:
        bins = np.histogram_bin_edges(np.concatenate([reference, live]), bins=20).tolist()
        axes.hist(reference, bins=bins, density=True, alpha=0.55, label="training", color="#4c72b0")
        axes.hist(live, bins=bins, density=True, alpha=0.55, label="live", color="#dd8452")
        axes.legend()
    axes.set_ylabel("density")
    axes.set_xlabel(drift.feature)
    return _save(figure, axes, drift, directory)


def _category_plot(drift: FeatureDrift, directory: Path) -> Path:
    """Training and live shares of each value of a category (or boolean) feature, as bars side by side."""
    values = list(drift.reference_shares)
    x = np.arange(len(values))
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(max(5, 0.45 * len(values) + 2), 3.2))
    axes.bar(x - 0.2, [drift.reference_shares[v] for v in values], 0.4, label="training", color="#4c72b0")
    axes.bar(x + 0.2, [drift.live_shares[v] for v in values], 0.4, label="live", color="#dd8452")
    axes.set_xticks(x, values, rotation=30 if len(values) > 4 else 0, ha="right" if len(values) > 4 else "center")
    axes.set_ylabel("share")
    axes.legend()
    return _save(figure, axes, drift, directory)


def _save(figure: Any, axes: Any, drift: FeatureDrift, directory: Path) -> Path:
    """Title the plot with the verdict and write it as feature-<name>.png."""
    verdict = "DRIFT" if drift.drifted else "ok"
    axes.set_title(f"{drift.feature}: PSI {drift.psi:.2f}, {drift.test} p={drift.pvalue:.2g} ({verdict})", fontsize=10)
    return save_png(figure, directory / f"feature-{_file_safe(drift.feature)}.png")


def save_png(figure: Any, path: Path) -> Path:
    """Lay the figure out, write it as a PNG and free it."""
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    pyplot().close(figure)
    return path


def inline_png(path: Path) -> str:
    """An <img> holding the PNG itself, so a page can be mailed or attached to a CI job."""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _file_safe(name: str) -> str:
    # "review (length)" becomes "review-length": one dash for each run of other characters.
    return re.sub(r"[^\w.-]+", "-", name).strip("-")


def _class_plot(mix: ClassMixDrift, directory: Path) -> Path:
    """Training label shares next to live predicted shares."""
    classes = list(mix.reference_shares)
    x = np.arange(len(classes))
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(5, 3.2))
    axes.bar(x - 0.2, [mix.reference_shares[c] for c in classes], 0.4, label="training labels", color="#4c72b0")
    axes.bar(x + 0.2, [mix.live_shares[c] for c in classes], 0.4, label="live predictions", color="#dd8452")
    axes.set_xticks(x, classes)
    axes.set_ylabel("share")
    axes.set_title(f"class mix: PSI {mix.psi:.2f} ({'DRIFT' if mix.drifted else 'ok'})", fontsize=10)
    axes.legend()
    return save_png(figure, directory / "classes.png")


def _html(result: DriftResult, images: dict[str, Path]) -> str:
    """A self-contained page: the table and the plots inlined, so it can be mailed or attached to a CI job."""

    rows = "".join(
        f"<tr class={'drift' if f.drifted else 'ok'}><td>{html.escape(f.feature)}</td><td>{f.psi:.3f}</td>"
        f"<td>{f.test}</td><td>{f.statistic:.3f}</td><td>{f.pvalue:.2g}</td>"
        f"<td>{html.escape(f.reference_summary)}</td><td>{html.escape(f.live_summary)}</td>"
        f"<td>{'DRIFT' if f.drifted else 'ok'}</td></tr>"
        for f in result.features
    )
    verdict = "Drift found" if result.drifted else "No drift found"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Drift report · {html.escape(result.model)}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:.3em .8em;text-align:right}}
tr.drift td{{background:#fde2e1}} img{{margin:.5em}}</style></head><body>
<h1>{verdict}</h1>
<p>Model <code>{html.escape(result.model)}</code>: {result.live_rows} live rows from {result.window_start} to
{result.window_end}, against {result.reference_rows} training rows. A feature drifts when its PSI is at least
{result.psi_threshold} or its test's p-value is below {result.alpha} divided by the number of tests
(Kolmogorov-Smirnov for numbers and text lengths, chi-squared for categories and booleans). A text feature's
new words drift when a one-sided binomial test finds more than the card's baseline at that level and the rise
is at least a small effect (Cohen's h 0.2, the statistic shown); their PSI is shown, not used.</p>
{"".join(f"<p>{html.escape(line)}</p>" for line in _skipped_line(result))}
<table><tr><th>feature</th><th>PSI</th><th>test</th><th>statistic</th><th>p-value</th><th>training</th><th>live</th>
<th>verdict</th></tr>{rows}</table>
<p>Class mix PSI {result.classes.psi:.3f} ({"DRIFT" if result.classes.drifted else "ok"}).</p>
{"".join(inline_png(p) for p in images.values())}
</body></html>
"""
