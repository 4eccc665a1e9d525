"""The provisioned Grafana dashboard and the compose profile point at what exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import Counter, Histogram

from cognitive.telemetry import metrics

REPO = Path(__file__).resolve().parents[3]
DASHBOARD = REPO / "deploy/observability/grafana/dashboards/dspex.json"


def exported_names() -> set[str]:
    names = {"dspex_queue_depth", "dspex_runs_in_flight", "dspex_workers_alive"}
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            names.add(f"{value._name}_total")
        elif isinstance(value, Histogram):
            names.update(f"{value._name}{suffix}" for suffix in ("_bucket", "_count", "_sum"))
    return names


def test_every_query_of_the_dashboard_uses_an_exported_metric():
    board = json.loads(DASHBOARD.read_text())
    used = {
        name
        for panel in board["panels"]
        for target in panel["targets"]
        for name in re.findall(r"dspex_[a-z_]+", target["expr"])
    }
    assert used and used <= exported_names(), used - exported_names()
    assert all(panel["datasource"]["uid"] == "dspex-prometheus" for panel in board["panels"])


def test_the_observability_profile_mounts_files_that_exist():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    profiled = {name for name, service in services.items() if "observability" in service.get("profiles", [])}
    assert profiled == {"metrics", "prometheus", "grafana"}
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            assert (REPO / volume.split(":")[0]).exists(), volume
    datasource = yaml.safe_load(
        (REPO / "deploy/observability/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert datasource["datasources"][0]["uid"] == "dspex-prometheus"
    scrape = yaml.safe_load((REPO / "deploy/observability/prometheus.yml").read_text())
    assert scrape["scrape_configs"][0]["static_configs"][0]["targets"] == ["metrics:9464"]
    assert services["metrics"]["command"][-1] == "9464"
