"""`siteops reconcile stock` and the approvals flow propose the same replenishment for the same
Odoo: the reconcile job's dry run (the service function, in small batches), the sync's
whole-site pass and the event path (one product at a time) against one in-process Odoo
simulator and a real SQLite store; no worker, so fast. Each test works on its own sites or
products, so their order does not matter."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import TMP, odoo_simulator, use_store

Key = tuple[int, str, str, float, int | None]  # product, site, kind, quantity, supplier
KIND = {"propose_transfer": "transfer", "propose_purchase": "purchase"}


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    with use_store(f"sqlite:///{TMP / f'replenish-{uuid.uuid4().hex[:6]}.db'}"), \
            odoo_simulator(seed=11, scale=0.3) as running:
        yield running


def odoo(site: str) -> Any:
    from siteops.connectors.odoo import get_client

    return get_client(site)


def via_reconcile(site: str) -> set[Key]:
    """What `siteops reconcile stock --site SITE --dry-run` would draft (batches of 4 orderpoints)."""
    from siteops.services import reconcile

    report = reconcile.run(site, "stock", f"dry-{uuid.uuid4().hex[:8]}", odoo=odoo(site), batch_size=4)
    assert report["dry_run"] and {c["outcome"] for c in report["changes"]} <= {"would_change", "reported"}
    return {(c["detail"]["product_id"], site, KIND[c["change"]], c["detail"]["quantity"], c["detail"]["supplier_id"]
             if c["change"] == "propose_purchase" else None) for c in report["changes"] if c["applies"]}


def via_approvals(site: str, product_ids: list[int] | None = None) -> set[Key]:
    from siteops.services.approvals import Approvals

    proposals, _ = Approvals(site, odoo(site)).proposals(product_ids)
    return {(p.product_id, p.site, p.kind, p.quantity, p.partner_id) for p in proposals}


def via_events(site: str) -> set[Key]:
    """`check_product`'s reading, once per product with an orderpoint at the site."""
    ops = odoo(site).search_read("stock.warehouse.orderpoint", [("warehouse_id.code", "=", site)], ["product_id"])
    out: set[Key] = set()
    for pid in sorted({o["product_id"][0] for o in ops}):
        out |= via_approvals(site, [pid])
    return out


def supplier_rows(site: str, pid: int, order: str | None = None) -> list[dict[str, Any]]:
    """The product's product.supplierinfo rows as Odoo keys them: its template's rows for
    every variant, and the ones for this variant (read here independently of siteops)."""
    client = odoo(site)
    (product,) = client.read("product.product", [pid], ["product_tmpl_id"])
    domain = ["|", ("product_id", "=", pid), "&", ("product_id", "=", False),
              ("product_tmpl_id", "=", product["product_tmpl_id"][0])]
    return list(client.search_read("product.supplierinfo", domain, ["partner_id", "sequence", "product_id"],
                                   **({"order": order} if order else {})))


def preferred(site: str, pid: int) -> int:
    """The lowest-sequence product.supplierinfo partner."""
    rows = supplier_rows(site, pid)
    return int(min(rows, key=lambda r: (r["sequence"], r["partner_id"][0]))["partner_id"][0])


def call(key: str, effect: Any, check: Any = None, on_unknown: Any = None) -> Any:
    """A task's idempotent_call, without the task."""
    from siteops.store import operations

    return operations.run_once(key, effect, check=check, on_unknown=on_unknown, site="NORTH", task_name="test",
                               task_id="test-1")


def test_reconcile_the_sync_and_the_events_propose_the_same(sim: Any) -> None:
    truth = sim.server.truth["replenishment"]
    for site in ("SOUTH", "EAST", "CW"):
        proposed = via_reconcile(site)
        assert proposed, site
        assert via_approvals(site) == proposed, site
        assert via_events(site) == proposed, site
        # ...and it is the rule: the planted shortages as planted, purchases to supplierinfo.
        kinds = {pid: kind for pid, _, kind, _, _ in proposed}
        for pid in truth.get(site, {}).get("covered", []):
            assert kinds[pid] == "transfer", (site, pid)
        for pid in truth.get(site, {}).get("uncovered", []):
            assert kinds[pid] == "purchase", (site, pid)
        assert all(s == preferred(site, pid) for pid, _, kind, _, s in proposed if kind == "purchase"), site
    # The central site never transfers to itself.
    assert {kind for _, _, kind, _, _ in via_reconcile("CW")} == {"purchase"}


