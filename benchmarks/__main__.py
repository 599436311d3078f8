"""Benchmark the served bentos against the Flask + pickle baseline and a bare-starlette floor, in one run.

Usage: python -m benchmarks [--model iris churn] [--duration SECONDS] [--concurrency 1 32 64] [--rounds N]
Needs hey (Debian package `hey`). Trains each example notebook and builds its bento into a temporary
BENTOML_HOME of its own; every server of a model gets the same JSON body: the model card's first example row.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.load import LoadResult, run_load
from benchmarks.prepare import ROOT as PROJECT
from benchmarks.prepare import Prepared, prepare
from benchmarks.servers import Started, start_server, worker_rss_mb

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent
BATCH_ROWS = 1000
# The examples benchmarked; iris gets every serving variant, the others the defaults.
MODELS = {"iris": PROJECT / "notebooks" / "iris.ipynb", "churn": PROJECT / "notebooks" / "churn.ipynb"}

logger = logging.getLogger("benchmarks")


@dataclass
class ServerReport:
    """Everything measured for one server."""

    name: str
    loads: dict[int, LoadResult]
    ready_s: float
    rss_mb: list[float]
    batch_rows_per_s: float | None = None


def measure(server: Started, concurrencies: list[int], duration: int, body: Path) -> dict[int, LoadResult]:
    """Warm up, then drive /prediction at each concurrency."""
    run_load(f"{server.url}/prediction", body, connections=32, duration=2)
    return {c: run_load(f"{server.url}/prediction", body, connections=c, duration=duration) for c in concurrencies}


def bench_server(
    name: str, command: list[str], env: dict[str, str], args: argparse.Namespace, files: Path
) -> ServerReport:
    """Start one server, measure it, stop it; `files` holds the model's one.json and batch.json bodies."""
    logger.info("Measuring %s", name)
    with start_server(
        command, env, files / f"{name}.log", probe=json.loads((files / "one.json").read_text())
    ) as server:
        loads = measure(server, args.concurrency, args.duration, files / "one.json")
        report = ServerReport(name, loads, server.seconds_to_ready, worker_rss_mb(server.process))
        if name.startswith("project"):
            batch = run_load(f"{server.url}/predict_batch", files / "batch.json", connections=2, duration=args.duration)
            report.batch_rows_per_s = batch.requests_per_s * BATCH_ROWS if batch.errors == 0 else 0.0
    return report


def servers_for(model: str, prepared: Prepared, env: dict[str, str]) -> list[tuple[str, list[str], dict[str, str]]]:
    """The baseline, the bento's rows and the floor for one model, in table order."""
    bentoml_serve = [str(BIN / "bentoml"), "serve", prepared.bento_tag, "--host", "127.0.0.1", "--port", "{port}"]
    variants = [("project: bento, defaults (prediction log on)", bentoml_serve, env)]
    if model == "iris":
        variants += [
            ("project: bento, SERVING_PREDICTION_LOG=off", bentoml_serve, {**env, "SERVING_PREDICTION_LOG": "off"}),
            ("project: bento, SERVING_WORKERS=2 (API only, UI off)", bentoml_serve, {**env, "SERVING_WORKERS": "2"}),
            ("project: bento, SERVING_FAST_PATH=false", bentoml_serve, {**env, "SERVING_FAST_PATH": "false"}),
            (
                "project: bento, SERVING_TRACE_PREDICTIONS=true",
                bentoml_serve,
                {**env, "SERVING_TRACE_PREDICTIONS": "true"},
            ),
        ]
    return [
        (
            "baseline: Flask + gunicorn (2 workers), pickle",
            [str(BIN / "gunicorn"), "-w", "2", "-b", "127.0.0.1:{port}", "benchmarks.baseline_flask:app"],
            {**env, "MODEL_PATH": str(prepared.model_file)},
        ),
        *variants,
        (
            "floor: bare starlette + uvicorn (1 worker)",
            [str(BIN / "uvicorn"), "benchmarks.floor_starlette:app", "--port", "{port}", "--log-level", "warning"],
            env,
        ),
    ]


