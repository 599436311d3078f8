"""Reliability of the served bento: a soak at high concurrency, and a worker killed in the middle of load.

Usage: python -m benchmarks.reliability [--bento TAG] [--duration 60] [--concurrency 64] [--json FILE]
Without --bento it trains and builds into a temporary BENTOML_HOME of its own. Exit status 0 when every
target holds: no failed request in the soak, resident memory at the end within 10% of after warm-up,
the service answering again by itself after its worker is killed, and a SIGTERM under load that drops
no request, logs every answered prediction and exits 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psutil

from benchmarks.load import LoadResult, run_load
from benchmarks.prepare import BIN, prepare
from benchmarks.servers import PROBE, Started, is_ui_worker, start_server, worker_rss_mb
from benchmarks.stop_under_load import StopResult, stop_under_load

logger = logging.getLogger("benchmarks.reliability")
MAX_RSS_GROWTH = 0.10


@dataclass(frozen=True)
class SoakResult:
    """A long run at one concurrency, with memory after warm-up and at the end."""

    concurrency: int
    duration_s: int
    load: LoadResult
    rss_after_warmup_mb: float
    rss_at_end_mb: float
    rss_every_5s_mb: list[float]

    @property
    def rss_growth(self) -> float:
        """Relative growth of resident memory from warm-up to the end."""
        return self.rss_at_end_mb / self.rss_after_warmup_mb - 1

    @property
    def held(self) -> bool:
        """No failed request and memory within the allowed growth."""
        return self.load.errors == 0 and self.load.requests > 0 and self.rss_growth <= MAX_RSS_GROWTH


@dataclass
class KillResult:
    """A worker killed with SIGKILL under load: what failed, and how long until answers came back."""

    killed_pid: int
    new_pids: list[int]
    load: LoadResult
    probe_sent: int
    probe_failed: int
    recovery_s: float | None
    failures: list[str] = field(default_factory=list)

    @property
    def failed_requests(self) -> int:
        """Requests that got no 200, from the load and from the probe."""
        return self.load.errors + self.probe_failed

    @property
    def recovered(self) -> bool:
        """A new worker serves again, without anyone restarting the service."""
        return self.recovery_s is not None and bool(self.new_pids) and self.killed_pid not in self.new_pids


def serving_pids(server: Started) -> list[int]:
    """The API's worker processes under `bentoml serve` (its children that serve the API, not the web UI's)."""
    children = psutil.Process(server.process.pid).children(recursive=True)
    return sorted(p.pid for p in children if not is_ui_worker(p))


def soak(server: Started, body: Path, concurrency: int, duration: int, warmup: int) -> SoakResult:
    """Warm up, note memory, hold `concurrency` clients for `duration` seconds (memory every 5 s), note it again."""
    logger.info("Soak: warm-up %d s, then %d s at %d clients", warmup, duration, concurrency)
    run_load(f"{server.url}/prediction", body, connections=concurrency, duration=warmup)
    before = sum(worker_rss_mb(server.process))
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(5):
            samples.append(round(sum(worker_rss_mb(server.process)), 1))

    sampler = threading.Thread(target=sample)
    sampler.start()
    load = run_load(f"{server.url}/prediction", body, connections=concurrency, duration=duration)
    done.set()
    sampler.join()
    after = sum(worker_rss_mb(server.process))
    return SoakResult(concurrency, duration, load, before, after, samples)


def kill_worker(server: Started, body: Path, concurrency: int, duration: int, kill_after: float) -> KillResult:
    """Drive load, SIGKILL the worker `kill_after` seconds in, and time how long until a request succeeds again."""
    (victim,) = serving_pids(server)[:1]
    results: dict[str, LoadResult] = {}
    load_thread = threading.Thread(
        target=lambda: results.update(load=run_load(f"{server.url}/prediction", body, concurrency, duration))
    )
    probes: list[tuple[float, float, bool]] = []
    stop = threading.Event()

    def probe() -> None:
        # One client sending one request at a time: when did answers stop, and when did they come back.
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    ok = client.post(f"{server.url}/prediction", json=PROBE).status_code == 200
                except httpx.HTTPError:
                    ok = False
                probes.append((sent, time.monotonic(), ok))
                time.sleep(0.01)

    probe_thread = threading.Thread(target=probe)
    load_thread.start()
    probe_thread.start()
    time.sleep(kill_after)
    killed_at = time.monotonic()
    logger.info("Killing worker %d with SIGKILL", victim)
    os.kill(victim, signal.SIGKILL)
    load_thread.join()
    stop.set()
    probe_thread.join()
    answered_again = [done for sent, done, ok in probes if ok and sent >= killed_at]
    return KillResult(
        killed_pid=victim,
        new_pids=serving_pids(server),
        load=results["load"],
        probe_sent=len(probes),
        probe_failed=sum(1 for _, _, ok in probes if not ok),
        recovery_s=(answered_again[0] - killed_at) if answered_again else None,
    )


def report(soaked: SoakResult, killed: KillResult, stopped: StopResult) -> str:
    """The figures as a markdown table, and a verdict per target."""
    load = soaked.load
    return "\n".join(
        [
            "| check | figure | target | held |",
            "|---|---|---|---|",
            f"| soak: {soaked.duration_s} s at {soaked.concurrency} clients | {load.requests:,} requests, "
            f"{load.requests_per_s:,.0f} req/s, p99 {load.p99_ms:.1f} ms | – | – |",
            f"| soak: failed requests | {load.errors} | 0 | {'yes' if load.errors == 0 else 'NO'} |",
            f"| soak: worker RSS after warm-up → end | {soaked.rss_after_warmup_mb:.0f} → "
            f"{soaked.rss_at_end_mb:.0f} MB "
            f"({soaked.rss_growth:+.1%}); every 5 s: {', '.join(f'{r:.0f}' for r in soaked.rss_every_5s_mb)} "
            f"| within ±10% | {'yes' if soaked.held else 'NO'} |",
            f"| worker killed (SIGKILL) under {killed.load.requests:,} requests of load | failed requests: "
            f"{killed.failed_requests} (load {killed.load.errors}, probe {killed.probe_failed} of "
            f"{killed.probe_sent}) | – | – |",
            "| worker killed: back to answering | "
            + (f"{killed.recovery_s:.1f} s" if killed.recovery_s is not None else "never")
            + f" (new worker pid {killed.new_pids}, killed {killed.killed_pid}) | by itself | "
            f"{'yes' if killed.recovered else 'NO'} |",
            f"| SIGTERM under 16 clients | exit {stopped.exit_code} after {stopped.stop_seconds or 0:.2f} s; "
            f"answered {stopped.answered_before_stop:,} before and {stopped.answered_after_stop:,} after the signal, "
            f"{stopped.refused:,} connections refused once it stopped accepting | exit 0 | "
            f"{'yes' if stopped.exit_code == 0 else 'NO'} |",
            f"| SIGTERM: requests sent and never answered | {stopped.dropped} | 0 | "
            f"{'yes' if stopped.dropped == 0 else 'NO'} |",
            f"| SIGTERM: answered predictions missing from the log | {stopped.answered_not_logged} of "
            f"{stopped.answered_before_stop + stopped.answered_after_stop:,} (log rows {stopped.log_rows:,}) | 0 | "
            f"{'yes' if stopped.answered_not_logged == 0 and stopped.logged_not_answered == 0 else 'NO'} |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Serve the bento, soak it, kill its worker, print the table; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reliability", description=__doc__.split("\n")[0])
    parser.add_argument("--bento", help="bento tag already in BENTOML_HOME (default: train and build one)")
    parser.add_argument("--duration", type=int, default=60, help="soak seconds (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=64, help="soak clients (default: %(default)s)")
    # Resident memory climbs for the first ~30 s under load (garbage piles up between the rare full
    # collections that service.py configures for latency), then stays flat; the warm-up covers that climb.
    parser.add_argument("--warmup", type=int, default=45, help="warm-up seconds (default: %(default)s)")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    with tempfile.TemporaryDirectory(prefix="model-reliability-") as tmp:
        files = Path(tmp)
        body = files / "one.json"
        body.write_text(json.dumps(PROBE))
        env = {**os.environ, "BENTOML_DO_NOT_TRACK": "true"}
        bento = args.bento
        if bento is None:
            env["BENTOML_HOME"] = str(files / "bentoml")
            bento = prepare(files / "bentoml").bento_tag
        command = [str(BIN / "bentoml"), "serve", bento, "--host", "127.0.0.1", "--port", "{port}"]
        # A prediction log of its own: 120,000 soak requests would otherwise land in the caller's default folder.
        soak_env = {**env, "SERVING_PREDICTION_LOG": str(files / "prediction-log-soak")}
        with start_server(command, soak_env, files / "serve.log") as server:
            soaked = soak(server, body, args.concurrency, args.duration, args.warmup)
            killed = kill_worker(server, body, concurrency=16, duration=20, kill_after=5)
        log_dir = files / "prediction-log"
        with start_server(command, {**env, "SERVING_PREDICTION_LOG": str(log_dir)}, files / "serve-stop.log") as server:
            stopped = stop_under_load(server, PROBE, log_dir)
    sys.stdout.write(report(soaked, killed, stopped) + "\n")
    if args.json:
        figures = {
            "soak": asdict(soaked),
            "kill": asdict(killed),
            "rss_growth": soaked.rss_growth,
            "sigterm": asdict(stopped),
        }
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if soaked.held and killed.recovered and stopped.held else 1


if __name__ == "__main__":
    sys.exit(main())
