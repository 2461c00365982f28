"""deploy/compose.yaml is a topology that can work: checked offline, without a Docker daemon."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy.common import DEPLOY, compose, interpolate, setting_names

APP = ("s3-init", "migrate", "ingester", "api")
ONE_SHOT = ("s3-init", "migrate")


def _services() -> dict[str, Any]:
    services = compose()["services"]
    assert isinstance(services, dict)
    return services


def test_every_part_of_the_topology_is_there() -> None:
    assert set(_services()) == {"postgres", "s3", "s3-init", "migrate", "ingester", "api", "proxy", "prometheus"}
    for name in APP:
        assert _services()[name]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY.parent / _services()[name]["build"]["dockerfile"]).is_file()
        assert _services()[name]["init"] is True


def test_migrate_is_a_one_shot_job_everything_else_waits_for() -> None:
    s = _services()
    assert s["migrate"]["command"] == ["appview", "migrate"] and s["migrate"]["restart"] == "no"
    assert s["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("ingester", "api"):
        deps = s[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["s3-init"]["condition"] == "service_completed_successfully", name
        assert deps["postgres"]["condition"] == "service_healthy", name
        # a replica never migrates: it waits for the job (and would say so, exit 2, if the job never ran)
        assert s[name]["environment"]["MIGRATE_ON_START"] == "false", name
    assert s["migrate"]["environment"]["MIGRATE_ON_START"] == "true"
    assert s["s3-init"]["restart"] == "no" and s["s3-init"]["depends_on"]["s3"]["condition"] == "service_started"


def test_two_ingesters_and_api_replicas_without_a_fixed_port() -> None:
    s = _services()
    assert s["ingester"]["command"] == ["appview", "ingest"] and s["ingester"]["deploy"]["replicas"] == 2
    assert s["api"]["command"] == ["appview", "serve"] and s["api"]["deploy"]["replicas"] >= 2
    # `--scale api=N` needs: no host port, no container_name; the proxy is the only published port
    published = {name for name, svc in s.items() if svc.get("ports")}
    assert published == {"proxy"}
    assert not any("container_name" in svc for svc in s.values())
    assert s["proxy"]["depends_on"]["api"]["condition"] == "service_healthy"


def test_healthchecks_on_every_long_running_service() -> None:
    s = _services()
    assert s["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    for name in ONE_SHOT:
        assert s[name]["healthcheck"] == {"disable": True}  # the image's /health check means nothing for a job
    # api: the image's HEALTHCHECK (/health, tests/deploy/test_dockerfile.py); the ingester serves no /health
    assert "healthcheck" not in s["api"]
    assert "9100/metrics" in " ".join(s["ingester"]["healthcheck"]["test"])
    assert s["ingester"]["environment"]["METRICS_PORT"] == "9100"
    for name in ("proxy", "prometheus"):
        assert s[name]["healthcheck"]["test"][0] == "CMD", name


def test_every_environment_variable_given_to_the_app_is_a_real_setting() -> None:
    known = setting_names()
    for name in APP:
        env = _services()[name]["environment"]
        unknown = set(env) - known
        assert not unknown, f"{name}: not settings of the appview command: {sorted(unknown)}"


def test_the_blob_mirror_is_shared_and_readable_through_the_proxy() -> None:
    s = _services()
    env = s["api"]["environment"]
    assert env["S3_ENDPOINT_URL"] == "http://s3:8333" and s["ingester"]["environment"]["S3_BUCKET"] == env["S3_BUCKET"]
    assert interpolate(env["S3_PUBLIC_BASE_URL"]) == "http://localhost:8080/media"
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    assert "handle_path /media/*" in caddyfile and "reverse_proxy s3:8333" in caddyfile
    assert "rewrite * /{$S3_BUCKET}{path}" in caddyfile and s["proxy"]["environment"]["S3_BUCKET"] == env["S3_BUCKET"]
    # the S3 identities: the app's key from the same variables; anonymous callers may only read that bucket
    identities = json.loads(interpolate(compose()["configs"]["s3_identities"]["content"]))["identities"]
    by_name = {i["name"]: i for i in identities}
    assert by_name["anonymous"]["actions"] == [f"Read:{interpolate(env['S3_BUCKET'])}"]
    assert "credentials" not in by_name["anonymous"]
    cred = by_name["appview"]["credentials"][0]
    assert (cred["accessKey"], cred["secretKey"]) == \
        (interpolate(env["S3_ACCESS_KEY_ID"]), interpolate(env["S3_SECRET_ACCESS_KEY"]))


def test_the_proxy_and_prometheus_find_every_replica_by_dns() -> None:
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    assert "dynamic a {" in caddyfile and "name api" in caddyfile and "port 8080" in caddyfile
    # /metrics is not proxied, and in a `handle` of its own (a bare `respond` loses to the catch-all `handle`)
    assert re.search(r"handle /metrics \{\s*respond 404\s*\}", caddyfile)
    prom = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["dns_sd_configs"][0] for job in prom["scrape_configs"]}
    assert targets["appview-api"] == {"names": ["api"], "type": "A", "port": 8080, "refresh_interval": "15s"}
    assert targets["appview-ingester"]["names"] == ["ingester"] and targets["appview-ingester"]["port"] == 9100
    for config in compose()["configs"].values():
        if "file" in config:
            assert (DEPLOY / config["file"]).is_file()
    mounted = _services()["s3-init"]["volumes"][0].split(":")[0]
    assert (DEPLOY / mounted).is_file()


@pytest.mark.skipif(shutil.which("caddy") is None, reason="caddy not installed (apt-get install caddy)")
def test_caddy_accepts_the_caddyfile() -> None:
    done = subprocess.run(["caddy", "validate", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
                          env={"S3_BUCKET": "plyr-blobs", "PATH": "/usr/bin:/bin", "HOME": "/tmp"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Valid configuration" in done.stdout + done.stderr, done.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (Debian package prometheus)")
def test_promtool_accepts_the_scrape_config() -> None:
    done = subprocess.run(["promtool", "check", "config", str(DEPLOY / "prometheus.yml")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
