"""deploy/k8s/ (Deployment, Service, HPA, PDB, ConfigMap) agrees with the service and the settings it runs with.

No cluster here: every YAML document is parsed and cross-checked (selectors, names, ports, probes,
the token's Secret, the image the documented ``bentoml containerize`` command makes), the probe
routes are requested from the real service app, and ``kubectl kustomize`` renders the folder
when kubectl is installed (it needs no cluster).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from reviewops.config import Settings, load_settings
from reviewops.serving.auth import OPEN_PATHS

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATION = K8S / "kustomization.yaml"
KINDS = {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(ROOT / "params.yaml")


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    return yaml.safe_load(KUSTOMIZATION.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def docs(kustomization) -> dict[str, dict[str, Any]]:
    """kind -> the one document of that kind, from the files the kustomization lists."""
    found: dict[str, dict[str, Any]] = {}
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text(encoding="utf-8")):
            assert doc["kind"] not in found, f"two {doc['kind']} documents"
            found[doc["kind"]] = doc
    return found


@pytest.fixture(scope="module")
def container(docs) -> dict[str, Any]:
    (only,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    return only


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


def _port(container: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's target port as a number (a name resolves to the container port)."""
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return int(number)


def _cpu(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def test_the_kustomization_lists_every_manifest_and_the_kinds_are_there(kustomization, docs):
    files = {p.name for p in K8S.glob("*.yaml")} - {KUSTOMIZATION.name}
    assert set(kustomization["resources"]) == files
    assert set(docs) == KINDS


def test_selectors_match_the_pod_labels(docs):
    deployment = docs["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    assert docs["Service"]["spec"]["selector"] == selector
    assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector
    # the HPA owns the replica count: an apply must not reset it
    assert "replicas" not in deployment["spec"]


def test_the_hpa_scales_the_deployment_on_the_cpu_request(docs, container):
    hpa = docs["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": docs["Deployment"]["metadata"]["name"],
    }
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["type"] == "Utilization"
    assert 0 < metric["resource"]["target"]["averageUtilization"] <= 100
    assert _cpu(container["resources"]["requests"]["cpu"]) > 0  # utilization is relative to it
    assert container["resources"]["requests"]["memory"] and container["resources"]["limits"]["memory"]
    # a drain can always evict one pod: the budget stays below the HPA's floor
    floor, ceiling = hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]
    assert docs["PodDisruptionBudget"]["spec"]["minAvailable"] < floor <= ceiling


def test_ports_are_serve_port(docs, container, settings):
    (http,) = container["ports"]
    assert http["containerPort"] == settings.serve.port == 3000
    args = container["args"]
    assert args[0] == "serve" and int(args[args.index("--port") + 1]) == settings.serve.port
    assert args[args.index("--host") + 1] == "0.0.0.0"  # serve.host (loopback) is for a workstation
    assert _port(container, docs["Service"]["spec"]["ports"][0]["targetPort"]) == settings.serve.port
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert _port(container, container[probe]["httpGet"]["port"]) == settings.serve.port, probe


def test_probes_are_routes_the_service_serves_without_the_token(container, client):
    probes = ("startupProbe", "livenessProbe", "readinessProbe")
    paths = {probe: container[probe]["httpGet"]["path"] for probe in probes}
    assert paths == {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    wrong = {"Authorization": "Bearer not-the-token"}
    for path in set(paths.values()):
        assert path in OPEN_PATHS
        assert client.get(path, headers=wrong).status_code == 200, path  # served, and open to the kubelet
    assert client.get("/docs.json", headers=wrong).status_code == 401  # the token is on for the rest
    # /readyz asks the models service with a 5 s timeout: the probe waits longer than that
    assert container["readinessProbe"]["timeoutSeconds"] > 5


def test_the_token_comes_from_the_documented_secret(container, settings):
    ref = _env(container)[settings.serve.auth_token_env]["valueFrom"]["secretKeyRef"]
    assert settings.serve.auth_token_env == "REVIEWOPS_API_TOKEN"
    documented = re.findall(
        r"kubectl create secret generic (\S+) --from-literal=(\w+)=", KUSTOMIZATION.read_text(encoding="utf-8")
    )
    assert documented == [(ref["name"], ref["key"])]
    assert ref.get("optional") is not True  # no token, no pod: the API never starts open


def test_the_image_is_what_the_documented_containerize_makes(kustomization, container):
    bento_name = yaml.safe_load((ROOT / "bentofile.yaml").read_text(encoding="utf-8"))["name"]
    commands = re.findall(
        r"bentoml containerize (\S+):latest -t (\S+):<version>", KUSTOMIZATION.read_text(encoding="utf-8")
    )
    assert commands == [(bento_name, "reviewops")]
    (image,) = kustomization["images"]
    assert image["name"] == container["image"] == commands[0][1]
    assert image["newName"].rsplit("/", 1)[-1] == commands[0][1]


def test_the_configmap_params_drive_workers_and_threads(docs, container, tmp_path):
    env = _env(container)
    (mount,) = container["volumeMounts"]
    (volume,) = docs["Deployment"]["spec"]["template"]["spec"]["volumes"]
    configmap = docs["ConfigMap"]
    assert volume == {"name": mount["name"], "configMap": {"name": configmap["metadata"]["name"]}}
    (key,) = configmap["data"]
    assert env["REVIEWOPS_PARAMS"]["value"] == f"{mount['mountPath']}/{key}"
    params = tmp_path / key
    params.write_text(configmap["data"][key], encoding="utf-8")
    serve = load_settings(params).serve  # what the pod's service reads at start
    assert (serve.api_workers, serve.model_workers, serve.model_threads) == (1, 1, 2)
    # the rest of the pod's settings are the built-in defaults
    assert serve.model_dump(exclude={"api_workers", "model_workers", "model_threads"}) == Settings().serve.model_dump(
        exclude={"api_workers", "model_workers", "model_threads"}
    )
    # torch threads per call x calls at once fit the CPU limit
    limit = _cpu(container["resources"]["limits"]["cpu"])
    assert int(env["OMP_NUM_THREADS"]["value"]) * serve.model_threads <= limit


def test_a_rollout_lets_requests_finish(docs, container, settings):
    spec = docs["Deployment"]["spec"]
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    grace = spec["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= settings.serve.request_deadline_s + pause


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_renders_the_folder(kustomization):
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    rendered = {doc["kind"]: doc for doc in yaml.safe_load_all(out)}
    assert set(rendered) == KINDS
    (image,) = kustomization["images"]
    (container,) = rendered["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{image['newName']}:{image['newTag']}"
    assert all(doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "reviewops" for doc in rendered.values())
