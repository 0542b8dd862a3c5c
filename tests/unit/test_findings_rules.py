"""The life of a finding, and the rules that raise them (pure functions, no I/O)."""

from __future__ import annotations

import datetime as dt

from siteops.rules.findings import Known, Observation, plan, severity_by_multiple
from siteops.rules.stock import (
    abnormal_adjustments,
    aging_backorders,
    aging_transfers,
    overdue_receipts,
    quant_anomalies,
)

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
PARAMS = {"transfer_aging_hours": 48, "receipt_grace_days": 2, "backorder_aging_days": 7,
          "variance_qty_threshold": 5.0, "variance_value_review": 250.0, "variance_value_finance": 2500.0,
          "anomaly_mad_score": 6.0}


def ago(**kw: float) -> str:
    return (NOW - dt.timedelta(**kw)).strftime("%Y-%m-%d %H:%M:%S")


def obs(record_id: int, severity: int = 1) -> Observation:
    return Observation(site="NORTH", kind="aging_transfers", rule="aging_transfer", model="stock.picking",
                       record_id=record_id, record_name=f"NORTH/INT/{record_id}", severity=severity, title="t",
                       rule_version="1", params={"transfer_aging_hours": 48})


def known(record_id: int, *, status: str = "open", age: dt.timedelta = dt.timedelta(hours=1),
          escalated: bool = False) -> Known:
    return Known(id=100 + record_id, fingerprint=obs(record_id).fingerprint, status=status, severity=1,
                 first_seen=NOW - age, escalated_at=NOW if escalated else None)


def test_new_problems_open_seen_ones_are_touched_gone_ones_resolve() -> None:
    p = plan([known(1), known(2)], [obs(2), obs(3)], complete=True, now=NOW, escalate_after=dt.timedelta(hours=24))
    assert [o.record_id for o in p.open] == [3]
    assert [k.id for k, _ in p.touch] == [102]
    assert [k.id for k in p.resolve] == [101]
    assert p.escalate == []


def test_a_scan_that_did_not_complete_resolves_nothing() -> None:
    p = plan([known(1), known(2)], [obs(2)], complete=False, now=NOW, escalate_after=dt.timedelta(hours=24))
    assert p.resolve == []


def test_escalation_fires_once_and_not_for_acknowledged_findings() -> None:
    day = dt.timedelta(hours=24)
    old = dt.timedelta(hours=30)
    p = plan([known(1, age=old), known(2, age=old, escalated=True), known(3, age=old, status="acknowledged")],
             [obs(1), obs(2), obs(3)], complete=True, now=NOW, escalate_after=day)
    assert [k.id for k, _ in p.escalate] == [101]
    assert sorted(k.id for k, _ in p.touch) == [102, 103]


def test_the_same_record_twice_in_one_scan_is_one_finding() -> None:
    p = plan([], [obs(5), obs(5)], complete=True, now=NOW, escalate_after=dt.timedelta(hours=24))
    assert len(p.open) == 1


def test_severity_grows_with_multiples_of_the_threshold() -> None:
    assert [severity_by_multiple(v, 10) for v in (11, 20, 45, 80, 1000)] == [1, 2, 3, 4, 4]


def test_aging_transfers_by_state_and_age() -> None:
    pickings = [
        {"id": 1, "name": "A", "state": "assigned", "scheduled_date": ago(hours=49)},
        {"id": 2, "name": "B", "state": "waiting", "scheduled_date": ago(hours=47)},
        {"id": 3, "name": "C", "state": "done", "scheduled_date": ago(hours=500)},
        {"id": 4, "name": "D", "state": "confirmed", "scheduled_date": ago(hours=400)},
    ]
    found = {o.record_id: o for o in aging_transfers("NORTH", pickings, PARAMS, NOW)}
    assert sorted(found) == [1, 4]
    assert found[1].severity == 1 and found[4].severity == 4
    assert found[4].params == {"transfer_aging_hours": 48.0} and found[4].rule_version == "1"