def test_the_supplier_is_the_lowest_sequence_supplierinfo_not_the_latest_po_vendor(sim: Any) -> None:
    client = odoo("NORTH")
    (pid,) = sim.server.truth["replenishment"]["NORTH"]["uncovered"]
    infos = supplier_rows("NORTH", pid, order="sequence")
    first, second = infos[0]["partner_id"][0], infos[1]["partner_id"][0]
    # The latest purchase of the product at NORTH went to the second supplier (and was
    # cancelled, so nothing is on its way).
    ptype = client.search("stock.picking.type", [("warehouse_id.code", "=", "NORTH"), ("code", "=", "incoming")],
                          limit=1)[0]
    po = client.create("purchase.order", {"partner_id": second, "picking_type_id": ptype, "company_id": 1,
                                          "order_line": [(0, 0, {"product_id": pid, "name": "x", "product_qty": 5.0,
                                                                 "price_unit": 1.0})]})
    client.call("purchase.order", "button_cancel", [po])
    latest = client.search_read("purchase.order.line", [("product_id", "=", pid)], ["partner_id"],
                                order="id desc", limit=1)
    assert latest[0]["partner_id"][0] == second != first

    def supplier() -> tuple[int | None, int | None]:
        def of(keys: set[Key]) -> int | None:
            return next(s for p, _, kind, _, s in keys if p == pid and kind == "purchase")

        return of(via_reconcile("NORTH")), of(via_approvals("NORTH", [pid]))

    assert supplier() == (first, first)
    # The buyer makes the second supplier the preferred one: both follow.
    client.write("product.supplierinfo", [infos[1]["id"]], {"sequence": 0})
    try:
        assert supplier() == (second, second)
    finally:
        client.write("product.supplierinfo", [infos[1]["id"]], {"sequence": infos[1]["sequence"]})


def test_what_one_path_opened_the_other_does_not_propose_again(sim: Any) -> None:
    from siteops.rules.approvals import Routing
    from siteops.services import reconcile
    from siteops.services.approvals import Approvals
    from siteops.store import approvals as requests

    client = odoo("NORTH")
    truth = sim.server.truth["replenishment"]["NORTH"]
    before = via_reconcile("NORTH")
    assert via_approvals("NORTH") == before
    by_product = {key[0]: key for key in before}
    (asked, held), (drafted,) = sorted(truth["covered"]), truth["uncovered"]
    assert {asked, held, drafted} <= set(by_product)

    # 1. The approvals flow asks for one product: a request and its draft transfer in Odoo.
    made = Approvals("NORTH", client).check_product(call, asked, lambda name, args: None)
    assert [r["created"] for r in made["requests"]] == [True]
    # 2. A request open in the store alone (its record not made yet: a task died in between).
    requests.create_request(site="NORTH", kind="transfer", requested_by="siteops", record_model="stock.picking",
                            routing=Routing(rule="test", why="planted", tiers=()), amount=1.0,
                            open_key=f"replenish:NORTH:{held}", product_id=held)
    # 3. A real reconcile run drafts one product's proposal in Odoo (and no request).
    stock = reconcile.Stock(reconcile.get_registry().get("NORTH"), client, None, None)
    items, _, _ = stock.batch({}, 1000)
    (item,) = [i for i in items if i.record_id == drafted]
    done = stock.apply(item, call, f"reconcile:test:{item.key}")
    assert done["model"] in ("stock.picking", "purchase.order")

    after = via_reconcile("NORTH")
    assert after == via_approvals("NORTH") == via_events("NORTH")
    assert after == {by_product[p] for p in by_product if p not in (asked, held, drafted)}
    _, skipped = Approvals("NORTH", client).proposals([asked, held, drafted])
    why = {s.product_id: str(s) for s in skipped}
    # The request below every threshold was approved and confirmed at once: its open key is
    # released and its transfer, on its way, holds the product; the planted one holds it in the store.
    picked = requests.get(made["requests"][0]["request_id"])
    assert picked is not None
    (transfer,) = client.read("stock.picking", [picked["record"]["id"]], ["name"])
    assert transfer["name"] in why[asked] and "siteops request" in why[held], why
    (record,) = client.read(done["model"], [done["id"]], ["name"])
    assert record["name"] in why[drafted], why[drafted]  # the RFQ reconcile drafted, by name
    # A replayed event for the product asked for makes nothing new.
    assert Approvals("NORTH", client).check_product(call, asked, lambda name, args: None)["requests"] == []

    # Once the drafted record is cancelled, both propose it again (the same proposal as before).
    method = "action_cancel" if done["model"] == "stock.picking" else "button_cancel"
    client.call(done["model"], method, [done["id"]])
    again = via_reconcile("NORTH")
    assert by_product[drafted] in again and again == via_approvals("NORTH")


