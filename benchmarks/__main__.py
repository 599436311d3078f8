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
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.load import LoadResult, run_load
from benchmarks.prepare import ROOT as PROJECT
from benchmarks.prepare import Prepared, prepare
from benchmarks.servers import Started, start_server, worker_rss_mb

ROOT = Path(__file__).resolve().parent.parent
CONTAINERS_CONF = ROOT / "deploy" / "podman" / "containers.conf"
PYTHON = sys.executable
BATCH_ROWS = 1000
# The bento's default: one API worker per core (SERVING_WORKERS=cpu_count); the floor gets as many.
CORES = os.cpu_count() or 1
# The examples benchmarked; iris gets every serving variant, the others the defaults.
MODELS = {
    "iris": PROJECT / "notebooks" / "iris.ipynb",
    "churn": PROJECT / "notebooks" / "churn.ipynb",
    "reviews": PROJECT / "notebooks" / "product_reviews.ipynb",
    "loan": PROJECT / "notebooks" / "loan_default" / "loan_default.ipynb",
}

logger = logging.getLogger("benchmarks")


@dataclass
class ServerReport:
    """Everything measured for one server."""

    name: str
    loads: dict[int, LoadResult]
    ready_s: float
    rss_mb: list[float]
    batch_rows_per_s: float | None = None
    ui_ready_s: float | None = None
    ui_rss_mb: list[float] | None = None


def measure(server: Started, concurrencies: list[int], duration: int, body: Path) -> dict[int, LoadResult]:
    """Warm up, then drive /prediction at each concurrency."""
    run_load(f"{server.url}/prediction", body, connections=32, duration=2)
    return {c: run_load(f"{server.url}/prediction", body, connections=c, duration=duration) for c in concurrencies}


def bench_server(
    name: str, command: list[str], env: dict[str, str], args: argparse.Namespace, files: Path
) -> ServerReport:
    """Start one server, measure it, stop it; `files` holds the model's one.json and batch.json bodies."""
    logger.info("Measuring %s", name)
    project = name.startswith("project")
    with start_server(
        command, env, files / f"{name}.log", probe=json.loads((files / "one.json").read_text()), ui=project
    ) as server:
        loads = measure(server, args.concurrency, args.duration, files / "one.json")
        report = ServerReport(name, loads, server.seconds_to_ready, worker_rss_mb(server.process))
        if project:
            report.ui_ready_s = server.seconds_to_ui
            report.ui_rss_mb = worker_rss_mb(server.process, ui=True)
            # Two connections a worker: the kernel hands each connection to one worker, and with only two both
            # landed on the same worker in about half the runs (half the rows/s, the other worker idle).
            batch = run_load(
                f"{server.url}/predict_batch", files / "batch.json", connections=2 * CORES, duration=args.duration
            )
            report.batch_rows_per_s = batch.requests_per_s * BATCH_ROWS if batch.errors == 0 else 0.0
    return report


def servers_for(model: str, prepared: Prepared, env: dict[str, str]) -> list[tuple[str, list[str], dict[str, str]]]:
    """The baseline, the bento's rows and the floor for one model, in table order."""
    python = prepared.python
    bentoml_serve = [python, "-m", "bentoml", "serve", prepared.bento_tag, "--host", "127.0.0.1", "--port", "{port}"]
    variants = [("project: bento, defaults (prediction log on)", bentoml_serve, env)]
    if model == "iris":
        variants += [
            ("project: bento, SERVING_PREDICTION_LOG=off", bentoml_serve, {**env, "SERVING_PREDICTION_LOG": "off"}),
            ("project: bento, SERVING_WORKERS=1", bentoml_serve, {**env, "SERVING_WORKERS": "1"}),
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
            [python, "-m", "gunicorn", "-w", "2", "-b", "127.0.0.1:{port}", "benchmarks.baseline_flask:app"],
            {**env, "MODEL_PATH": str(prepared.model_file)},
        ),
        *variants,
        (
            f"floor: bare starlette + uvicorn ({CORES} workers, as many as the bento's API)",
            [python, "-m", "uvicorn", "benchmarks.floor_starlette:app", "--port", "{port}", "--log-level", "warning"]
            + ["--workers", str(CORES)],
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
        _median_or_none([m.ui_ready_s for m in measured]),
        measured[-1].ui_rss_mb,
    )


