"""What an idle served model costs: CPU time of every process of `bentoml serve`, beside a bare BentoML service.

Run: python -m benchmarks.idle [--seconds 30] [--model-tag TAG] [--also DIR]   (BENTOML_HOME must hold the model)

Each server is started from the source tree, gets one prediction and one web-UI page (so every background part
has started), is left alone for a second, and then measured for `--seconds`: the CPU time (user + system) its
whole process tree used, as a share of one core, per process role. The baseline, measured in the same run, is a
BentoML service with one @api method and as many workers: what BentoML's own processes cost idle. `--also`
serves another checkout of the project (an earlier commit, with this venv) in the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import textwrap
import time
from collections import defaultdict
from pathlib import Path

import httpx
import psutil

from benchmarks.prepare import BIN
from benchmarks.servers import ROOT, is_ui_worker, start_server

BARE_SERVICE = """
import bentoml


@bentoml.service(workers={workers})
class Bare:
    @bentoml.api
    def prediction(self, sepal_length: float = 0.0) -> float:
        return sepal_length
"""


def role(process: psutil.Process) -> str:
    """The part of the server a process is: the parent, the web UI's worker, or an API worker."""
    try:
        command = process.cmdline()
    except psutil.Error:
        return "gone"
    if is_ui_worker(process):
        return "web UI worker"
    if "--service-name" in command or "_bentoml_impl.worker.service" in " ".join(command):
        return "API worker"
    return "bentoml serve (parent)"


def cpu_seconds(root: psutil.Process) -> dict[int, tuple[str, float]]:
    """Each process of the tree: its role and the CPU seconds it has used."""
    found = {}
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
            found[process.pid] = (role(process), times.user + times.system)
        except psutil.Error:
            continue
    return found


def idle_share(pid: int, seconds: float) -> dict[str, float]:
    """Per role, the share of one core the tree used over `seconds` of no traffic."""
    root = psutil.Process(pid)
    before = cpu_seconds(root)
    started = time.monotonic()
    time.sleep(seconds)
    after = cpu_seconds(root)
    elapsed = time.monotonic() - started
    shares: dict[str, float] = defaultdict(float)
    for process_id, (name, used) in after.items():
        shares[name] += (used - before.get(process_id, (name, 0.0))[1]) / elapsed
    return dict(shares)


def measure(
    command: list[str], env: dict[str, str], seconds: float, ui: bool, probe: dict, cwd: Path = ROOT
) -> dict[str, float]:
    """Start the server, wake every part once, let it settle, and measure it idle."""
    with (
        tempfile.TemporaryDirectory() as logs,
        start_server(command, env, Path(logs) / "server.log", probe=probe, cwd=cwd) as server,
    ):
        if ui:
            httpx.get(f"{server.url}/ui/", timeout=30).raise_for_status()
        time.sleep(1.0)
        return idle_share(server.process.pid, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--model-tag", default="iris_clf:latest")
    parser.add_argument("--also", type=Path, help="another checkout of the project to serve and measure")
    args = parser.parse_args()
    workers = os.cpu_count() or 1
    env = {**os.environ, "MODEL_TAG": args.model_tag, "BENTOML_DO_NOT_TRACK": "true"}
    serve = [str(BIN / "bentoml"), "serve", ".", "--host", "127.0.0.1", "--port", "{port}"]
    probe = card_example(args.model_tag)
    with tempfile.TemporaryDirectory() as folder:
        bare = Path(folder) / "bare_service.py"
        bare.write_text(textwrap.dedent(BARE_SERVICE.format(workers=workers)))
        bare_serve = [str(BIN / "bentoml"), "serve", "bare_service:Bare", "--host", "127.0.0.1", "--port", "{port}"]
        rows = [
            (
                "baseline: bare BentoML service",
                measure(bare_serve, {**env, "PYTHONPATH": folder}, args.seconds, False, {}),
            ),
            (f"project: {args.model_tag}", measure(serve, env, args.seconds, True, probe)),
        ]
        if args.also is not None:
            rows.append((f"{args.also}: {args.model_tag}", measure(serve, env, args.seconds, True, probe, args.also)))
    names = sorted({name for _, shares in rows for name in shares} - {"gone"})
    lines = [
        f"Idle CPU over {args.seconds:.0f} s, as % of one core ({workers} API workers each)",
        f"{'server':<40}" + "".join(f"{name:>24}" for name in names) + f"{'total':>10}",
    ]
    for label, shares in rows:
        cells = "".join(f"{100 * shares.get(name, 0.0):>23.2f}%" for name in names)
        lines.append(f"{label:<40}{cells}{100 * sum(shares.values()):>9.2f}%")
    sys.stdout.write("\n".join(lines) + "\n")


def card_example(model_tag: str) -> dict:
    """The model card's first example row (without its label): the probe that says the server is ready."""
    import bentoml

    from modelcard.card import read_card

    card = read_card(Path(bentoml.models.get(model_tag).path))
    return {k: v for k, v in card.examples[0].items() if k != "label"}


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