def test_overdue_receipts_name_the_order_and_vendor() -> None:
    receipts = [
        {"id": 7, "name": "NORTH/IN/7", "state": "assigned", "scheduled_date": ago(days=5), "origin": "P00042",
         "partner_id": [3, "Acme Supplies"]},
        {"id": 8, "name": "NORTH/IN/8", "state": "assigned", "scheduled_date": ago(days=1), "origin": "P00043",
         "partner_id": [3, "Acme Supplies"]},
        {"id": 9, "name": "NORTH/IN/9", "state": "cancel", "scheduled_date": ago(days=50), "origin": "P1",
         "partner_id": False},
    ]
    [found] = overdue_receipts("NORTH", receipts, PARAMS, NOW)
    assert found.record_id == 7 and found.details["purchase_order"] == "P00042"
    assert found.details["vendor"] == "Acme Supplies" and found.details["days_overdue"] == 3.0


def test_aging_backorders_need_a_backorder_of() -> None:
    pickings = [
        {"id": 1, "name": "X", "state": "assigned", "scheduled_date": ago(days=30), "backorder_id": [9, "WH/OUT/9"]},
        {"id": 2, "name": "Y", "state": "assigned", "scheduled_date": ago(days=30), "backorder_id": False},
        {"id": 3, "name": "Z", "state": "assigned", "scheduled_date": ago(days=2), "backorder_id": [9, "WH/OUT/9"]},
    ]
    assert [o.record_id for o in aging_backorders("NORTH", pickings, PARAMS, NOW)] == [1]


def test_quant_anomalies_negative_reserved_and_count_variance_levels() -> None:
    quants = [
        {"id": 1, "product_id": [10, "Bolt"], "location_id": [5, "NORTH/Stock"], "quantity": -4,
         "reserved_quantity": 0},
        {"id": 2, "product_id": [10, "Bolt"], "location_id": [5, "NORTH/Stock"], "quantity": 3,
         "reserved_quantity": 8},
        {"id": 3, "product_id": [11, "Motor"], "location_id": [5, "NORTH/Stock"], "quantity": 50,
         "reserved_quantity": 0, "inventory_quantity_set": True, "inventory_diff_quantity": -20},
        {"id": 4, "product_id": [10, "Bolt"], "location_id": [5, "NORTH/Stock"], "quantity": 50,
         "reserved_quantity": 0, "inventory_quantity_set": True, "inventory_diff_quantity": -20},
        {"id": 5, "product_id": [12, "Crate"], "location_id": [5, "NORTH/Stock"], "quantity": 50,
         "reserved_quantity": 0, "inventory_quantity_set": True, "inventory_diff_quantity": 30},
        {"id": 6, "product_id": [11, "Motor"], "location_id": [5, "NORTH/Stock"], "quantity": 50,
         "reserved_quantity": 10, "inventory_quantity_set": True, "inventory_diff_quantity": 2},
    ]
    prices = {10: 1.0, 11: 400.0, 12: 20.0}
    found = {(o.record_id, o.rule): o for o in quant_anomalies("NORTH", quants, prices, PARAMS)}
    assert set(found) == {(1, "negative_quant"), (2, "reserved_above_on_hand"), (3, "count_variance_finance"),
                          (5, "count_variance_review")}
    # 20 x 400 = 8,000 > 2,500: finance reviews; 30 x 20 = 600: the warehouse manager does.
    assert found[(3, "count_variance_finance")].severity > found[(5, "count_variance_review")].severity


def test_abnormal_adjustments_against_the_products_own_history() -> None:
    qtys = [10, 12, 9, 11, 10, 13, 8, 10, 11, 12, 9, 10, 400, 11]
    moves = [{"id": i, "product_id": [10, "Bolt"], "quantity": q, "state": "done", "reference": f"M{i}",
              "is_inventory": i in (12, 13)} for i, q in enumerate(qtys)]
    moves += [{"id": 100 + i, "product_id": [11, "Motor"], "quantity": q, "state": "done", "is_inventory": True}
              for i, q in enumerate([1, 1, 2, 1, 900])]  # too little history to judge
    # 400 is far out and an adjustment; 11 is an adjustment but normal.
    assert [o.record_id for o in abnormal_adjustments("NORTH", moves, PARAMS)] == [12]
    # The same quantity moved by a normal transfer is not an adjustment anomaly.
    moves[12]["is_inventory"] = False
    assert list(abnormal_adjustments("NORTH", moves, PARAMS)) == []
