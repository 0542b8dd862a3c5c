"""The shipments store (SQLite and PostgreSQL) and the shipping rules."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from siteops.connectors.carriers.model import TrackStatus
from siteops.rules import shipping as rules
from siteops.store.models import utcnow

LABEL = {"shipment_id": "shp_1", "tracking_code": "9400000000000000000001", "tracker_id": "trk_1",
         "carrier": "USPS", "service": "GroundAdvantage", "amount": "6.10", "currency": "USD"}


def test_a_label_is_recorded_once_and_statuses_only_move_forward(store_url: str) -> None:
    from siteops.store import shipments

    row = shipments.record_label(site="NORTH", picking_id=7, picking_name="NORTH/OUT/00007", account="simship",
                                 label=LABEL)
    again = shipments.record_label(site="NORTH", picking_id=7, picking_name="NORTH/OUT/00007", account="simship",
                                   label=LABEL)
    assert again.id == row.id and len(shipments.search(site="NORTH")) == 1
    assert shipments.by_tracking_code(LABEL["tracking_code"]).picking_id == 7

    def apply(status: str, at: str, event: str | None = None) -> bool:
        return shipments.apply_status(row.id, status=status, carrier_status=status, detail=None, message=None,
                                      occurred_at=at, event_id=event).changed

    assert apply("in_transit", "2026-12-01T10:00:00Z", "evt_1")
    assert not apply("in_transit", "2026-12-01T10:00:00Z", "evt_1")  # the same event again
    assert not apply("pre_transit", "2026-12-01T09:00:00Z", "evt_0")  # a late, older event
    assert apply("delivered", "2026-12-01T12:00:00Z", "evt_2")
    assert shipments.get("NORTH", 7).status == "delivered"
    assert shipments.search(status="delivered")[0].id == row.id
    assert ("NORTH", "delivered", 1) in shipments.status_counts()


def test_due_for_tracking_skips_terminal_and_recently_polled(store_url: str) -> None:
    from siteops.store import shipments

    ids = []
    for i in range(3):
        label = dict(LABEL, shipment_id=f"shp_{i}", tracking_code=f"C{i}")
        ids.append(shipments.record_label(site="WEB", picking_id=i, picking_name=f"WEB/OUT/{i}", account="simship",
                                          label=label).id)
    shipments.apply_status(ids[0], status="delivered", carrier_status="delivered", detail=None, message=None,
                           occurred_at="2026-12-01T10:00:00Z", event_id=None)
    shipments.apply_status(ids[1], status="in_transit", carrier_status="in_transit", detail=None, message=None,
                           occurred_at="2026-12-01T10:00:00Z", event_id=None, polled=True)
    terminal = tuple(str(s) for s in (TrackStatus.DELIVERED, TrackStatus.RETURNED))
    due = shipments.due_for_tracking("WEB", terminal=terminal, before=utcnow() - dt.timedelta(minutes=1), limit=10)
    assert [r.id for r in due] == [ids[2]]
    due = shipments.due_for_tracking("WEB", terminal=terminal, before=utcnow() + dt.timedelta(minutes=1), limit=10)
    assert [r.id for r in due] == [ids[2], ids[1]]  # never polled first


def test_rules_for_exceptions_returns_and_readiness() -> None:
    view = {"picking_id": 3, "picking": "NORTH/OUT/3", "tracking_code": "C", "carrier": "USPS", "message": "lost"}
    exc = rules.observation("NORTH", view, "exception", {"carrier": "simship"})
    ret = rules.observation("NORTH", view, "returned", {})
    assert exc and exc.kind == "shipment_exceptions" and exc.rule == "carrier_exception" and "lost" in exc.title
    assert ret and ret.rule == "carrier_return" and ret.fingerprint != exc.fingerprint
    assert rules.observation("NORTH", view, "in_transit", {}) is None
    assert rules.resolves("delivered", "carrier_exception") and not rules.resolves("delivered", "carrier_return")
    ready = {"picking_type_code": "outgoing", "state": "assigned", "carrier_tracking_ref": False}
    assert rules.ready_to_ship(ready) is None
    assert rules.ready_to_ship({**ready, "carrier_tracking_ref": "X"}) == "already has a tracking reference"
    assert "not ready" in (rules.ready_to_ship({**ready, "state": "confirmed"}) or "")


def test_beat_gets_a_label_run_and_a_tracking_poll_per_site_that_ships(tmp_path: Path) -> None:
    from siteops.config.sites import load_registry
    from siteops.schedules import build_beat_schedule
    from tests.conftest import ROOT

    entries = build_beat_schedule(load_registry(ROOT / "sites.toml"))
    north = entries["shipping:NORTH:sync_tracking"]
    assert north["task"] == "siteops.shipping.sync_tracking" and north["args"] == ["NORTH"]
    assert north["options"]["queue"] == "site.NORTH" and north["schedule"] == 600
    assert entries["shipping:EAST:ship_ready"]["schedule"] == 300
    path = tmp_path / "sites.toml"
    path.write_text("""
[policy]
site_tunable = ["schedules", "carrier"]
[policy.defaults]
carrier = "simship"
[policy.defaults.schedules]
aging_transfers = 15
ship_ready = 5
[sites.A]
responsible = ["a"]
schedules = { ship_ready = 0 }
[sites.B]
responsible = ["b"]
carrier = ""
""")
    entries = build_beat_schedule(load_registry(path))
    assert "shipping:A:ship_ready" not in entries and "shipping:A:sync_tracking" in entries
    assert not [name for name in entries if name.startswith("shipping:B:")]  # no carrier, no shipping


def test_the_shipments_command_lists_and_filters(store_url: str) -> None:
    import json

    from typer.testing import CliRunner

    from siteops.cli import app
    from siteops.store import shipments

    shipments.record_label(site="WEB", picking_id=1, picking_name="WEB/OUT/1", account="simship", label=LABEL)
    runner = CliRunner()
    result = runner.invoke(app, ["shipments", "--site", "WEB", "--json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert row["picking"] == "WEB/OUT/1" and row["tracking_code"] == LABEL["tracking_code"]
    assert json.loads(runner.invoke(app, ["shipments", "--status", "delivered", "--json"]).output) == []
    bad = runner.invoke(app, ["shipments", "--status", "lost"])
    assert bad.exit_code == 2 and "expected one of" in bad.output
