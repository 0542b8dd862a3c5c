"""`siteops findings --sort priority` orders open findings by the triage priority module."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from typer.testing import CliRunner


def test_findings_sorted_by_priority_put_the_severe_first(store_ready: None) -> None:
    from siteops.cli import app
    from siteops.rules.findings import Observation, plan
    from siteops.store import findings

    site = "T" + uuid.uuid4().hex[:6].upper()

    def obs(record_id: int, severity: int) -> Observation:
        return Observation(site=site, kind="aging_transfers", rule="aging_transfer", model="stock.picking",
                           record_id=record_id, record_name=f"{site}/INT/{record_id}", severity=severity,
                           title=f"picking {record_id} late", rule_version="1", params={})

    now = dt.datetime.now(dt.UTC)
    findings.apply(plan(findings.active(site, "aging_transfers"), [obs(1, 1), obs(2, 3)], complete=True, now=now,
                        escalate_after=dt.timedelta(hours=24)), now=now)

    def order(*extra: str) -> list[int]:
        result = CliRunner().invoke(app, ["findings", "--json", *extra])
        assert result.exit_code == 0, result.output
        return [f["record_id"] for f in json.loads(result.output) if f["site"] == site]

    assert order() == [1, 2]
    assert order("--sort", "priority") == [2, 1]
    from siteops.services.report import collect

    [stats] = collect([site])
    severe = next(f for f in findings.search(site=site) if f.record_id == 2)
    assert stats.top_finding == severe.id and stats.top_priority >= 60
    bad = CliRunner().invoke(app, ["findings", "--sort", "loudest"])
    assert bad.exit_code == 2 and "--sort" in bad.output