def median_report(measured: list[ServerReport]) -> ServerReport:
    """One server's rounds folded into one report: the median of every figure, errors summed."""
    first = measured[0]

    def median_load(concurrency: int) -> LoadResult:
        loads = [m.loads[concurrency] for m in measured]
        return LoadResult(
            statistics.median(load.requests_per_s for load in loads),
            statistics.median(load.p50_ms for load in loads),
            statistics.median(load.p99_ms for load in loads),
            sum(load.errors for load in loads),
            sum(load.requests for load in loads),
        )

    batches = [m.batch_rows_per_s for m in measured if m.batch_rows_per_s is not None]
    return ServerReport(
        first.name,
        {c: median_load(c) for c in first.loads},
        statistics.median(m.ready_s for m in measured),
        measured[-1].rss_mb,
        statistics.median(batches) if batches else None,
    )


def print_table(reports: list[ServerReport], concurrencies: list[int]) -> None:
    """One markdown table: req/s, p50, p99, errors and ratios, per server and concurrency."""
    baseline, floor = reports[0], reports[-1]
    lines = [
        "| server | conc. | req/s | p50 ms | p99 ms | errors | × baseline | ÷ floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for report in reports:
        for c in concurrencies:
            load = report.loads[c]
            lines.append(
                f"| {report.name} | {c} | {load.requests_per_s:,.0f} | {load.p50_ms:.2f} | {load.p99_ms:.2f} | "
                f"{load.errors} | {load.requests_per_s / baseline.loads[c].requests_per_s:.1f} | "
                f"{load.requests_per_s / floor.loads[c].requests_per_s:.2f} |"
            )
    lines += [
        "",
        "| server | serve-to-ready s | RSS per worker MB | /predict_batch rows/s (1,000-row batches) |",
        "|---|---:|---:|---:|",
    ]
    for report in reports:
        rss = ", ".join(f"{r:.0f}" for r in report.rss_mb)
        batch = f"{report.batch_rows_per_s:,.0f}" if report.batch_rows_per_s is not None else "–"
        lines.append(f"| {report.name} | {report.ready_s:.1f} | {rss} | {batch} |")
    sys.stdout.write("\n".join(lines) + "\n")


def main() -> None:
    """Prepare, measure every server in turn, print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32, 64])
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="TEXT",
        help="measure only the project rows whose name contains TEXT (and the baseline and floor)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every server this many times, interleaved, and report medians (the machine is noisy)",
    )
    parser.add_argument("--model", nargs="+", choices=list(MODELS), default=list(MODELS), help="examples to measure")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    figures = {}
    with tempfile.TemporaryDirectory(prefix="model-bench-") as tmp:
        for model in args.model:
            files = Path(tmp) / model
            home = files / "bentoml"
            files.mkdir(parents=True)
            prepared = prepare(home, MODELS[model])
            (files / "one.json").write_text(json.dumps(prepared.example))
            (files / "batch.json").write_text(json.dumps([prepared.example] * BATCH_ROWS))
            env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
            servers = servers_for(model, prepared, env)
            if args.only:
                servers = [s for s in servers if not s[0].startswith("project") or any(t in s[0] for t in args.only)]
            rounds = [
                [bench_server(name, command, server_env, args, files) for name, command, server_env in servers]
                for _ in range(args.rounds)
            ]
            reports = [median_report(list(measured)) for measured in zip(*rounds, strict=True)]
            sys.stdout.write(f"\n### {model} ({prepared.model_tag}), body {json.dumps(prepared.example)}\n\n")
            if args.rounds > 1:
                sys.stdout.write(f"Medians of {args.rounds} interleaved rounds.\n\n")
            print_table(reports, args.concurrency)
            figures[model] = [r.__dict__ for r in reports]
    if args.json:
        args.json.write_text(json.dumps(figures, default=lambda o: o.__dict__, indent=2))


if __name__ == "__main__":
    main()
