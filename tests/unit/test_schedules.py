"""Beat schedules as data: one entry per site and kind, overrides, switched-off scans, stagger."""

from __future__ import annotations

from pathlib import Path

from celery.schedules import crontab, schedule

from siteops.config.sites import load_registry
from siteops.schedules import build_beat_schedule, describe
from tests.conftest import ROOT


def test_the_demo_network_gets_a_scan_per_site_and_kind() -> None:
    entries = build_beat_schedule(load_registry(ROOT / "sites.toml"))
    scans = {name: e for name, e in entries.items() if name.startswith("scan:")}
    assert len(scans) == 5 * 4
    web = scans["scan:WEB:aging_transfers"]
    assert web["task"] == "siteops.scan.aging_transfers" and web["args"] == ["WEB"]
    assert web["options"]["queue"] == "site.WEB"
    # WEB's own 5-minute schedule, expiring before the next run is due.
    assert isinstance(web["schedule"], crontab) and web["schedule"]._orig_minute.endswith("/5")
    assert web["options"]["expires"] < 5 * 60
    # Sites are staggered: no two sites scan aging transfers in the same minute.
    minutes = {scans[f"scan:{s}:aging_transfers"]["schedule"]._orig_minute for s in ("CW", "NORTH", "SOUTH", "EAST")}
    assert len(minutes) == 4
    # Lost-work recovery runs inside the platform worker (housekeeping), not from beat:
    # beat holds only site work (scans, the Odoo catch-up, shipping, EDI, approvals), every entry
    # on its site's queue with `expires`, so Flower and the audit trail show the work operators look for.
    assert {name.split(":")[0] for name in entries} == {"scan", "events", "shipping", "edi", "approvals"}
    assert all(e["args"] and e["options"]["queue"] == f"site.{e['args'][0]}" for e in entries.values())
    approvals = {name: e for name, e in entries.items() if name.startswith("approvals:")}
    assert {e["args"][0] for e in approvals.values()} == {"CW", "NORTH", "SOUTH", "EAST", "WEB"}
    assert all(e["task"] == "siteops.approvals.sync" for e in approvals.values())
    assert not any(e["task"] == "siteops.ops.recover_lost" for e in entries.values())
    assert all(e["options"]["queue"].startswith("site.") and e["options"]["expires"] > 0 for e in entries.values())


def test_a_scan_switched_off_for_one_site_and_odd_intervals(tmp_path: Path) -> None:
    path = tmp_path / "sites.toml"
    path.write_text("""
[policy]
site_tunable = ["schedules"]
[policy.defaults.schedules]
aging_transfers = 15
overdue_receipts = 45
stock_anomalies = 120
aging_backorders = 0
[sites.A]
responsible = ["a"]
schedules = { aging_transfers = 0 }
[sites.B]
responsible = ["b"]
""")
    entries = build_beat_schedule(load_registry(path))
    assert "scan:A:aging_transfers" not in entries and "scan:B:aging_transfers" in entries
    assert not any(name.endswith(":aging_backorders") for name in entries)  # off for everyone
    odd = entries["scan:B:overdue_receipts"]["schedule"]  # 45 min does not divide the hour
    assert isinstance(odd, schedule) and odd.run_every.total_seconds() == 45 * 60
    assert entries["scan:A:stock_anomalies"]["schedule"]._orig_hour == "*/2"
    rows = describe(entries)
    assert {r["name"] for r in rows} == set(entries) and all(r["expires"] > 0 for r in rows)


def _minutes_of_the_hour(entry: dict) -> set[int]:
    sched = entry["schedule"]
    assert isinstance(sched, crontab), entry
    return set(sched.minute)


def test_at_50_sites_each_kind_is_spread_evenly_over_its_period(tmp_path: Path) -> None:
    """The old stagger (index*3 + kind) put 13 aging-transfer scans in one minute at 50 sites."""
    path = tmp_path / "sites.toml"
    path.write_text("""
[policy]
site_tunable = ["schedules"]
[policy.defaults.schedules]
aging_transfers = 15
overdue_receipts = 30
stock_anomalies = 60
aging_backorders = 120
""" + "".join(f'[sites.S{i:02d}]\nresponsible = ["ops"]\n' for i in range(50)))
    entries = build_beat_schedule(load_registry(path))
    from siteops.rules.findings import KINDS

    for kind in KINDS:
        per_minute = [0] * 60
        scans = [e for name, e in entries.items() if name.endswith(f":{kind}")]
        assert len(scans) == 50
        for entry in scans:
            for minute in _minutes_of_the_hour(entry):
                per_minute[minute] += 1
        assert max(per_minute) - min(per_minute) <= 1, (kind, per_minute)


def test_the_demo_network_has_no_two_scans_in_the_same_minute() -> None:
    """20 scans, 48 starts an hour: the hour has room for every one in its own minute."""
    entries = build_beat_schedule(load_registry(ROOT / "sites.toml"))
    per_minute = [0] * 60
    for name, entry in entries.items():
        if name.startswith("scan:"):
            for minute in _minutes_of_the_hour(entry):
                per_minute[minute] += 1
    assert max(per_minute) == 1, per_minute
