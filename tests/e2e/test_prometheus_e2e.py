"""A real Prometheus scrapes `siteops exporter` and raises SiteopsScanStale when a site's scans stop.

The rule is the one in deploy/prometheus/alerts.yml, read at test time: its expression
and threshold are kept as they are (NORTH's last complete aging_transfers scan is made
older than the threshold, every other scan younger), only its `for:` is shortened so the
alert fires within seconds. If the rule is renamed or its expression changes shape, this
test fails and says so.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import ROOT, _free_port, poll
from tests.e2e.conftest import Processes, started

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ALERTS_FILE = ROOT / "deploy" / "prometheus" / "alerts.yml"
STALE_ALERT = "SiteopsScanStale"
FRESHNESS_METRIC = "siteops_scan_last_success_timestamp_seconds"
# The shape this test understands: `time() - <freshness metric> > <seconds, maybe a product>`.
STALE_EXPR = re.compile(rf"^\s*time\(\)\s*-\s*{FRESHNESS_METRIC}\s*>\s*(?P<threshold>[0-9.]+(\s*\*\s*[0-9.]+)*)\s*$")
PROMETHEUS_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
TEST_FOR = "2s"
STALE_SITE, STALE_KIND = "NORTH", "aging_transfers"


def prometheus_binary() -> str:
    found = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
    if found:
        return found
    reason = "prometheus not found: install the Debian package prometheus (.ci/deploy-deps)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def stale_threshold_seconds(rule: dict[str, Any]) -> float:
    match = STALE_EXPR.match(str(rule.get("expr", "")))
    if not match:
        pytest.fail(f"{STALE_ALERT}'s expression changed to {rule.get('expr')!r}; this test expects "
                    f"'time() - {FRESHNESS_METRIC} > <seconds>': update the test with the rule")
    seconds = 1.0
    for factor in match["threshold"].split("*"):
        seconds *= float(factor)
    return seconds


def derived_rules(path: Path) -> tuple[dict[str, Any], float]:
    """alerts.yml as it is, with the stale-scan rule's `for:` shortened; and its threshold."""
    doc = yaml.safe_load(ALERTS_FILE.read_text())
    stale = [rule for group in doc["groups"] for rule in group["rules"] if rule.get("alert") == STALE_ALERT]
    if len(stale) != 1:
        pytest.fail(f"deploy/prometheus/alerts.yml has {len(stale)} rules named {STALE_ALERT}, expected 1")
    rule = stale[0]
    threshold = stale_threshold_seconds(rule)
    assert PROMETHEUS_DURATION.match(str(rule.get("for", ""))), f"{STALE_ALERT}: no valid `for:` ({rule.get('for')!r})"
    assert {"site", "kind"} <= set(re.findall(r"\$labels\.(\w+)", rule["annotations"]["summary"])), (
        f"{STALE_ALERT}'s summary no longer names the site and the kind")
    rule["for"] = TEST_FOR
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return rule, threshold


def scan(site: str, kind: str, finished: dt.datetime, status: str = "complete") -> None:
    from siteops.store import findings

    findings.record_scan(task_id=f"e2e-{uuid.uuid4()}", site=site, kind=kind, status=status, records_read=10,
                         found=0, opened=0, resolved=0, escalated=0,
                         error="Odoo unreachable" if status == "failed" else None,
                         started_at=finished - dt.timedelta(seconds=3), finished_at=finished, duration_seconds=3.0)


@pytest.fixture
def private_store(tmp_path: Path) -> Iterator[str]:
    """A store of this test's own: other tests' scan runs must not refresh NORTH's scans."""
    from tests.conftest import use_store

    with use_store(f"sqlite:///{tmp_path / 'store.db'}") as url:
        yield url


class PrometheusAPI:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str, **params: str) -> Any:
        response = httpx.get(self.base + path, params=params, timeout=5)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    def stale_alerts(self) -> list[dict[str, Any]]:
        return [a for a in self.get("/api/v1/alerts")["alerts"] if a["labels"].get("alertname") == STALE_ALERT]

    def firing(self) -> list[dict[str, Any]]:
        return [a for a in self.stale_alerts() if a["state"] == "firing"]


