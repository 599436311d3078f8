"""deploy/kubernetes's Deployment run for real with `podman kube play`, on the session's image.

What podman 4.3 (Debian 12's) does with the manifest, and what the test therefore renders differently from
`kubectl apply -k` (only in the test's copy; deploy/kubernetes stays as a cluster needs it):

- `replicas` pods would all bind the same hostPort: each replica is played as its own one-pod Deployment;
- a cluster publishes pods through the Service; podman only through a `hostPort`, added here;
- probes: podman turns the liveness and startup probes into its healthcheck, with an httpGet probe run as `curl`
  (not in the image) on port 0 when the port is named, and every probe run as `/bin/sh -c` over its words
  joined; so the probes become exec probes running the image's Python, quoted for that shell. Podman has no
  readiness: the test runs the readiness probe in the container itself, as the kubelet would;
- without systemd nothing schedules podman's healthchecks: the test runs them (`podman healthcheck run`);
- an emptyDir is a podman volume named after it and removed with the pod: named per pod here (podman honours
  the read-only root filesystem, so the pod writes only to these volumes, as in a cluster);
- `preStop`, `terminationGracePeriodSeconds` (podman stops with SIGTERM, then SIGKILL after 10 s), the Service,
  the HorizontalPodAutoscaler and a Deployment's rolling update exist only in a cluster.

The rolling change of the model is a Deployment's default rollout done by hand: two pods behind nginx (standing
in for the Service), a pod of an image carrying the next model version started and probed before an old one
leaves nginx's list, waits its preStop pause and gets SIGTERM, while a client keeps calling /prediction.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from gradio_client import Client, handle_file

from benchmarks.servers import free_port
from tests.conftest import ROOT
from tests.e2e.proxy import NGINX_HEAD

pytestmark = pytest.mark.slow

MANIFESTS = ROOT / "deploy" / "kubernetes"
PODMAN_ENV = {**os.environ, "CONTAINERS_CONF": str(ROOT / "deploy" / "podman" / "containers.conf")}
# What a pod's log must never say: a write the read-only root filesystem refused (Python's OSError texts, and ONNX
# Runtime's warning when it cannot keep its telemetry id).
WRITE_ERRORS = ("read-only file system", "permission denied", "errno 30", "errno 13", "failed to persist")
# An HTTP GET in the image's own Python: fails (exit 1) on a refused connection or a status other than 2xx.
PROBE_CODE = "import sys, urllib.request as r; r.urlopen(sys.argv[1], timeout=float(sys.argv[2]))"
PODS = ("model-service-a", "model-service-b")

NGINX_CONF = (
    NGINX_HEAD
    + """\
    upstream pods {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://pods;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream off;  # a Service does not retry: a call the pod drops is a failure here
        }}
    }}
}}
"""
)


def podman(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """podman with the project's containers.conf."""
    result = subprocess.run(["podman", *args], env=PODMAN_ENV, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"podman {' '.join(args)} failed: {result.stderr[-2000:]}")
    return result


def rendered_deployment(image: str) -> dict[str, Any]:
    """The Deployment as `kustomize edit set image model-service=<image>` + `kubectl apply -k` would send it."""
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    deployment = yaml.safe_load((MANIFESTS / "deployment.yaml").read_text())
    names = {rule["name"] for rule in kustomization["images"]}
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        if container["image"].rsplit(":", 1)[0] in names:
            container["image"] = image
    return deployment


def exec_probe(probe: dict[str, Any], ports: dict[str, int]) -> dict[str, Any]:
    """An httpGet probe as an exec probe with the same path, port, period and thresholds (see the module doc)."""
    get = probe.pop("httpGet")
    port = ports.get(get["port"], get["port"])
    url = f"http://127.0.0.1:{port}{get['path']}"
    words = ["python", "-c", PROBE_CODE, url, str(probe.get("timeoutSeconds", 1))]
    return probe | {"exec": {"command": [shlex.quote(word) for word in words]}}


