"""The prediction log at scale: bytes per prediction, the drift check's time and memory, the writer's cost.

Usage: python -m benchmarks.predlog_scale [--rows 1000000 10000000] [--model-tag TAG] [--keep DIR]

Trains notebooks/churn.ipynb into a temporary BENTOML_HOME (or uses --model-tag from $BENTOML_HOME), makes
single-row requests by drawing the card's reference rows with noise on the numbers, predicts them with the
real model and writes them through the real PredictionLog, twice: as JSON lines (today's default) and with
each finished segment compacted into Parquet; the writer thread's CPU time per request is measured for both.
The largest size written so is --write-rows; a larger size is made of copies of the Parquet log shifted in
time (writing 10 M JSON lines would take the writer most of an hour on this machine's cores). Each drift check
runs in a process of its own over the whole log: the check before this change (its drift.py from git, over
JSON lines), and today's over JSON lines and over Parquet, with its wall time and peak RSS.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.prepare import ROOT
from modelcard.card import FeatureKind, ModelCard
from monitoring.context import new_request_id
from monitoring.predlog import PredictionLog
from runtime.predictor import Predictor
from runtime.table import TableBuilder

logger = logging.getLogger("benchmarks.predlog_scale")

PYTHON = sys.executable
# The drift check as it was before the log became columnar: read_records into a list of dicts.
BEFORE = "6e2adf7"
START = datetime(2026, 11, 1, tzinfo=UTC)
SECONDS_PER_REQUEST = 0.05  # 20 requests a second: 1 M requests span ~14 hours
CHUNK = 1000  # requests predicted together, as the micro-batcher does at load


@dataclass(frozen=True)
class Written:
    """A log written through PredictionLog, and what its writer thread cost."""

    directory: Path
    requests: int
    writer_cpu_s: float

    @property
    def bytes(self) -> int:
        """The size of its files."""
        return sum(p.stat().st_size for p in self.directory.iterdir() if p.is_file())


@dataclass(frozen=True)
class Checked:
    """One drift check run in a process of its own."""

    wall_s: float
    peak_rss_mb: float
    status: int


def requests(card: ModelCard, count: int, seed: int = 0) -> list[list[list[object]]]:
    """`count` single-row requests in chunks: the card's reference rows, numbers moved by 2 % noise."""
    rng = np.random.default_rng(seed)
    reference = card.reference
    chunks = []
    for start in range(0, count, CHUNK):
        picks = rng.integers(0, len(reference), min(CHUNK, count - start))
        rows = []
        for pick in picks.tolist():
            row = reference[pick]
            values: list[object] = []
            for spec in card.features:
                value = row.get(spec.name)
                if spec.kind is FeatureKind.NUMBER and value is not None:
                    value = round(float(value) * (1 + rng.normal(0, 0.02)), 2)
                values.append(value)
            rows.append(values)
        chunks.append(rows)
    return chunks


def write_log(
    directory: Path, tag: str, predictor: Predictor, chunks: list[list[list[object]]], compact: bool
) -> Written:
    """Write the requests through the real PredictionLog; the writer's CPU is the process's less this thread's."""
    stamps = iter(range(10**12))
    log = PredictionLog(
        directory,
        tag,
        predictor.card.features,
        compact=compact,
        clock=lambda: START.timestamp() + next(stamps) * SECONDS_PER_REQUEST * CHUNK,
    )
    builder = TableBuilder(predictor.card.features)
    process, own = time.process_time(), time.thread_time()
    count = 0
    for rows in chunks:
        table = builder.from_rows(rows)
        predictions = predictor.predict(table)
        while log._queue.qsize() > log.max_pending // 2:  # never drop: the benchmark wants every row written
            time.sleep(0.005)
        ids = [new_request_id() for _ in rows]
        log.record_rows(ids, "api", table, predictions, [0.002] * len(rows))
        count += len(rows)
    log.close()
    writer = (time.process_time() - process) - (time.thread_time() - own)
    if log.dropped:
        raise RuntimeError(f"the log dropped {log.dropped} rows")
    return Written(directory, count, writer)


def copies(source: Path, target: Path, times: int) -> int:
    """Make a Parquet log of `times` copies of `source`'s, each shifted past the one before; return its rows."""
    target.mkdir(parents=True, exist_ok=True)
    files = sorted(source.glob("predictions-*.parquet"))
    tables = [pq.read_table(path) for path in files]
    first = min(pc.min(t.column("time")).as_py() for t in tables)
    last = max(pc.max(t.column("time")).as_py() for t in tables)
    span = last - first + timedelta(seconds=1)
    rows = 0
    for copy in range(times):
        for number, table in enumerate(tables):
            shift = pa.scalar(int(span.total_seconds() * 1e6) * copy, pa.duration("us"))
            shifted = table.set_column(0, "time", pc.add(table.column("time"), shift))
            ids = pc.binary_join_element_wise(pa.scalar(f"c{copy}-"), shifted.column("request_id"), "")
            shifted = shifted.set_column(1, "request_id", ids)
            day = (first + span * copy).strftime("%Y-%m-%d")
            name = f"predictions-{day}-bench{copy}-{number:04d}.parquet"
            pq.write_table(shifted, target / name, compression="zstd", row_group_size=65_536)
            rows += shifted.num_rows
    return rows