def test_prometheus_fires_the_stale_scan_alert_for_the_site_whose_scans_stopped(
        redis_server: Any, private_store: str, processes: Processes, tmp_path: Path) -> None:
    from siteops.config.sites import get_registry
    from siteops.rules.findings import KINDS

    binary = prometheus_binary()
    sites = get_registry().codes
    assert STALE_SITE in sites and STALE_KIND in KINDS
    rule, threshold = derived_rules(tmp_path / "alerts.yml")

    # Given every site's scans completing in time, except NORTH's aging_transfers scan: it last
    # completed 1.5 thresholds ago, and its latest attempt failed (a failure is no success).
    now = dt.datetime.now(dt.UTC)
    for site in sites:
        for kind in KINDS:
            if (site, kind) == (STALE_SITE, STALE_KIND):
                scan(site, kind, now - dt.timedelta(seconds=threshold * 1.5))
                scan(site, kind, now - dt.timedelta(minutes=1), status="failed")
            else:
                scan(site, kind, now - dt.timedelta(seconds=threshold / 2))

    exporter_port, prometheus_port = _free_port(), _free_port()
    exporter = processes.siteops("exporter", "exporter", "--port", str(exporter_port))
    poll(lambda: started(exporter, f"http://127.0.0.1:{exporter_port}/metrics"), 30, "the exporter to answer",
         interval=0.1)

    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "alerts.yml")],
        "scrape_configs": [{"job_name": "siteops", "metrics_path": "/metrics",
                            "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    prometheus = processes.start("prometheus", [
        binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}", "--log.level=warn",
    ])
    api = PrometheusAPI(prometheus_port)
    poll(lambda: started(prometheus, f"{api.base}/-/ready"), 30, "Prometheus to be ready", interval=0.1)

    # Prometheus sees a freshness series for every site and kind (so "not firing" below means something).
    def freshness_series() -> set[tuple[str, str]]:
        result = api.get("/api/v1/query", query=FRESHNESS_METRIC)["result"]
        return {(r["metric"]["site"], r["metric"]["kind"]) for r in result}

    expected = {(site, kind) for site in sites for kind in KINDS}
    poll(lambda: freshness_series() == expected, 30, "Prometheus to scrape every site's scan freshness",
         interval=0.2)

    # Then the stale-scan alert fires for NORTH's aging_transfers scan, and for nothing else.
    def north_firing() -> list[dict[str, Any]]:
        return [a for a in api.firing() if (a["labels"]["site"], a["labels"]["kind"]) == (STALE_SITE, STALE_KIND)]

    [alert] = poll(north_firing, 30, f"{STALE_ALERT} to fire for {STALE_SITE}/{STALE_KIND}", interval=0.2)
    assert alert["labels"]["severity"] == rule["labels"]["severity"]
    assert alert["annotations"]["summary"] == f"{STALE_KIND} scan of site {STALE_SITE} is stale"
    assert f"site {STALE_SITE}" in alert["annotations"]["description"]
    others = [(a["labels"]["site"], a["labels"]["kind"], a["state"]) for a in api.stale_alerts()
              if (a["labels"]["site"], a["labels"]["kind"]) != (STALE_SITE, STALE_KIND)]
    assert others == [], f"{STALE_ALERT} is active for scans that complete in time: {others}"

    # Every rule of alerts.yml loaded and evaluates without error against the real exporter.
    groups = api.get("/api/v1/rules")["groups"]
    loaded = {r["name"]: r for g in groups for r in g["rules"]}
    real = {r["alert"] for g in yaml.safe_load(ALERTS_FILE.read_text())["groups"] for r in g["rules"]}
    assert set(loaded) == real
    broken = {name: r.get("lastError") for name, r in loaded.items() if r["health"] != "ok"}
    assert not broken, f"rules failing to evaluate: {broken}"

    # When NORTH's aging_transfers scan completes again, the alert resolves.
    scan(STALE_SITE, STALE_KIND, dt.datetime.now(dt.UTC))
    poll(lambda: not api.stale_alerts(), 30, f"{STALE_ALERT} to resolve after a fresh scan", interval=0.2)

    prometheus.stop()
    exporter.stop()