def for_podman(deployment: dict[str, Any], name: str, host_port: int) -> dict[str, Any]:
    """One replica of the Deployment as podman 4.3 can play it, published on `host_port` (see the module doc)."""
    played = copy.deepcopy(deployment)
    played["metadata"]["name"] = name
    played["spec"]["replicas"] = 1
    pod = played["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    container["ports"][0]["hostPort"] = host_port
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        container[kind] = exec_probe(container[kind], ports)
    for volume in pod["volumes"]:
        for mount in container["volumeMounts"]:
            if mount["name"] == volume["name"]:
                mount["name"] = f"{name}-{volume['name']}"
        volume["name"] = f"{name}-{volume['name']}"
    return played


def distinct_free_ports(count: int) -> list[int]:
    """`count` different free ports: free_port() twice in a row often returns the same one (the kernel reuses
    it once closed), and two pods given one host port left the second stopped before it was ever live."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def container_name(pod: str) -> str:
    """The container podman names for the Deployment's one container in the pod it plays for `pod`."""
    return f"{pod}-pod-0-model-service"


def play(deployment: dict[str, Any], folder: Path) -> float:
    """`podman kube play` the manifest, then run its probes until it is live and ready: the seconds that took."""
    name = deployment["metadata"]["name"]
    manifest = folder / f"{name}.yaml"
    manifest.write_text(yaml.safe_dump(deployment, sort_keys=False))
    started = time.monotonic()
    podman("kube", "play", str(manifest))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    startup = container["startupProbe"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    # The startup probe first, as the kubelet runs it (period and budget), in the container itself: podman
    # counts every failed `healthcheck run` against the liveness probe and stops the container after three,
    # which a pod still starting on a busy machine reached (a kubelet holds liveness back until startup passes).
    starting = " ".join(startup["exec"]["command"])
    while podman("exec", container_name(name), "/bin/sh", "-c", starting, check=False).returncode != 0:
        assert time.monotonic() - started < budget, f"{name}: not live within the startup probe's {budget} s"
        time.sleep(startup["periodSeconds"])
    # Then podman's own healthcheck (the liveness probe) must report it healthy.
    assert podman("healthcheck", "run", container_name(name), check=False).returncode == 0, f"{name}: not healthy"
    readiness = " ".join(container["readinessProbe"]["exec"]["command"])
    while podman("exec", container_name(name), "/bin/sh", "-c", readiness, check=False).returncode != 0:
        assert time.monotonic() - started < budget, f"{name}: not ready within {budget} s"
        time.sleep(1)
    return time.monotonic() - started


def remove(pod: str, artifacts: Path) -> None:
    """Keep the pod's log in test-artifacts/, then remove the pod (and its emptyDir volume)."""
    logs = podman("logs", container_name(pod), check=False)
    (artifacts / f"kube-play-{pod}.log").write_text(logs.stdout + logs.stderr)
    podman("pod", "rm", "-f", f"{pod}-pod-0", check=False)


@pytest.fixture(scope="module")
def kube_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("podman") is None:
        pytest.fail("podman is missing: `make test` installs it (scripts/system-deps.sh)")
    return tmp_path_factory.mktemp("kube-play")


@pytest.fixture(scope="module")
def played(iris_image: dict[str, str], kube_folder: Path, artifacts: Path) -> Iterator[dict[str, Any]]:
    """Both replicas played from the session's image: their manifests, host ports and seconds to ready."""
    image = f"localhost/{iris_image['tag']}"
    deployment = rendered_deployment(image)
    pods = {name: {"port": port} for name, port in zip(PODS, distinct_free_ports(len(PODS)), strict=True)}
    try:
        for name, pod in pods.items():
            pod["manifest"] = for_podman(deployment, name, pod["port"])
            pod["ready_s"] = play(pod["manifest"], kube_folder)
        measured = {"build_sh_s": float(iris_image["seconds"])} | {
            f"{n} ready_s": p["ready_s"] for n, p in pods.items()
        }
        (artifacts / "kube-play.json").write_text(json.dumps(measured, indent=2))
        yield {"image": image, "deployment": deployment, "pods": pods}
    finally:
        for name in list(pods):
            remove(name, artifacts)


def test_the_rendered_deployment_is_what_kustomize_makes(played: dict[str, Any], tmp_path: Path) -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: nothing to compare the test's rendering with")
    copied = shutil.copytree(MANIFESTS, tmp_path / "kubernetes")
    kustomization = yaml.safe_load((copied / "kustomization.yaml").read_text())
    name, tag = played["image"].rsplit(":", 1)
    kustomization["images"] = [{"name": "model-service", "newName": name, "newTag": tag}]
    (copied / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    built = subprocess.run(["kubectl", "kustomize", str(copied)], capture_output=True, text=True, check=True)
    (deployment,) = [d for d in yaml.safe_load_all(built.stdout) if d["kind"] == "Deployment"]
    assert deployment == played["deployment"]


def test_pods_become_healthy_through_their_own_probes(played: dict[str, Any]) -> None:
    for name, pod in played["pods"].items():
        health = podman("inspect", container_name(name), "--format", "{{.State.Health.Status}}").stdout.strip()
        assert health == "healthy", name
        assert "(healthy)" in podman("ps", "--filter", f"name={container_name(name)}", "--format", "{{.Status}}").stdout
        startup = pod["manifest"]["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
        assert pod["ready_s"] < startup["periodSeconds"] * startup["failureThreshold"]


def test_prediction_answers_through_the_published_ports(played: dict[str, Any], iris_image: dict[str, str]) -> None:
    for pod in played["pods"].values():
        url = f"http://127.0.0.1:{pod['port']}"
        card = httpx.get(f"{url}/model").json()["card"]
        row = {k: v for k, v in card["examples"][0].items() if k != "label"}
        answer = httpx.post(f"{url}/prediction", json=row)
        assert answer.status_code == 200 and answer.json()["class"] in card["class_names"]


def test_prediction_log_lands_on_the_pods_volume(played: dict[str, Any]) -> None:
    name, pod = next(iter(played["pods"].items()))
    url = f"http://127.0.0.1:{pod['port']}"
    row = {k: v for k, v in httpx.get(f"{url}/model").json()["card"]["examples"][0].items() if k != "label"}
    request_id = f"kube-play-{os.getpid()}"
    assert httpx.post(f"{url}/prediction", json=row, headers={"x-request-id": request_id}).status_code == 200
    host_side = volume_on_host(pod["manifest"], log_folder(pod))
    deadline = time.monotonic() + 10  # the log is written off the request path, every fraction of a second
    while not any(request_id in path.read_text() for path in host_side.glob("predictions-*.jsonl")):
        assert time.monotonic() < deadline, f"no prediction log line with {request_id} in {host_side}"
        time.sleep(0.2)
    (written,) = [p for p in host_side.glob("predictions-*.jsonl") if request_id in p.read_text()]
    assert written.stat().st_uid == 1034  # written by the pod's non-root user
    line = next(json.loads(x) for x in written.read_text().splitlines() if request_id in x)
    assert line["source"] == "api" and line["rows"] == 1


def test_pods_run_non_root_with_the_resource_limits(played: dict[str, Any]) -> None:
    container = played["deployment"]["spec"]["template"]["spec"]["containers"][0]
    for name in played["pods"]:
        assert podman("exec", container_name(name), "id", "-u").stdout.strip() == "1034"
        inspected = json.loads(podman("inspect", container_name(name)).stdout)[0]
        host = inspected["HostConfig"]
        assert host["Memory"] == parse_quantity(container["resources"]["limits"]["memory"])
        assert host["MemoryReservation"] == parse_quantity(container["resources"]["requests"]["memory"])
        assert host["CpuQuota"] / host["CpuPeriod"] == float(container["resources"]["limits"]["cpu"])
        assert "no-new-privileges" in host["SecurityOpt"]  # allowPrivilegeEscalation: false
        assert inspected["EffectiveCaps"] in (None, [])  # capabilities: drop ALL


def log_folder(pod: dict[str, Any]) -> str:
    """The prediction log's folder in the pod (SERVING_PREDICTION_LOG of the manifest)."""
    container = pod["manifest"]["spec"]["template"]["spec"]["containers"][0]
    return next(e["value"] for e in container["env"] if e["name"] == "SERVING_PREDICTION_LOG")


def volume_on_host(manifest: dict[str, Any], mount_path: str) -> Path:
    """Where the podman volume the pod mounts at `mount_path` (an emptyDir of the manifest) is on the host."""
    (container,) = manifest["spec"]["template"]["spec"]["containers"]
    (name,) = [m["name"] for m in container["volumeMounts"] if m["mountPath"] == mount_path]
    return Path(podman("volume", "inspect", name, "--format", "{{.Mountpoint}}").stdout.strip())


def test_pods_write_only_to_their_volumes_on_a_read_only_root(played: dict[str, Any], tmp_path: Path) -> None:
    """readOnlyRootFilesystem as podman plays it: the image's files cannot be changed, the manifest's emptyDirs
    can, and the API, the web UI (a prediction and a CSV upload, which Gradio keeps under /tmp) and /metrics all
    answer with no write refused in the log."""
    container = played["deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = [m["mountPath"] for m in container["volumeMounts"]]
    for name, pod in played["pods"].items():
        assert json.loads(podman("inspect", container_name(name)).stdout)[0]["HostConfig"]["ReadonlyRootfs"] is True
        for path in ("/", "/home/bentoml", "/home/bentoml/bento/src", "/app/.venv"):
            touched = podman("exec", container_name(name), "touch", f"{path.rstrip('/')}/written", check=False)
            assert touched.returncode != 0 and "Read-only file system" in touched.stderr, (name, path)
        for path in mounts:
            podman("exec", container_name(name), "sh", "-c", f"touch {path}/written && rm {path}/written")
        url = f"http://127.0.0.1:{pod['port']}"
        card = httpx.get(f"{url}/model").json()["card"]
        row = {k: v for k, v in card["examples"][0].items() if k != "label"}
        assert httpx.post(f"{url}/prediction", json=row).json()["class"] in card["class_names"]
        assert httpx.get(f"{url}/ui/", timeout=30).status_code == 200
        client = Client(f"{url}/ui/", verbose=False)
        bars, _verdict, _picture = client.predict(*row.values(), api_name="/predict")
        assert bars["label"] in card["class_names"]
        upload = tmp_path / f"{name}.csv"
        with upload.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(row))
            writer.writeheader()
            writer.writerows([row] * 3)
        status, table, _download = client.predict(handle_file(str(upload)), api_name="/predict_csv")
        assert len(table.get("value", table)["data"]) == 3, status  # the table, or an update that shows it
        assert any(volume_on_host(pod["manifest"], "/tmp").iterdir())  # the UI's files are on the emptyDir
        metrics = httpx.get(f"{url}/metrics")
        assert metrics.status_code == 200 and 'source="ui"' in metrics.text
        logs = podman("logs", container_name(name))
        lines = (logs.stdout + logs.stderr).splitlines()
        refused = [line for line in lines if any(error in line.lower() for error in WRITE_ERRORS)]
        assert refused == [], refused[:3]


def parse_quantity(quantity: str) -> int:
    """A Kubernetes memory quantity in bytes (the Mi and Gi this manifest uses)."""
    units = {"Mi": 2**20, "Gi": 2**30}
    return int(quantity[:-2]) * units[quantity[-2:]]


@pytest.fixture(scope="module")
def next_image(
    played: dict[str, Any], kube_folder: Path, bentoml_home: Path, artifacts: Path
) -> Iterator[dict[str, str]]:
    """The next model: the same notebook trained again (a new version), and an image that carries it.

    In production build.sh makes that image; here it is the session's image plus the new model version, and
    MODEL_TAG naming it, which builds in seconds where build.sh takes minutes.
    """
    from train.pipeline import TrainOptions, train

    tag = str(train(TrainOptions(output_dir=kube_folder / "train")))
    name, version = tag.split(":")
    context = kube_folder / "next-image"
    shutil.copytree(bentoml_home / "models" / name / version, context / "model")
    (context / "Containerfile").write_text(
        f"FROM {played['image']}\n"
        f"COPY --chown=1034:1034 model /home/bentoml/bento/models/{name}/{version}\n"
        f"ENV MODEL_TAG={tag}\n"
    )
    image = f"{played['image']}-next"
    podman("build", "--pull=never", "-t", image, str(context))
    yield {"image": image, "model": tag}
    for name in [n for n in played["pods"] if n.endswith("-next")]:
        remove(name, artifacts)
        del played["pods"][name]
    podman("rmi", image, check=False)


class Service:
    """nginx standing in for the Service: it spreads calls over the pods it lists, as the endpoints list them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def route_to(self, ports: list[int]) -> None:
        """Make the pods on `ports` the endpoints (as the endpoints controller does for ready pods)."""
        servers = "\n".join(f"        server 127.0.0.1:{port};" for port in ports)
        (self.folder / "nginx.conf").write_text(NGINX_CONF.format(tmp=self.folder, port=self.port, servers=servers))
        nginx = [shutil.which("nginx") or "/usr/sbin/nginx", "-p", str(self.folder), "-c", "nginx.conf"]
        if self.process is None:
            self.process = subprocess.Popen(nginx)
            time.sleep(0.5)
        else:
            subprocess.run([*nginx, "-s", "reload"], check=True)  # old workers finish what they were sent

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


def test_a_rolling_change_of_the_model_keeps_answering(
    played: dict[str, Any], next_image: dict[str, str], trained_tag: str, kube_folder: Path, artifacts: Path
) -> None:
    """A Deployment's default rollout for 2 replicas (maxSurge 1, maxUnavailable 0), step by step: start a pod of
    the new image, wait until its probes pass, add it to the Service, take an old pod out, let its preStop pause
    pass, then stop it (SIGTERM, the graceful stop) -- while a client keeps calling through the Service."""
    container = played["deployment"]["spec"]["template"]["spec"]["containers"][0]
    pre_stop_s = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace_s = played["deployment"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] - pre_stop_s
    endpoints = {name: pod["port"] for name, pod in played["pods"].items()}
    service = Service(kube_folder / "nginx")
    service.route_to(list(endpoints.values()))
    first = next(iter(endpoints.values()))
    card = httpx.get(f"http://127.0.0.1:{first}/model").json()["card"]
    row = {k: v for k, v in card["examples"][0].items() if k != "label"}
    answers: list[tuple[float, int, str]] = []
    stop = threading.Event()

    def keep_calling() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set() and len(answers) < 20_000:
                started = time.monotonic()
                try:
                    # A new connection each call: `nginx -s reload` (our stand-in for the endpoints changing) closes
                    # its old workers' idle client connections, and a call sent on one just then was lost in
                    # nginx, not in a pod; a Service (kube-proxy) never closes the client's connection.
                    response = client.post(f"{service.url}/prediction", json=row, headers={"Connection": "close"})
                    model = response.json().get("model", "") if response.status_code == 200 else response.text
                    answers.append((time.monotonic() - started, response.status_code, model))
                except httpx.HTTPError as error:
                    answers.append((time.monotonic() - started, 0, repr(error)))
                time.sleep(0.02)

    caller = threading.Thread(target=keep_calling)
    steps: dict[str, float] = {}
    try:
        caller.start()
        time.sleep(2)
        for old in list(endpoints):
            new = f"{old}-next"
            port = free_port()
            played["pods"][new] = {"port": port}  # removed with the others at the end
            steps[f"{new} ready_s"] = play(for_podman(rendered_deployment(next_image["image"]), new, port), kube_folder)
            endpoints[new] = port
            del endpoints[old]
            service.route_to(list(endpoints.values()))
            time.sleep(pre_stop_s)
            started = time.monotonic()
            podman("pod", "stop", "--time", str(grace_s), f"{old}-pod-0")
            steps[f"{old} stopped_s"] = time.monotonic() - started
        time.sleep(2)
    finally:
        stop.set()
        caller.join(timeout=60)
        service.stop()
    failed = [a for a in answers if a[1] != 200]
    models = [a[2] for a in answers if a[1] == 200]
    summary = {"calls": len(answers), "failed": len(failed), "slowest_s": round(max(a[0] for a in answers), 3)}
    (artifacts / "kube-play-rolling.json").write_text(json.dumps(summary | steps | {"failures": failed[:10]}, indent=2))
    assert failed == [], failed[:5]
    assert len(answers) > 100
    assert models[0] == trained_tag and models[-1] == next_image["model"]
    assert set(models) == {trained_tag, next_image["model"]}
