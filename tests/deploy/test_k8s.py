"""deploy/k8s/ validated offline against the Kubernetes JSON schemas (kubernetes-validate bundles them), strictly:
an unknown field is an error, as the API server's field validation would make it."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.common import DEPLOY, setting_names

K8S = DEPLOY / "k8s"
# The oldest Kubernetes still commonly run (autoscaling/v2, policy/v1 and batch/v1 TTLs are GA there) and the newest
# the validator knows.
VERSIONS = ("1.25.0", kubernetes_validate.latest_version() + ".0")


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _resources() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in _docs(path):
            if doc["kind"] != "Kustomization":
                out[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return out


def _validate(doc: dict[str, Any]) -> None:
    for version in VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("path", sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"))
def test_every_manifest_matches_the_kubernetes_schemas(path: str) -> None:
    for doc in _docs(K8S / path):
        _validate(doc)
        assert "namespace" not in doc["metadata"], "namespace-agnostic: `kubectl apply -k … -n <ns>` chooses it"


def test_the_validation_catches_what_a_cluster_would_refuse() -> None:
    api = _resources()["Deployment/plyr-appview-api"]
    typo = copy.deepcopy(api)
    container = typo["spec"]["template"]["spec"]["containers"][0]
    container["readinessprobe"] = container.pop("readinessProbe")  # misspelt: an unknown field
    wrong_type = copy.deepcopy(api)
    wrong_type["spec"]["replicas"] = "two"
    for bad in (typo, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            _validate(bad)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = _docs(K8S / "kustomization.yaml")[0]
    assert sorted(kustomization["resources"]) == sorted(p.name for p in K8S.glob("*.yaml")
                                                       if p.name != "kustomization.yaml")
    assert "namespace" not in kustomization


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    containers = doc["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def test_the_topology() -> None:
    r = _resources()
    job, ingester, api = r["Job/plyr-appview-migrate"], r["Deployment/plyr-appview-ingester"], \
        r["Deployment/plyr-appview-api"]
    assert _container(job)["command"] == ["appview", "migrate"]
    assert {"name": "MIGRATE_ON_START", "value": "true"} in _container(job)["env"]
    assert ingester["spec"]["replicas"] == 2 and _container(ingester)["command"] == ["appview", "ingest"]
    c = _container(api)
    assert c["command"] == ["appview", "serve"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready" and c["livenessProbe"]["httpGet"]["path"] == "/health"
    for doc in (job, ingester, api):
        resources = _container(doc)["resources"]
        assert resources["requests"]["cpu"] and resources["requests"]["memory"] and resources["limits"]["memory"]
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        refs = {next(iter(e.values()))["name"] for e in _container(doc)["envFrom"]}
        assert refs == {"plyr-appview-config", "plyr-appview-secrets"}
    hpa = r["HorizontalPodAutoscaler/plyr-appview-api"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "plyr-appview-api"}
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    service = r["Service/plyr-appview-api"]
    assert service["spec"]["selector"] == api["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == c["ports"][0]["name"]
    # Prometheus finds both kinds of pod by their annotations, on the port each serves /metrics on
    config = r["ConfigMap/plyr-appview-config"]["data"]
    for doc, port in ((ingester, config["METRICS_PORT"]), (api, config["PORT"])):
        notes = doc["spec"]["template"]["metadata"]["annotations"]
        assert notes["prometheus.io/scrape"] == "true" and notes["prometheus.io/port"] == port
        assert notes["prometheus.io/path"] == "/metrics"
        assert int(port) in {p["containerPort"] for p in _container(doc)["ports"]}
    assert config["MIGRATE_ON_START"] == "false"  # the Deployments wait for the Job


def test_configmap_and_secret_hold_only_real_settings() -> None:
    r = _resources()
    keys = set(r["ConfigMap/plyr-appview-config"]["data"]) | set(r["Secret/plyr-appview-secrets"]["stringData"])
    assert not keys - setting_names(), sorted(keys - setting_names())
    assert {"DATABASE_URL", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"} <= set(r["Secret/plyr-appview-secrets"]
                                                                              ["stringData"])


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_the_kustomize_build_is_valid_too() -> None:
    done = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    built = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert len(built) == len(_resources())
    for doc in built:
        _validate(doc)
        if doc["kind"] in ("Deployment", "Job"):
            assert _container(doc)["image"] == "plyr-appview:0.1.0"
