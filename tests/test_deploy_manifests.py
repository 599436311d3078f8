"""The Kubernetes manifests are valid against the Kubernetes schemas and wire probes, limits and scraping."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.conftest import ROOT

MANIFESTS = ROOT / "deploy" / "kubernetes"
RESOURCES = ["deployment.yaml", "service.yaml", "hpa.yaml"]


def load(name: str) -> dict:
    return yaml.safe_load((MANIFESTS / name).read_text())


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
    deployment, service, hpa = (load(n) for n in RESOURCES)
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
