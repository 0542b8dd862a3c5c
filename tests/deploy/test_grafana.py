"""Grafana: the siteops dashboard and its provisioning."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.deploy.conftest import GRAFANA_DIR, load_yaml, mounts
from tests.deploy.promql import KNOWN_METRICS, SITE_METRICS, metric_names, selectors

DASHBOARD = GRAFANA_DIR / "dashboards" / "siteops.json"
# Issue 5's five areas, each with the metrics that show it.
AREAS = {
    "backlog": {"siteops_queue_messages", "siteops_queue_oldest_message_age_seconds"},
    "findings by kind": {"siteops_findings_open"},
    "scan freshness": {"siteops_scan_last_success_timestamp_seconds"},
    "failures": {"siteops_task_runs_total", "siteops_scan_failures_total", "siteops_dead_letters",
                 "siteops_dead_letters_created_total"},
    "connector latency": {"siteops_connector_call_duration_seconds_bucket"},
}


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))  # collapsed rows nest theirs


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())  # fails on invalid JSON


@pytest.fixture(scope="module")
def graphs(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in all_panels(dashboard["panels"]) if p["type"] != "row"]


def exprs(panel: dict[str, Any]) -> list[str]:
    return [t["expr"] for t in panel.get("targets", []) if t.get("expr")]


def test_panels_are_distinct_and_laid_out(dashboard: dict[str, Any]) -> None:
    panels = list(all_panels(dashboard["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, f"{p['title']} is wider than the grid"
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, f"{p['title']} overlaps another panel"
        cells |= mine


def test_site_variable_lists_the_sites(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    site = variables["site"]
    assert site["type"] == "query" and site["multi"] and site["includeAll"]
    query = site["query"]["query"] if isinstance(site["query"], dict) else site["query"]
    m = re.fullmatch(r"label_values\((\w+),\s*site\)", query)
    assert m and m.group(1) in SITE_METRICS, query


def test_every_panel_queries_only_served_metrics(graphs: list[dict[str, Any]]) -> None:
    for panel in graphs:
        assert exprs(panel), f"panel {panel['title']!r} has no query"
        for expr in exprs(panel):
            unknown = metric_names(expr) - KNOWN_METRICS
            assert not unknown, f"panel {panel['title']!r} queries unknown metrics {unknown}"


def test_every_per_site_query_follows_the_site_variable(graphs: list[dict[str, Any]]) -> None:
    for panel in graphs:
        for expr in exprs(panel):
            for metric in metric_names(expr) & SITE_METRICS:
                for matchers in selectors(expr, metric):
                    assert 'site=~"$site"' in matchers, f"{panel['title']!r}: {metric} ignores $site"


@pytest.mark.parametrize("area", AREAS)
def test_each_area_has_a_per_site_panel(area: str, graphs: list[dict[str, Any]]) -> None:
    def shows(panel: dict[str, Any]) -> bool:
        return any(metric_names(e) & AREAS[area] for e in exprs(panel))

    panels = [p for p in graphs if shows(p)]
    assert panels, f"no panel for {area}"
    # Per-site comparison: one series per site, named by site.
    assert any("{{site}}" in t.get("legendFormat", "") for p in panels for t in p["targets"]), area
    if area == "findings by kind":
        assert any("{{kind}}" in t.get("legendFormat", "") for p in panels for t in p["targets"])
    if area == "connector latency":
        assert any("histogram_quantile" in e for p in panels for e in exprs(p))


def test_panels_use_the_provisioned_datasource(graphs: list[dict[str, Any]]) -> None:
    datasource = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")["datasources"][0]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    for panel in graphs:
        for ref in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
            assert ref == {"type": "prometheus", "uid": datasource["uid"]}, panel["title"]


def test_dashboard_provider_loads_the_dashboards_folder(compose: dict[str, Any]) -> None:
    provider = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "siteops.yml")["providers"][0]
    assert provider["type"] == "file"
    grafana = mounts(compose["services"]["grafana"])
    assert grafana[provider["options"]["path"]] == "./deploy/grafana/dashboards"
    assert grafana["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
