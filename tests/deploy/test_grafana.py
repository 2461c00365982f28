"""deploy/grafana/plyr-appview.json: parses, and charts only metrics that exist (or that issue 12's other parts add
under these agreed names) — a dashboard of typos shows empty panels and nobody notices."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.common import DEPLOY, ROOT

DASHBOARD = DEPLOY / "grafana" / "plyr-appview.json"
# Agreed names of metrics added by the other parts of issue 12 (leadership, replicas, log head, pools).
AGREED = {"appview_log_head_seq", "appview_projector_lag_events", "appview_projector_lag_seconds",
          "appview_replica_lag_seconds", "ingester_leader", "appview_db_pool_connections"}
# Every panel the operator needs, by the metric that feeds it.
REQUIRED = {"appview_http_requests_total", "appview_http_request_seconds_bucket", "ingest_log_rows_total",
            "ingest_lag_seconds"} | AGREED
_DEFINED = re.compile(r"\b(?:Counter|Gauge|Histogram|Summary)\(\s*\"([a-zA-Z_:][a-zA-Z0-9_:]*)\"")
_PROMQL_WORDS = {"sum", "max", "min", "avg", "count", "rate", "irate", "increase", "histogram_quantile", "by",
                 "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
                 "topk", "bottomk", "clamp_min", "clamp_max", "abs", "time", "vector", "label_replace"}


def defined_metrics() -> set[str]:
    """Names registered with prometheus-client anywhere in the code, with the series each kind exposes."""
    names: set[str] = set()
    for package in ("core", "ingester", "appview", "cli"):
        for path in (ROOT / package).rglob("*.py"):
            for m in _DEFINED.finditer(path.read_text()):
                names.add(m.group(1))
    exposed = set(names)
    for name in names | AGREED:
        exposed |= {name, f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_total", f"{name}_created"}
    return exposed


def referenced_metrics(expr: str) -> set[str]:
    """Metric names in a PromQL expression (label matchers, grouping labels, strings and ranges removed)."""
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", " ", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", " ", expr)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {w for w in words if w not in _PROMQL_WORDS and not re.fullmatch(r"[0-9.e]+", w)}


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_dashboard_parses_and_is_importable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "plyr-appview" and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for p in dashboard["panels"]:
        assert p["type"] == "row" or p["targets"], p["title"]
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24


def test_every_charted_metric_exists() -> None:
    defined = defined_metrics()
    dashboard = json.loads(DASHBOARD.read_text())
    referenced = set().union(*(referenced_metrics(e) for e in _exprs(dashboard)))
    assert not referenced - defined, f"charted but defined nowhere: {sorted(referenced - defined)}"
    assert not REQUIRED - referenced, f"no panel for: {sorted(REQUIRED - referenced)}"


def test_the_metric_reference_check_is_not_vacuous() -> None:
    assert referenced_metrics('histogram_quantile(0.99, sum by (route, le) (rate(x_bucket{job=~"a"}[5m])))') \
        == {"x_bucket"}
    assert referenced_metrics("sum(rate(appview_http_requests_totl[1m]))") - defined_metrics() == \
        {"appview_http_requests_totl"}
    assert "appview_http_requests_total" in defined_metrics()


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (Debian package prometheus)")
def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    # Grafana's variables as Grafana would expand them; each query becomes a recording rule promtool parses.
    exprs = [e.replace("$__rate_interval", "5m").replace("$job", ".*")
             for e in _exprs(json.loads(DASHBOARD.read_text()))]
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:q{i}", "expr": e}
                                                        for i, e in enumerate(exprs)]}]}
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and f"{len(exprs)} rules found" in done.stdout, done.stdout + done.stderr
