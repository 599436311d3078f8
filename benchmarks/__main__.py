"""Benchmark the served bento against the Flask + pickle baseline and a bare-starlette floor, in one run.

Usage: python -m benchmarks [--duration SECONDS] [--concurrency 1 32 64]
Needs hey (Debian package `hey`). Trains and builds into a temporary BENTOML_HOME of its own.
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
from benchmarks.prepare import prepare
from benchmarks.servers import Started, start_server, worker_rss_mb

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent
SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
BATCH_ROWS = 1000
ACCESS_LOG_OFF = "api_server.logging.access.enabled=false"

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
    """Start one server, measure it, stop it."""
    logger.info("Measuring %s", name)
    with start_server(command, env, files / f"{name}.log") as server:
        loads = measure(server, args.concurrency, args.duration, files / "one.json")
        report = ServerReport(name, loads, server.seconds_to_ready, worker_rss_mb(server.process))
        if name.startswith("project"):
            batch = run_load(f"{server.url}/predict_batch", files / "batch.json", connections=2, duration=args.duration)
            report.batch_rows_per_s = batch.requests_per_s * BATCH_ROWS if batch.errors == 0 else 0.0
    return report


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
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    with tempfile.TemporaryDirectory(prefix="iris-bench-") as tmp:
        files = Path(tmp)
        (files / "one.json").write_text(json.dumps(SETOSA))
        (files / "batch.json").write_text(json.dumps([SETOSA] * BATCH_ROWS))
        home = files / "bentoml"
        bento_tag, model_file = prepare(home)
        env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
        bentoml_serve = [str(BIN / "bentoml"), "serve", bento_tag, "--host", "127.0.0.1", "--port", "{port}"]
        servers = [
            (
                "baseline: Flask + gunicorn (2 workers), pickle",
                [str(BIN / "gunicorn"), "-w", "2", "-b", "127.0.0.1:{port}", "benchmarks.baseline_flask:app"],
                {**env, "MODEL_PATH": str(model_file)},
            ),
            ("project: bento, defaults (prediction log on)", bentoml_serve, env),
            ("project: bento, IRIS_PREDICTION_LOG=off", bentoml_serve, {**env, "IRIS_PREDICTION_LOG": "off"}),
            ("project: bento, IRIS_WORKERS=2 (API only, UI off)", bentoml_serve, {**env, "IRIS_WORKERS": "2"}),
            ("project: bento, IRIS_FAST_PATH=false", bentoml_serve, {**env, "IRIS_FAST_PATH": "false"}),
            ("project: bento, access log off", bentoml_serve, {**env, "BENTOML_CONFIG_OPTIONS": ACCESS_LOG_OFF}),
            (
                "floor: bare starlette + uvicorn (1 worker)",
                [str(BIN / "uvicorn"), "benchmarks.floor_starlette:app", "--port", "{port}", "--log-level", "warning"],
                env,
            ),
        ]
        if args.only:
            servers = [s for s in servers if not s[0].startswith("project") or any(t in s[0] for t in args.only)]
        rounds = [
            [bench_server(name, command, server_env, args, files) for name, command, server_env in servers]
            for _ in range(args.rounds)
        ]
    reports = [median_report(list(measured)) for measured in zip(*rounds, strict=True)]
    if args.rounds > 1:
        sys.stdout.write(f"Medians of {args.rounds} interleaved rounds.\n\n")
    print_table(reports, args.concurrency)
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in reports], default=lambda o: o.__dict__, indent=2))


if __name__ == "__main__":
    main()