def _median_or_none(values: list[float | None]) -> float | None:
    """The median of the values measured, or None if none was."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


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
        "| server | serve-to-ready s | serve-to-/ui/ s | RSS per API worker MB | UI worker MB "
        "| /predict_batch rows/s (1,000-row batches) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for report in reports:
        rss = ", ".join(f"{r:.0f}" for r in report.rss_mb)
        ui_rss = ", ".join(f"{r:.0f}" for r in report.ui_rss_mb) if report.ui_rss_mb else "–"
        ui_ready = f"{report.ui_ready_s:.1f}" if report.ui_ready_s is not None else "–"
        batch = f"{report.batch_rows_per_s:,.0f}" if report.batch_rows_per_s is not None else "–"
        lines.append(f"| {report.name} | {report.ready_s:.1f} | {ui_ready} | {rss} | {ui_rss} | {batch} |")
    sys.stdout.write("\n".join(lines) + "\n")


def image_size_mib(model: str) -> float | None:
    """Size of the newest image scripts/build.sh made for this example (<notebook>-clf-service), if any."""
    image = f"{MODELS[model].stem.replace('_', '-')}-clf-service"
    for engine in ("podman", "docker"):
        if shutil.which(engine) is None:
            continue
        env = {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(CONTAINERS_CONF))}
        listed = subprocess.run(
            [engine, "images", "--format", "{{.CreatedAt}}\t{{.ID}}", image],
            capture_output=True,
            text=True,
            env=env,
        )
        rows = sorted(line.split("\t") for line in listed.stdout.splitlines() if "\t" in line)
        if listed.returncode == 0 and rows:
            size = subprocess.run(
                [engine, "image", "inspect", rows[-1][1], "--format", "{{.Size}}"],
                capture_output=True,
                text=True,
                env=env,
            )
            return int(size.stdout.strip()) / 2**20 if size.returncode == 0 else None
    return None


def print_goals(model: str, reports: list[ServerReport], concurrency: int) -> None:
    """Issue #13's table for the bento's defaults: now, and the goal."""
    defaults = next(r for r in reports if r.name.startswith("project: bento, defaults"))
    floor = reports[-1]
    ratio = defaults.loads[concurrency].requests_per_s / floor.loads[concurrency].requests_per_s
    image = image_size_mib(model)
    ui_ready = f"{defaults.ui_ready_s:.1f} s" if defaults.ui_ready_s is not None else "–"
    rows = [
        (
            f"/prediction ÷ floor, {concurrency} clients, {CORES} workers each",
            f"{defaults.loads[concurrency].requests_per_s:,.0f} ÷ {floor.loads[concurrency].requests_per_s:,.0f}"
            f" = {ratio:.2f}",
            "≥ 0.5",
        ),
        ("workers by default", f"{len(defaults.rss_mb)} API + 1 web UI", "one per core, UI working"),
        ("serve → /readyz and a prediction; → /ui/", f"{defaults.ready_s:.1f} s; {ui_ready}", "≤ 5 s; ≤ 8 s"),
        (
            "RSS per API worker under load (web UI worker)",
            f"{max(defaults.rss_mb):.0f} MB ({', '.join(f'{r:.0f}' for r in defaults.ui_rss_mb or [])} MB)",
            "≤ 250 MB",
        ),
        (
            "image (newest from scripts/build.sh)",
            f"{image:,.0f} MiB" if image is not None else "not built",
            "≤ 700 MiB",
        ),
    ]
    lines = ["", f"Goals ({model}, defaults):", "", "| | now | goal |", "|---|---|---|"]
    lines += [f"| {name} | {now} | {goal} |" for name, now, goal in rows]
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
            if 32 in args.concurrency:
                print_goals(model, reports, 32)
            figures[model] = [r.__dict__ for r in reports]
    if args.json:
        args.json.write_text(json.dumps(figures, default=lambda o: o.__dict__, indent=2))


if __name__ == "__main__":
    main()
