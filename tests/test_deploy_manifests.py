"""The Kubernetes manifests are valid against the Kubernetes schemas and wire probes, limits, scraping and the
hardening of docs/deployment-hardening.md (read-only root, no token, storage limits, the NetworkPolicy)."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.conftest import ROOT

MANIFESTS = ROOT / "deploy" / "kubernetes"
RESOURCES = ["deployment.yaml", "service.yaml", "hpa.yaml", "networkpolicy.yaml"]
# The image's BentoML home and bento (BentoML's container defaults; the bento holds the model store).
IMAGE_BENTOML_HOME = "/home/bentoml"
IMAGE_BENTO_PATH = "/home/bentoml/bento"
BINARY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def load(name: str) -> dict:
    return yaml.safe_load((MANIFESTS / name).read_text())


def quantity(value: str) -> int:
    """A Kubernetes quantity in bytes (the binary suffixes these manifests use, or none)."""
    for suffix, factor in BINARY_UNITS.items():
        if value.endswith(suffix):
            return int(value.removesuffix(suffix)) * factor
    return int(value)


def pod_and_container() -> tuple[dict, dict]:
    pod = load("deployment.yaml")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def mounted_empty_dirs() -> dict[str, dict]:
    """Each mount path of the container, with the emptyDir behind it."""
    pod, container = pod_and_container()
    volumes = {v["name"]: v for v in pod["volumes"]}
    return {m["mountPath"]: volumes[m["name"]]["emptyDir"] for m in container["volumeMounts"]}


@pytest.mark.parametrize("name", RESOURCES)
def test_manifest_is_valid_kubernetes(name: str) -> None:
    kubernetes_validate.validate(load(name), kubernetes_validate.latest_version(), strict=True)


def test_kustomization_lists_every_manifest() -> None:
    assert sorted(load("kustomization.yaml")["resources"]) == sorted(RESOURCES)


def test_deployment_probes_limits_and_non_root() -> None:
    pod = load("deployment.yaml")["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"]) & set(container["resources"]["limits"])
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"


def test_service_and_autoscaler_target_the_deployment() -> None:
    deployment, service, hpa = (load(n) for n in ("deployment.yaml", "service.yaml", "hpa.yaml"))
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert Path(MANIFESTS / "kustomization.yaml").is_file()


def test_validator_catches_a_broken_manifest() -> None:
    broken = load("deployment.yaml")
    broken["spec"]["replica"] = broken["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def test_deployment_logs_json_and_keeps_the_prediction_log_on_a_volume() -> None:
    pod = load("deployment.yaml")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SERVING_LOG_FORMAT"] == "json"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts[env["SERVING_PREDICTION_LOG"]] in {v["name"] for v in pod["volumes"]}


def test_root_filesystem_is_read_only_with_an_empty_dir_wherever_the_service_writes() -> None:
    """Found by running the image read-only (docs/deployment-hardening.md): /tmp (the UI's files, BentoML's
    sockets), BentoML's Prometheus multiprocess folder under its home, and the prediction log."""
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.container.generate import BENTO_HOME, BENTO_PATH

    assert (BENTO_HOME.rstrip("/"), BENTO_PATH) == (IMAGE_BENTOML_HOME, IMAGE_BENTO_PATH)  # what the image has
    # BentoML's folder, wherever its home is: $BENTOML_HOME/prometheus_multiproc_dir.
    prometheus = Path(BentoMLContainer.prometheus_multiproc_dir.get())
    assert prometheus.parent == Path(BentoMLContainer.bentoml_home.get())
    pod, container = pod_and_container()
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = mounted_empty_dirs()
    assert set(mounts) == {"/tmp", f"{IMAGE_BENTOML_HOME}/{prometheus.name}", env["SERVING_PREDICTION_LOG"]}
    for path, empty_dir in mounts.items():
        assert quantity(empty_dir["sizeLimit"]) > 0, path  # none may fill the node's disk
        assert "medium" not in empty_dir, path  # on disk: counted as ephemeral storage, not as memory
    # Not over BentoML's home or the bento (the model store the image carries): only the folders written.
    for path in mounts:
        assert not IMAGE_BENTO_PATH.startswith(path.rstrip("/")), path
    assert quantity(mounts["/tmp"]["sizeLimit"]) == 256 * 2**20


def test_no_library_phones_home() -> None:
    """Nothing may leave the pod (networkpolicy.yaml), so nothing tries: BentoML's usage tracking, Gradio's
    analytics and ONNX Runtime's telemetry (which also writes under $HOME on start) are off."""
    _, container = pod_and_container()
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["BENTOML_DO_NOT_TRACK"] == "true"
    assert env["GRADIO_ANALYTICS_ENABLED"] == "False"
    assert env["ORT_DISABLE_TELEMETRY"] == "1"


def test_no_service_account_token_is_mounted() -> None:
    pod, _ = pod_and_container()
    assert pod["automountServiceAccountToken"] is False


def test_ephemeral_storage_is_requested_and_limited_above_the_empty_dirs() -> None:
    """The emptyDirs count against the container's ephemeral storage: the limit must hold all of them at their
    size limits, with room for the container's log, or the kubelet evicts the pod before any emptyDir is full."""
    _, container = pod_and_container()
    request = quantity(container["resources"]["requests"]["ephemeral-storage"])
    limit = quantity(container["resources"]["limits"]["ephemeral-storage"])
    volumes = sum(quantity(d["sizeLimit"]) for d in mounted_empty_dirs().values())
    assert 0 < request <= limit
    assert limit >= volumes + 100 * 2**20  # the kubelet keeps up to 5 x 10Mi of container log by default
    env = {e["name"]: e.get("value") for e in container["env"]}
    # The request covers what a pod keeps in steady state: the prediction log at its retention size.
    assert request >= int(env["SERVING_PREDICTION_LOG_MAX_MIB"]) * 2**20


def test_network_policy_lets_in_only_the_http_port_and_lets_nothing_out() -> None:
    deployment, policy = load("deployment.yaml"), load("networkpolicy.yaml")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["kind"] == "NetworkPolicy"
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert set(policy["spec"]["podSelector"]) == {"matchLabels"}
    assert sorted(policy["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    http_port = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
    assert http_port == 3000
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": http_port}]
    assert "from" not in rule  # from anywhere: the Service, an ingress controller, Prometheus
    # Egress isolated with no rule: no connection out, DNS included (the service calls nothing).
    assert policy["spec"].get("egress", []) == []
