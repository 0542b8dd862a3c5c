"""One active finding per problem and the alert ledger, on SQLite and PostgreSQL.

Each test applies plans computed from the same (stale) snapshot, as two overlapping scans
would: whatever the interleaving, a problem has one active finding, an escalation
happens once, and every opening or escalation owes its alerts exactly once.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
import sqlalchemy as sa

KIND = "aging_transfers"


def obs(site: str, record_id: int, severity: int = 2):
    from siteops.rules.findings import Observation

    return Observation(site=site, kind=KIND, rule="aging_transfer", model="stock.picking", record_id=record_id,
                       record_name=f"{site}/INT/{record_id}", severity=severity, title=f"picking {record_id} late",
                       rule_version="1", params={"transfer_aging_hours": 24})


def plan_for(site: str, seen, *, now: dt.datetime, escalate_after: dt.timedelta = dt.timedelta(hours=24)):
    from siteops.rules.findings import plan
    from siteops.store import findings

    return plan(findings.active(site, KIND), seen, complete=True, now=now, escalate_after=escalate_after)


def active_by_fingerprint(site: str) -> dict[str, int]:
    from collections import Counter

    from siteops.store import findings

    rows = [f for status in ("open", "acknowledged") for f in findings.search(site=site, kind=KIND, status=status)]
    return dict(Counter(f.fingerprint for f in rows))


def site() -> str:
    return "T" + uuid.uuid4().hex[:6].upper()


def test_two_scans_from_one_snapshot_open_each_problem_once(store_url: str) -> None:
    from siteops.store import alert_debts, findings
    from siteops.store.models import utcnow

    s, now = site(), utcnow()
    seen = [obs(s, i) for i in range(1, 6)]
    first, second = plan_for(s, seen, now=now), plan_for(s, seen, now=now)  # both saw nothing active
    a = findings.apply(first, now=now, channels=("odoo", "webhook"))
    b = findings.apply(second, now=now, channels=("odoo", "webhook"))
    assert len(a.opened) == 5 and b.opened == [] and b.raced == 5
    assert set(active_by_fingerprint(s).values()) == {1} and len(active_by_fingerprint(s)) == 5
    # Only the opening that happened owes alerts: one per channel.
    for finding_id in a.opened:
        assert sorted((d.event, d.channel) for d in alert_debts.debts_of(finding_id)) == [
            ("opened", "odoo"), ("opened", "webhook")]


def test_concurrent_applies_open_each_problem_once(store_url: str) -> None:
    from siteops.store import findings
    from siteops.store.models import utcnow

    s, now = site(), utcnow()
    seen = [obs(s, i) for i in range(1, 21)]
    plans = [plan_for(s, seen, now=now) for _ in range(6)]
    barrier = threading.Barrier(len(plans))
    results, errors = [], []

    def run(p) -> None:
        try:
            barrier.wait(10)
            results.append(findings.apply(p, now=now, channels=("odoo",)))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sum(len(r.opened) for r in results) == 20
    assert active_by_fingerprint(s) == {o.fingerprint: 1 for o in seen}


def test_a_resolved_problem_that_comes_back_is_a_new_finding(store_url: str) -> None:
    from siteops.store import findings
    from siteops.store.models import utcnow

    s, now = site(), utcnow()
    [first] = findings.apply(plan_for(s, [obs(s, 7)], now=now), now=now).opened
    assert findings.apply(plan_for(s, [], now=now), now=now).resolved == [first]
    [again] = findings.apply(plan_for(s, [obs(s, 7)], now=now), now=now).opened
    assert again != first and findings.get(first).status == "resolved" and findings.get(again).status == "open"


def test_escalation_and_resolution_are_guarded_by_the_status_they_expect(store_url: str) -> None:
    from siteops.store import alert_debts, findings
    from siteops.store.models import utcnow

    s, now = site(), utcnow()
    seen = [obs(s, 1), obs(s, 2)]
    opened = findings.apply(plan_for(s, seen, now=now), now=now, channels=("odoo",)).opened
    later = now + dt.timedelta(hours=30)
    # Two scans both see the findings due for escalation: it happens once, owed once.
    p1, p2 = plan_for(s, seen, now=later), plan_for(s, seen, now=later)
    assert len(p1.escalate) == 2
    assert sorted(findings.apply(p1, now=later, channels=("odoo",)).escalated) == sorted(opened)
    second = findings.apply(p2, now=later, channels=("odoo",))
    assert second.escalated == [] and second.raced == 2
    for finding_id in opened:
        assert [(d.event, d.channel) for d in alert_debts.debts_of(finding_id)] == [
            ("opened", "odoo"), ("escalated", "odoo")]
        assert findings.get(finding_id).severity == 3
    # A scan planned to resolve #1 while an operator acknowledged it: the acknowledgement stands.
    resolve = plan_for(s, [obs(s, 2)], now=later)
    assert [k.id for k in resolve.resolve] == [opened[0]]
    assert findings.acknowledge(opened[0], "north.manager").status == "acknowledged"
    assert findings.apply(resolve, now=later).resolved == []
    assert findings.get(opened[0]).status == "acknowledged"
    # Acknowledging a resolved finding leaves it resolved.
    assert findings.apply(plan_for(s, [obs(s, 1)], now=later), now=later).resolved == [opened[1]]
    assert findings.acknowledge(opened[1], "north.manager").status == "resolved"


def test_the_ledger_offers_each_unpaid_debt_to_one_sweeper_and_is_paid_once(store_url: str) -> None:
    from siteops.store import alert_debts, audit, findings
    from siteops.store.models import utcnow

    s, now = site(), utcnow()
    opened = findings.apply(plan_for(s, [obs(s, 1), obs(s, 2), obs(s, 3)], now=now), now=now,
                            channels=("odoo", "webhook")).opened
    mine = lambda debts: [d for d in debts if d.finding_id in opened]  # noqa: E731
    assert mine(alert_debts.unpaid(older_than=dt.timedelta(minutes=5))) == []  # within the grace
    owed = mine(alert_debts.unpaid(older_than=dt.timedelta(0)))
    assert len(owed) == 6
    # Two sweepers holding the same list: each debt is claimed by one of them.
    assert [alert_debts.claim_for_publish(d) for d in owed] == [True] * 6
    assert [alert_debts.claim_for_publish(d) for d in owed] == [False] * 6
    # A task attempt touches its debt; a paid one is not attempted again, nor paid twice.
    assert alert_debts.attempt(opened[0], "opened", "odoo") is True
    assert alert_debts.pay(opened[0], "opened", "odoo", "sent") is True
    assert alert_debts.pay(opened[0], "opened", "odoo", "moot", "late") is False
    assert alert_debts.attempt(opened[0], "opened", "odoo") is False
    assert alert_debts.pay(opened[1], "opened", "odoo", "moot", "record deleted") is True
    paid = {(d.finding_id, d.channel): (d.outcome, d.detail) for d in alert_debts.debts_of(opened[1])}
    assert paid[(opened[1], "odoo")] == ("moot", "record deleted") and paid[(opened[1], "webhook")] == (None, None)
    # An alert waiting in the dead-letter store is not re-published by the sweep.
    audit.add_dead_letter(task_id="t", task_name="siteops.alerts.send_webhook", site=s,
                          business_key=str(opened[2]), args=[s, opened[2], "opened"], kwargs={},
                          reason="retries_exhausted", error=RuntimeError("503"), attempts=4)
    unpaid = mine(alert_debts.unpaid(older_than=dt.timedelta(0), now=utcnow() + dt.timedelta(seconds=1)))
    assert {(d.finding_id, d.channel) for d in unpaid} == {
        (opened[1], "webhook"), (opened[2], "odoo"), (opened[2], "webhook"), (opened[0], "webhook")}
    parked = alert_debts.dead_lettered(unpaid, {"odoo": "siteops.alerts.notify_odoo",
                                                "webhook": "siteops.alerts.send_webhook"})
    assert parked == {(opened[2], "opened", "webhook")}


def test_migration_0005_resolves_duplicates_left_by_overlapping_scans(store_url: str) -> None:
    """A store that ran overlapping scans before 0005 holds duplicates: the oldest stays active."""
    from alembic import command

    from siteops.store.db import _alembic_config

    engine = sa.create_engine(store_url)
    try:
        with engine.begin() as conn:
            cfg = _alembic_config(store_url)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0002")
            now = dt.datetime.now(dt.UTC)
            row = dict(site="NORTH", kind=KIND, rule="r", model="stock.picking", record_id=1, severity=1,
                       title="t", details="{}", rule_version="1", params="{}", first_seen=now, last_seen=now)
            for fp, status in [("a", "open"), ("a", "open"), ("a", "acknowledged"), ("a", "resolved"),
                               ("b", "open")]:
                conn.execute(sa.text(
                    "INSERT INTO findings (fingerprint, site, kind, rule, model, record_id, status, severity, "
                    "title, details, rule_version, params, first_seen, last_seen) VALUES (:fp, :site, :kind, "
                    ":rule, :model, :record_id, :status, :severity, :title, :details, :rule_version, :params, "
                    ":first_seen, :last_seen)"), {**row, "fp": fp, "status": status})
            command.upgrade(cfg, "0005")
            rows = conn.execute(sa.text("SELECT fingerprint, status FROM findings ORDER BY id")).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [("a", "open"), ("a", "resolved"), ("a", "resolved"), ("a", "resolved"),
                                        ("b", "open")]


@pytest.mark.parametrize("model", ["stock.quant", "stock.move", "stock.picking"])
def test_every_finding_model_has_a_chatter_capable_alert_target(model: str) -> None:
    from siteops.services import alerts

    assert model in alerts.TARGETS
    assert "stock.quant" not in alerts.CHATTER_MODELS and "stock.move" not in alerts.CHATTER_MODELS
