"""The shipments store (SQLite and PostgreSQL) and the shipping rules."""

from __future__ import annotations

import datetime as dt

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
