"""This checkout against another one (an earlier commit), the same model, interleaved rounds in one run.

Run: python -m benchmarks.ab --base DIR [--model-tag TAG] [--rounds 6] [--seconds 10] [--clients 32]
(BENTOML_HOME must hold the model; DIR is a checkout of the project, e.g. `git worktree add DIR <commit>`)

Both are served from their source trees with `bentoml serve .` and this venv, and driven with hey at the
same body (the card's first example) in alternating rounds, so the machine's other load falls on both alike.
Each round reports requests per second and the server's own CPU time per request (every process of
`bentoml serve`, user + system): on a shared machine the second is the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import psutil

from benchmarks.idle import card_example, cpu_seconds
from benchmarks.load import run_load
from benchmarks.prepare import BIN
from benchmarks.servers import ROOT, start_server


def one_round(
    cwd: Path, env: dict[str, str], body: Path, probe: dict, clients: int, seconds: int
) -> tuple[float, float]:
    """(requests per second, server CPU µs per request) for one served checkout."""
    serve = [str(BIN / "bentoml"), "serve", ".", "--host", "127.0.0.1", "--port", "{port}"]
    with (
        tempfile.TemporaryDirectory() as logs,
        start_server(serve, env, Path(logs) / "server.log", probe=probe, cwd=cwd) as server,
    ):
        url = f"{server.url}/prediction"
        run_load(url, body, clients, 2)  # warm-up
        root = psutil.Process(server.process.pid)
        before = sum(used for _, used in cpu_seconds(root).values())
        result = run_load(url, body, clients, seconds)
        used = sum(used for _, used in cpu_seconds(root).values()) - before
        return result.requests_per_s, 1e6 * used / max(result.requests, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the other checkout, served as the baseline")
    parser.add_argument("--model-tag", default="iris_clf:latest")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    env = {**os.environ, "MODEL_TAG": args.model_tag, "BENTOML_DO_NOT_TRACK": "true"}
    probe = card_example(args.model_tag)
    sides = {"base": args.base.resolve(), "this": ROOT}
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    with tempfile.TemporaryDirectory() as folder:
        body = Path(folder) / "body.json"
        body.write_text(json.dumps(probe))
        for index in range(args.rounds):
            order = list(sides.items()) if index % 2 == 0 else list(reversed(sides.items()))
            for name, cwd in order:
                figures[name].append(one_round(cwd, env, body, probe, args.clients, args.seconds))
    lines = [
        f"{args.model_tag}, {args.clients} clients, {args.rounds} interleaved rounds of {args.seconds} s (medians)",
        f"{'checkout':<50}{'req/s':>10}{'CPU µs/request':>18}   rounds (req/s)",
    ]
    for name, cwd in sides.items():
        rates = [rate for rate, _ in figures[name]]
        cpu = [micros for _, micros in figures[name]]
        rounds = ", ".join(f"{rate:,.0f}" for rate in rates)
        lines.append(
            f"{name + ': ' + str(cwd):<50}{statistics.median(rates):>10,.0f}{statistics.median(cpu):>18,.0f}   {rounds}"
        )
    base_cpu = statistics.median(c for _, c in figures["base"])
    this_cpu = statistics.median(c for _, c in figures["this"])
    lines.append(f"this ÷ base: CPU per request {this_cpu / base_cpu:.2f}")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