def say(line: str) -> None:
    """One line of the benchmark's output, at once (the checks take a while)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# Run by a small interpreter of its own: a child forked from this large process would count the pages it
# shared with it before exec in its peak RSS.
_MEASURE = """
import os, subprocess, sys, time
started = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
error = child.stderr.read().decode()
_, status, usage = os.wait4(child.pid, 0)
print(time.perf_counter() - started, os.waitstatus_to_exitcode(status), usage.ru_maxrss)
sys.stderr.write(error[-2000:])
"""


def run_check(command: list[str], env: dict[str, str]) -> Checked:
    """Run one check in a child process: its wall time, peak RSS (wait4's, this child's alone) and status."""
    done = subprocess.run([PYTHON, "-c", _MEASURE, *command], env=env, capture_output=True, text=True, check=True)
    wall, code, peak_kb = done.stdout.split()
    if int(code) not in (0, 1):
        raise RuntimeError(f"{' '.join(command)} exited {code}: {done.stderr}")
    return Checked(float(wall), int(peak_kb) / 1024, int(code))


def check_commands(log_dir: Path, tag: str, before: Path) -> dict[str, list[str]]:
    """The drift check before this change and today's, over one log folder, its whole time range."""
    window = ["--start", (START - timedelta(days=1)).isoformat(), "--end", (START + timedelta(days=400)).isoformat()]
    options = ["--log-dir", str(log_dir), "--model", tag, "--report", "", *window]
    return {"before": [PYTHON, str(before), *options], "now": [PYTHON, "-m", "monitoring.drift", *options]}


def the_check_before(directory: Path) -> Path:
    """The drift check's module as it was before this change, from git, runnable beside today's modules."""
    source = subprocess.run(
        ["git", "show", f"{BEFORE}:monitoring/drift.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    path = directory / "drift_before.py"
    path.write_text(source)
    return path


def train_churn(home: Path) -> str:
    """Train notebooks/churn.ipynb into `home`; return the model's tag."""
    env = {**os.environ, "BENTOML_HOME": str(home)}
    train = [PYTHON, "-m", "train", "--notebook", str(ROOT / "notebooks" / "churn.ipynb")]
    out = subprocess.run(train, env=env, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return out.strip().splitlines()[-1]


def main(argv: list[str] | None = None) -> int:
    """Write, measure and print the figures side by side."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="python -m benchmarks.predlog_scale", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000], help="log sizes")
    parser.add_argument("--write-rows", type=int, default=1_000_000, help="largest size written request by request")
    parser.add_argument("--model-tag", help="a churn model in $BENTOML_HOME (default: train one)")
    parser.add_argument("--keep", type=Path, help="write the logs here and keep them (default: a temporary folder)")
    parser.add_argument("--skip-before", action="store_true", help="do not run the check before this change")
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="predlog-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return measure(args, work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def measure(args: argparse.Namespace, work: Path) -> int:
    """The benchmark itself, in `work`."""
    import bentoml

    from runtime.predictor import load_predictor

    home = Path(os.environ["BENTOML_HOME"]) if args.model_tag else work / "home"
    if args.model_tag is None:
        os.environ["BENTOML_HOME"] = str(home)
    tag = args.model_tag or train_churn(home)
    predictor = load_predictor(bentoml.models.get(tag), "auto")
    env = {**os.environ, "BENTOML_HOME": str(home), "PYTHONPATH": str(ROOT)}
    before = the_check_before(work)
    written = min(max(r for r in args.rows if r <= args.write_rows), args.write_rows)
    chunks = requests(predictor.card, written)
    json_log = write_log(work / "json", tag, predictor, chunks, compact=False)
    parquet_log = write_log(work / "parquet", tag, predictor, chunks, compact=True)
    del chunks
    features = len(predictor.card.features)
    say(f"Churn model {tag}: {features} features, {len(predictor.card.class_names)} classes")
    plain, compacting = (log.writer_cpu_s / written * 1e6 for log in (json_log, parquet_log))
    say(
        f"Writer thread CPU per logged request, {written:,} requests: JSON lines {plain:.1f} µs, "
        f"JSON lines + compaction into Parquet {compacting:.1f} µs"
    )
    say("| predictions | log | bytes/prediction | check | wall s | predictions/s | peak RSS MB |")
    say("|---:|---|---:|---|---:|---:|---:|")
    for rows in sorted(args.rows):
        logs = {"JSON lines": json_log.directory, "Parquet": parquet_log.directory} if rows == written else {}
        if rows != written:
            logs = {"Parquet": work / f"parquet-{rows}"}
            made = copies(parquet_log.directory, logs["Parquet"], rows // written)
            assert made == rows // written * written
        for kind, directory in logs.items():
            size = sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
            commands = check_commands(directory, tag, before)
            if kind == "Parquet" or args.skip_before:
                commands.pop("before")
            for name, command in commands.items():
                result = run_check(command, env)
                say(
                    f"| {rows:,} | {kind} | {size / rows:.0f} | {name} | {result.wall_s:.1f} | "
                    f"{rows / result.wall_s:,.0f} | {result.peak_rss_mb:.0f} |"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