def test_a_rejected_proposal_is_held_for_the_policy_days_by_both_paths(sim: Any) -> None:
    import sqlalchemy as sa

    from siteops.rules.approvals import Routing, TierPlan, authorize
    from siteops.services.approvals import Approvals
    from siteops.store import approvals as requests
    from siteops.store import session

    before = via_reconcile("SOUTH")
    assert via_approvals("SOUTH") == before
    proposal = min(before)
    pid = proposal[0]
    tier = TierPlan(group="site_manager", approvers=("south.manager",), escalate_to="ops.director", deadline_hours=24)
    rid, created = requests.create_request(
        site="SOUTH", kind=proposal[2], requested_by="siteops", record_model="stock.picking",
        routing=Routing(rule="test", why="planted", tiers=(tier,)), amount=1.0, open_key=f"replenish:SOUTH:{pid}",
        product_id=pid)
    assert created
    # The manager says no; the outcome is applied (the open key released, as after Odoo's cancel).
    assert requests.decide(rid, "south.manager", False, delegations={}, authorize=authorize)["outcome"] == "rejected"
    requests.mark_applied(rid, "rejected: the draft cancelled")

    # Neither path proposes it again while the rejection holds; every other proposal stands.
    assert via_reconcile("SOUTH") == via_approvals("SOUTH") == via_events("SOUTH") == before - {proposal}
    _, skipped = Approvals("SOUTH", odoo("SOUTH")).proposals([pid])
    (why,) = [str(s) for s in skipped if s.product_id == pid]
    assert f"request #{rid} was rejected by south.manager" in why, why

    # A rejection at another site holds nothing here; one older than rejected_hold_days (7,
    # sites.toml) neither: the shortage is proposed again, the same as before.
    with session() as s:
        s.execute(sa.text("update approval_requests set site = 'NORTH' where id = :id"), {"id": rid})
        s.commit()
    assert via_approvals("SOUTH", [pid]) == {proposal}
    with session() as s:
        s.execute(sa.text("update approval_requests set site = 'SOUTH', closed_at = :at where id = :id"),
                  {"id": rid, "at": dt.datetime.now(dt.UTC) - dt.timedelta(days=7, minutes=1)})
        s.commit()
    assert via_reconcile("SOUTH") == via_approvals("SOUTH") == before


def test_suppliers_on_the_template_count_for_its_variant_and_expired_ones_do_not(sim: Any) -> None:
    from siteops.config.sites import get_registry
    from siteops.services.replenishment import Replenishment

    purchases = {(site, pid): s for site in ("CW", "NORTH", "SOUTH", "EAST", "WEB")
                 for pid, _, kind, _, s in via_approvals(site) if kind == "purchase"}
    rows = {key: supplier_rows(key[0], key[1], order="sequence") for key in purchases}
    # The demo keys suppliers like Odoo's product form: on the template (no variant) for some
    # products, and on the variant for others; the reader takes both.
    on_template = [key for key, r in rows.items() if not r[0]["product_id"]]
    on_variant = [key for key, r in rows.items() if r[0]["product_id"]]
    assert on_template and on_variant, rows
    for (site, pid), r in rows.items():
        read, _ = Replenishment(odoo(site), get_registry().get(site)).suppliers([pid])
        assert sorted(s.partner_id for s in read[pid]) == sorted(x["partner_id"][0] for x in r), pid
        assert purchases[site, pid] == r[0]["partner_id"][0], pid

    # The preferred supplier's price list ended yesterday: the next one is proposed, by both paths.
    site, pid = on_template[0]
    client = odoo(site)
    first, second = rows[site, pid][0], rows[site, pid][1]

    def proposed(keys: set[Key]) -> set[int | None]:
        return {s for p, _, kind, _, s in keys if p == pid and kind == "purchase"}

    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    client.write("product.supplierinfo", [first["id"]], {"date_end": yesterday})
    try:
        assert proposed(via_reconcile(site)) == proposed(via_approvals(site, [pid])) == {second["partner_id"][0]}
        # Starting tomorrow counts no more than ended yesterday.
        tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
        client.write("product.supplierinfo", [first["id"]], {"date_end": False, "date_start": tomorrow})
        assert proposed(via_approvals(site, [pid])) == {second["partner_id"][0]}
    finally:
        client.write("product.supplierinfo", [first["id"]], {"date_end": False, "date_start": False})
    assert proposed(via_approvals(site, [pid])) == {first["partner_id"][0]}
