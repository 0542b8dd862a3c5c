"""The approvals store on SQLite and PostgreSQL: one open request per key, tiers in order,
decisions applied once with segregation of duties, delegations, escalation once, the audit."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from siteops.rules.approvals import Refused, Routing, TierPlan, authorize

ROUTING = Routing("purchase-above-limit", "kind=purchase; amount > approval_limit (10000)", (
    TierPlan("category_management", ("cat.a", "cat.b"), "purchase.director", 24),
    TierPlan("finance", ("fin.a", "cat.a"), "cfo", 48)))


def new(key: str = "replenish:NORTH:7", requested_by: str = "admin", **kw):
    from siteops.store import approvals

    return approvals.create_request(site="NORTH", kind="purchase", requested_by=requested_by,
                                    record_model="purchase.order", routing=ROUTING, amount=12345.0, open_key=key,
                                    product_id=7, **kw)


def decide(rid: int, person: str, approve: bool = True, delegations=None, now=None):
    from siteops.store import approvals

    return approvals.decide(rid, person, approve, delegations=delegations or {}, authorize=authorize, now=now)


def test_tiers_in_order_one_open_request_per_key_and_sod(store_url: str) -> None:
    from siteops.store import approvals

    rid, created = new()
    assert created and new() == (rid, False)  # a replayed event finds the open request
    approvals.set_record(rid, "purchase.order", 41, created_by="admin")
    req = approvals.get(rid)
    assert req["status"] == "pending" and req["record"] == {"model": "purchase.order", "id": 41}
    assert [(t["group"], t["status"]) for t in req["tiers"]] == [("category_management", "pending"),
                                                                 ("finance", "waiting")]
    assert req["tiers"][0]["deadline"] and req["tiers"][1]["deadline"] is None
    with pytest.raises(Refused, match="requested this approval"):
        decide(rid, "admin")  # the requester is told so, approver or not
    assert decide(rid, "cat.a")["outcome"] == "tier_approved"
    with pytest.raises(Refused) as refused:
        decide(rid, "cat.a")  # approver of tier 2 too, but decided tier 1
    assert refused.value.code == "earlier_tier"
    done = decide(rid, "fin.a")
    assert done["outcome"] == "approved"
    req = approvals.get(rid)
    assert req["status"] == "approved" and [t["decided_by"] for t in req["tiers"]] == ["cat.a", "fin.a"]
    assert approvals.unapplied("NORTH") == [rid]
    approvals.mark_applied(rid, "purchase order confirmed")
    assert approvals.unapplied("NORTH") == []
    # Closed: the key is free again, so a later shortage makes a new request.
    assert new()[1] is True
    actions = [a["action"] for a in approvals.audit(request_id=rid)]
    assert actions == ["requested", "refused", "approved", "tier_pending", "refused", "approved", "applied"]
    assert [a["action"] for a in approvals.audit(person="cat.a")] == ["approved", "refused"]
    assert [a["action"] for a in approvals.audit(record_model="purchase.order", record_id=41)] == actions
    assert approvals.stats()["sod_refusals"] == {"NORTH": 2}


def test_a_delegate_decides_as_the_approver_and_a_rejection_closes(store_url: str) -> None:
    from siteops.store import approvals

    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    approvals.add_delegation("cat.b", "deputy", until)
    approvals.add_delegation("old", "gone", dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    assert approvals.active_delegations() == {"cat.b": "deputy"}
    rid, _ = new()
    result = decide(rid, "deputy", delegations=approvals.active_delegations())
    assert result["as_delegate_of"] == "cat.b"
    # The delegate's principal counts as a decider of tier 1 as well.
    with pytest.raises(Refused):
        decide(rid, "cat.b", delegations=approvals.active_delegations())
    assert decide(rid, "fin.a", approve=False)["outcome"] == "rejected"
    req = approvals.get(rid)
    assert req["status"] == "rejected" and req["tiers"][0]["as_delegate_of"] == "cat.b"
    with pytest.raises(Refused, match="nothing to decide"):
        decide(rid, "fin.a")


def test_two_racing_decisions_move_a_tier_once(store_url: str) -> None:
    rid, _ = new()
    outcomes: list[str] = []

    def go(person: str) -> None:
        try:
            outcomes.append(decide(rid, person)["outcome"])
        except Refused as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=go, args=(p,)) for p in ("cat.a", "cat.b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    from siteops.store import approvals

    # The loser either saw the tier still pending and lost the guarded update, or came after
    # and decided the next tier as whoever it is there: cat.b is no approver of finance, and
    # cat.a may approve finance only when cat.b decided tier 1 (not an earlier decider).
    # Either way tier 1 was decided once.
    assert outcomes.count("tier_approved") == 1
    tier1 = [a["person"] for a in approvals.audit(request_id=rid)
             if a["action"] == "approved" and a["detail"].startswith("tier 1 ")]
    assert len(tier1) == 1 and tier1[0] in ("cat.a", "cat.b")
    allowed = {"not_pending", "not_an_approver"} | ({"approved"} if tier1[0] == "cat.b" else set())
    assert set(outcomes) - {"tier_approved"} <= allowed, (outcomes, tier1)


def test_an_overdue_tier_escalates_once(store_url: str) -> None:
    from siteops.store import approvals

    now = dt.datetime.now(dt.UTC)
    new(now=now - dt.timedelta(hours=30))
    assert [r["site"] for r in approvals.overdue(now)] == ["NORTH"]
    tier_id = approvals.overdue(now)[0]["tier_id"]
    assert approvals.mark_escalated(tier_id, now) is True
    assert approvals.mark_escalated(tier_id, now) is False
    assert approvals.overdue(now) == []
    assert approvals.stats(now)["escalations"] == {"NORTH": 1}
    assert approvals.stats(now)["oldest_pending_seconds"]["NORTH"] >= 30 * 3600 - 1


def test_the_approvals_commands(store_url: str) -> None:
    import json

    from typer.testing import CliRunner

    from siteops.cli import app
    from siteops.store import approvals

    rid, _ = new()
    approvals.set_record(rid, "purchase.order", 41, created_by="admin")
    runner = CliRunner()
    result = runner.invoke(app, ["approvals", "--site", "north", "--status", "pending", "--json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert {k: row[k] for k in ("id", "site", "kind", "status", "requested_by", "record")} == {
        "id": rid, "site": "NORTH", "kind": "purchase", "status": "pending", "requested_by": "admin",
        "record": {"model": "purchase.order", "id": 41}}
    assert [(t["group"], t["status"], t["decided_by"]) for t in row["tiers"]] == [
        ("category_management", "pending", None), ("finance", "waiting", None)]
    assert row["tiers"][0]["deadline"]
    shown = runner.invoke(app, ["approvals", "show", str(rid)])
    assert shown.exit_code == 0 and "routed by rule purchase-above-limit" in shown.output
    # Refusals exit 3 and say why, before any message is sent.
    refused = runner.invoke(app, ["approvals", "decide", str(rid), "--approve", "--as", "admin"])
    assert refused.exit_code == 3 and "admin requested this approval" in refused.output
    assert runner.invoke(app, ["approvals", "decide", "999", "--reject", "--as", "cat.a"]).exit_code == 3
    both = runner.invoke(app, ["approvals", "decide", str(rid), "--approve", "--reject", "--as", "cat.a"])
    assert both.exit_code == 2 and "exactly one" in both.output
    assert runner.invoke(app, ["approvals", "--status", "stuck"]).exit_code == 2
    past = runner.invoke(app, ["approvals", "delegate", "cat.a", "cat.b", "--until", "2001-01-01"])
    assert past.exit_code == 2 and "in the past" in past.output
    assert "not a date" in runner.invoke(app, ["approvals", "delegate", "cat.a", "cat.b", "--until", "soon"]).output
    assert approvals.active_delegations() == {}
    audit = runner.invoke(app, ["approvals", "audit", "--person", "admin", "--json"])
    assert [a["action"] for a in json.loads(audit.output)] == ["requested", "refused"]


def test_rejected_replenishment_is_the_latest_rejection_per_product_of_the_site(store_url: str) -> None:
    from siteops.store import approvals

    t0 = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
    old, _ = new("replenish:NORTH:7", now=t0)
    decide(old, "cat.b", approve=False, now=t0 + dt.timedelta(hours=1))
    approvals.mark_applied(old, "cancelled")
    latest, _ = new("replenish:NORTH:7", now=t0 + dt.timedelta(days=2))
    decide(latest, "cat.a", approve=False, now=t0 + dt.timedelta(days=2, hours=1))
    approved, _ = new("replenish:NORTH:8", now=t0)  # product 7 too (new() plants it): approved, holds nothing
    decide(approved, "cat.a", now=t0)
    decide(approved, "fin.a", now=t0)
    person, _ = approvals.create_request(site="NORTH", kind="purchase", requested_by="admin",
                                         record_model="purchase.order", routing=ROUTING, amount=1.0,
                                         open_key="record:purchase.order:9", record_id=9, now=t0)
    decide(person, "cat.a", approve=False, now=t0)  # a person's own order: no product, no hold

    got = approvals.rejected_replenishment("NORTH", [7, 8], t0)
    assert list(got) == [7]
    assert got[7]["request_id"] == latest and got[7]["rejected_by"] == "cat.a"
    assert approvals.rejected_replenishment("NORTH", [7], t0 + dt.timedelta(days=3)) == {}  # too old
    assert approvals.rejected_replenishment("SOUTH", [7], t0) == {}  # another site's
    assert approvals.rejected_replenishment("NORTH", [], t0) == {}
