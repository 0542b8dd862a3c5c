"""Replenishment with approvals end to end: a real NORTH worker, the Odoo simulator, the CLI.

Shortage (an orderpoint event) -> proposal -> request with tiers -> decisions (one by a
delegate, from the CLI; one in Odoo, an activity marked done) -> the transfer confirmed
and the purchase order confirmed in Odoo (EDI dispatch recorded as pending: the EDI task
is not deployed here); a requester deciding their own request refused; an overdue tier
escalated once; a replayed event creating nothing new.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import urllib.request
from typing import Any

import pytest

from tests.conftest import _free_port, poll, run_siteops

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def odoo():
    from siteops.config.sites import get_registry
    from siteops.connectors.odoo import reset_client
    from siteops.sim.odoo import start

    sim = start(port=_free_port(), seed=11, scale=1, sites=get_registry())
    saved = {k: os.environ.get(k) for k in ("SITEOPS_ODOO_URL", "SITEOPS_ODOO_DB", "SITEOPS_ODOO_LOGIN",
                                            "SITEOPS_ODOO_PASSWORD")}
    os.environ.update(SITEOPS_ODOO_URL=sim.url, SITEOPS_ODOO_DB="demo", SITEOPS_ODOO_LOGIN="admin",
                      SITEOPS_ODOO_PASSWORD="admin")
    reset_client()
    yield sim
    sim.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    reset_client()


def siteops(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    return run_siteops(*args, code=code)


def rpc(url: str, login: str, model: str, method: str, args: list[Any], kwargs: dict[str, Any] | None = None) -> Any:
    """One JSON-RPC call as `login` (demo users' password is their login): a person in Odoo."""
    def post(service: str, method_: str, params: list[Any]) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1,
                           "params": {"service": service, "method": method_, "args": params}}).encode()
        req = urllib.request.Request(f"{url}/jsonrpc", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            reply = json.loads(resp.read())
        assert "error" not in reply, reply
        return reply.get("result")

    uid = post("common", "login", ["demo", login, login])
    return post("object", "execute_kw", ["demo", uid, login, model, method, args, kwargs or {}])


def run(name: str, *args: Any, timeout: float = 60) -> Any:
    from siteops.celery_app import app

    return app.send_task(name, args=list(args)).get(timeout=timeout)


def test_shortages_become_requests_approved_by_policy_with_sod_delegation_and_escalation(stack, odoo) -> None:
    from siteops.celery_app import app
    from siteops.connectors.odoo import get_client
    from siteops.store import approvals
    from siteops.tasks.approvals import escalate_overdue

    stack.worker("NORTH", concurrency=2)
    client = get_client("NORTH")
    truth = odoo.server.truth["replenishment"]["NORTH"]
    products = truth["covered"] + truth["uncovered"]
    ops = {int(r["product_id"][0]): int(r["id"]) for r in client.search_read(
        "stock.warehouse.orderpoint", [("product_id", "in", products), ("warehouse_id.code", "=", "NORTH")],
        ["product_id"])}

    # 1. The orderpoint events (as the ingress or the catch-up enqueues them) -> requests.
    for pid in products:
        result = run("siteops.events.record_changed", "NORTH", "stock.warehouse.orderpoint", ops[pid])
        assert [f["task"] for f in result["follow_ups"]] == ["siteops.replenish.check_product"]
        for f in result["follow_ups"]:
            app.AsyncResult(f["task_id"]).get(timeout=60)
    by_product = {r["product_id"]: r for r in approvals.search(site="NORTH") if r["product_id"] in products}
    assert {pid: by_product[pid]["kind"] for pid in products} == {
        **{p: "transfer" for p in truth["covered"]}, **{p: "purchase" for p in truth["uncovered"]}}
    transfer = next(r for p, r in by_product.items() if r["kind"] == "transfer" and r["tiers"])
    purchase = by_product[truth["uncovered"][0]]
    assert transfer["rule"] == "transfer-above-value" and transfer["tiers"][0]["approvers"] == ["north.manager"]
    assert purchase["rule"] == "purchase-local" and purchase["status"] == "pending"
    picking = client.read("stock.picking", [transfer["record"]["id"]], ["state", "location_id", "origin"])[0]
    assert picking["state"] == "draft" and picking["origin"] == f"siteops-approval-{transfer['id']}"
    activity = client.search_read("mail.activity", [("res_model", "=", "stock.picking"),
                                                    ("res_id", "=", transfer["record"]["id"])], ["user_id"])
    assert [a["user_id"][1] for a in activity] == ["North Manager"]

    # 2. A replayed event creates nothing new (no request, no Odoo record).
    origins = client.search_count("stock.picking", [("origin", "like", "siteops-approval-")]) + \
        client.search_count("purchase.order", [("origin", "like", "siteops-approval-")])
    count = len(approvals.search(site="NORTH"))
    for f in run("siteops.events.record_changed", "NORTH", "stock.warehouse.orderpoint",
                 ops[transfer["product_id"]])["follow_ups"]:
        assert app.AsyncResult(f["task_id"]).get(timeout=60)["requests"] == []
    assert len(approvals.search(site="NORTH")) == count
    assert client.search_count("stock.picking", [("origin", "like", "siteops-approval-")]) + \
        client.search_count("purchase.order", [("origin", "like", "siteops-approval-")]) == origins

    # 3. A delegate approves the transfer from the CLI; the worker confirms the picking.
    until = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    siteops("approvals", "delegate", "north.manager", "north.deputy", "--until", until)
    out = siteops("approvals", "decide", str(transfer["id"]), "--approve", "--as", "north.deputy").stdout
    assert "approved" in out and "as delegate of north.manager" in out
    poll(lambda: approvals.get(transfer["id"])["applied_at"], 30, "the transfer confirmed in Odoo")
    assert client.read("stock.picking", [transfer["record"]["id"]], ["state"])[0]["state"] != "draft"
    assert approvals.get(transfer["id"])["tiers"][0]["as_delegate_of"] == "north.manager"

    # 4. The manager approves the purchase in Odoo (activity done, feedback "approve").
    act = client.search("mail.activity", [("res_model", "=", "purchase.order"),
                                          ("res_id", "=", purchase["record"]["id"])])
    rpc(odoo.url, "north.manager", "mail.activity", "action_feedback", [act], {"feedback": "Approve, thanks"})
    synced = run("siteops.approvals.sync", "NORTH")
    assert synced["decided"] == 1 and synced["human_requests"] > 0 and synced["proposed"] >= 0
    done = approvals.get(purchase["id"])
    assert done["status"] == "approved" and done["tiers"][0]["decided_by"] == "north.manager"
    # The EDI connector is deployed here: the approved order is handed to siteops.edi.dispatch_po.
    assert done["applied"].startswith("purchase order confirmed; EDI dispatch enqueued ")
    assert client.read("purchase.order", [purchase["record"]["id"]], ["state"])[0]["state"] == "purchase"
    # The sync's replenishment pass counts what is on its way in: the confirmed transfer and
    # the PO's receipt close their shortages, so neither product gets a second request.
    for pid in (transfer["product_id"], purchase["product_id"]):
        assert len([r for r in approvals.search(site="NORTH") if r["product_id"] == pid]) == 1

    # 5. Segregation of duties on a human requester: the branch user's own PO (drafted above
    #    the double validation amount) cannot be approved by them, even as a category approver.
    human = next(r for r in approvals.search(site="NORTH", status="pending")
                 if r["kind"] == "purchase" and r["requested_by"] == "north.manager")
    refused = siteops("approvals", "decide", str(human["id"]), "--approve", "--as", "north.manager", code=3)
    assert "north.manager requested this approval" in refused.stderr
    assert approvals.audit(request_id=human["id"])[-1]["action"] == "refused"
    listed = json.loads(siteops("approvals", "--site", "NORTH", "--status", "pending", "--json").stdout)
    row = next(r for r in listed if r["id"] == human["id"])
    assert row["record"] == {"model": "purchase.order", "id": human["record"]["id"]}
    assert [t["status"] for t in row["tiers"]] == ["pending", "waiting"]

    # 6. A tier past its deadline escalates once: one note, one activity, one audit row.
    from sqlalchemy import update

    from siteops.store.approvals import ApprovalTier
    from siteops.store.db import get_engine

    tier_id = human["tiers"][0]["id"]
    with get_engine().begin() as conn:
        conn.execute(update(ApprovalTier).where(ApprovalTier.id == tier_id)
                     .values(deadline=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
    assert escalate_overdue(app) >= 1
    escalate_overdue(app)  # the next pass, while the first escalation may still be queued
    poll(lambda: approvals.get(human["id"])["tiers"][0]["escalated_at"], 30, "the tier escalated")
    poll(lambda: escalate_overdue(app) == 0 or None, 30, "nothing overdue left")
    notes = client.search_read("mail.message", [("model", "=", "purchase.order"),
                                                ("res_id", "=", human["record"]["id"]),
                                                ("body", "ilike", "past its deadline")], ["body"])
    assert len(notes) == 1 and "escalated to purchase.director" in notes[0]["body"]
    assert [a["action"] for a in approvals.audit(request_id=human["id"])].count("escalated") == 1
    assert client.search_count("mail.activity", [("res_model", "=", "purchase.order"),
                                                 ("res_id", "=", human["record"]["id"]),
                                                 ("user_id.login", "=", "purchase.director")]) == 1

    # 7. The operator's numbers: the exporter and the sites report read the same store.
    import redis
    from prometheus_client import generate_latest

    from siteops.config.sites import get_registry
    from siteops.observability.exporter import build_registry
    from siteops.services.report import collect

    text = generate_latest(build_registry(get_registry(), redis.Redis.from_url(os.environ["SITEOPS_BROKER_URL"])))
    metrics = text.decode()
    assert 'siteops_approvals_escalations{site="NORTH"} 1.0' in metrics
    assert 'siteops_approvals_sod_refusals{site="NORTH"}' in metrics
    assert 'siteops_approvals_pending{group="category_management",site="NORTH"}' in metrics
    north = next(s for s in collect(["NORTH"]) if s.site == "NORTH")
    assert north.approval_cycle_s is not None and north.approvals_pending > 0
