"""Currencies and purchase double validation as Odoo 17 does them (odoo.md §9.7):
`amount_total < company.currency_id._convert(po_double_validation_amount, order.currency_id,
company, order.date_order)`, a Purchase Manager bypasses it, `button_approve` silently skips
what its user may not approve; and siteops routes the amount in the company's currency."""

from __future__ import annotations

import datetime as dt
from typing import Any

import odoorpc
import pytest

from siteops.sim.odoo import OdooSim, currency
from siteops.sim.odoo.store import Database


def login(sim: OdooSim, user: str) -> odoorpc.ODOO:
    client = odoorpc.ODOO(sim.host, port=sim.port, timeout=10)
    client.login("demo", user, user if user != "admin" else "admin")
    return client


def eur_order(odoo: odoorpc.ODOO, date_order: str, qty: float = 40, **extra: Any) -> int:
    """9,200 EUR at qty 40 (8,000 + 15% tax): numerically below the company's 10,000 USD."""
    eur = odoo.env["res.currency"].search([("name", "=", "EUR")])[0]
    vendor = odoo.env["res.partner"].search([("ref", "=", "V9001")])[0]
    in_type = odoo.execute_kw("stock.picking.type", "search", [[("code", "=", "incoming")]], {"limit": 1})[0]
    product = odoo.env["product.product"].search([("standard_price", ">", 1)], limit=1)[0]
    return odoo.env["purchase.order"].create({
        "partner_id": vendor, "picking_type_id": in_type, "currency_id": eur, "date_order": date_order,
        "order_line": [(0, 0, {"product_id": product, "product_qty": qty, "price_unit": 200.0})], **extra})


def states(odoo: odoorpc.ODOO, *ids: int) -> list[str]:
    rows = {r["id"]: r["state"] for r in odoo.env["purchase.order"].read(list(ids), ["state"])}
    return [rows[i] for i in ids]


def test_the_threshold_is_converted_at_the_rate_of_the_orders_date(fresh_sim: OdooSim,
                                                                   fresh_odoo: odoorpc.ODOO) -> None:
    rates = fresh_sim.server.truth["currencies"]["EUR"]["rates"]  # {'2025-11-02': 0.95, '2026-01-31': 0.86, ...}
    switch = max(rates)  # the day the newest rate (0.86) starts
    assert rates[switch] == 0.86 and 0.95 in rates.values()
    eve = (dt.date.fromisoformat(switch) - dt.timedelta(days=1)).isoformat()
    before, on_switch = eur_order(fresh_odoo, f"{eve} 23:59:59"), eur_order(fresh_odoo, f"{switch} 00:00:00")
    PO = fresh_odoo.env["purchase.order"]
    read = {r["id"]: r for r in PO.read([before, on_switch], ["amount_total", "currency_id", "currency_rate"])}
    assert read[before]["amount_total"] == read[on_switch]["amount_total"] == 9200.0  # in the order's currency
    assert read[before]["currency_id"][1] == "EUR"
    assert (read[before]["currency_rate"], read[on_switch]["currency_rate"]) == (0.95, 0.86)
    buyer = login(fresh_sim, "cw.manager")  # a branch user: no Purchase Manager group
    buyer.execute_kw("purchase.order", "button_confirm", [[before, on_switch]])
    # 10,000 USD is 9,500 EUR the day before (9,200 < 9,500: approved), 8,600 EUR from the switch.
    assert states(fresh_odoo, before, on_switch) == ["purchase", "to approve"]
    assert PO.read([before], ["picking_ids"])[0]["picking_ids"]  # approved: its receipt exists


def test_a_purchase_manager_bypasses_and_a_user_without_the_group_is_skipped_silently(
        fresh_sim: OdooSim, fresh_odoo: odoorpc.ODOO) -> None:
    big, managers = eur_order(fresh_odoo, "2026-02-20 10:00:00"), eur_order(fresh_odoo, "2026-02-20 10:00:00")
    buyer = login(fresh_sim, "cw.manager")
    buyer.execute_kw("purchase.order", "button_confirm", [[big]])
    assert states(fresh_odoo, big) == ["to approve"]
    # button_approve filters the orders its user may approve: nothing, and no error.
    assert buyer.execute_kw("purchase.order", "button_approve", [[big]]) == {}
    assert states(fresh_odoo, big) == ["to approve"]
    assert not fresh_odoo.env["purchase.order"].read([big], ["picking_ids"])[0]["picking_ids"]
    # The admin is a Purchase Manager: the same amount confirms in one step, and approves.
    fresh_odoo.execute_kw("purchase.order", "button_confirm", [[managers]])
    fresh_odoo.execute_kw("purchase.order", "button_approve", [[big]])
    assert states(fresh_odoo, big, managers) == ["purchase", "purchase"]


def test_a_one_step_company_never_asks_for_the_second_approval(fresh_sim: OdooSim,
                                                               fresh_odoo: odoorpc.ODOO) -> None:
    fresh_odoo.execute_kw("res.company", "write", [[1], {"po_double_validation": "one_step"}])
    huge = eur_order(fresh_odoo, "2026-02-20 10:00:00", qty=4000)  # 920,000 EUR
    login(fresh_sim, "cw.manager").execute_kw("purchase.order", "button_confirm", [[huge]])
    assert states(fresh_odoo, huge) == ["purchase"]


def test_an_order_created_over_rpc_is_in_the_companys_currency(fresh_odoo: odoorpc.ODOO) -> None:
    # The vendor buys in EUR, but that is the form's onchange: create() takes the company's.
    vendor = fresh_odoo.env["res.partner"].search([("ref", "=", "V9001")])[0]
    assert fresh_odoo.env["res.partner"].read([vendor], ["property_purchase_currency_id"])[0][
        "property_purchase_currency_id"][1] == "EUR"
    in_type = fresh_odoo.execute_kw("stock.picking.type", "search", [[("code", "=", "incoming")]], {"limit": 1})[0]
    po = fresh_odoo.env["purchase.order"].create({"partner_id": vendor, "picking_type_id": in_type})
    row = fresh_odoo.env["purchase.order"].read([po], ["currency_id", "currency_rate"])[0]
    assert row["currency_id"][1] == "USD" and row["currency_rate"] == 1.0
    assert fresh_odoo.execute_kw("res.company", "read", [[1], ["currency_id"]])[0]["currency_id"][1] == "USD"
    # Moving the order's date re-computes its stored rate, as Odoo's depends say.
    eur = fresh_odoo.env["res.currency"].search([("name", "=", "EUR")])[0]
    fresh_odoo.execute_kw("purchase.order", "write", [[po], {"currency_id": eur, "date_order": "2025-12-01 08:00:00"}])
    assert fresh_odoo.env["purchase.order"].read([po], ["currency_rate"])[0]["currency_rate"] == 0.95


def test_the_demo_orders_are_decided_by_the_conversion(fresh_sim: OdooSim, fresh_odoo: odoorpc.ODOO) -> None:
    demo = fresh_sim.server.truth["currencies"]["EUR"]
    waiting, draft = demo["orders"]["to_approve"], demo["orders"]["draft"]
    rows = fresh_odoo.env["purchase.order"].read([waiting, draft], ["amount_total", "state", "currency_id"])
    assert [(r["amount_total"], r["currency_id"][1]) for r in rows] == [(9200.0, "EUR")] * 2
    assert all(r["amount_total"] < demo["double_validation_amount_usd"] for r in rows)  # below, numerically
    buyer = login(fresh_sim, "cw.manager")
    assert buyer.execute_kw("purchase.order", "button_approve", [[waiting]]) == {}
    buyer.execute_kw("purchase.order", "button_confirm", [[draft]])  # dated when 10,000 USD was 9,500 EUR
    assert states(fresh_odoo, waiting, draft) == ["to approve", "purchase"]


def test_get_rates_prefers_the_companys_own_rate_and_defaults_to_one() -> None:
    db = Database()
    db.insert("res.company", {"name": "Main", "currency_id": 1})
    db.insert("res.company", {"name": "Branch", "parent_id": 1, "currency_id": 1})
    usd, eur, gbp = (db.insert("res.currency", {"name": n, "symbol": n}) for n in ("USD", "EUR", "GBP"))
    db.insert("res.currency.rate", {"name": "2026-01-01", "rate": 0.90, "currency_id": eur})  # shared
    db.insert("res.currency.rate", {"name": "2025-06-01", "rate": 0.80, "currency_id": eur, "company_id": 1})
    db.insert("res.currency.rate", {"name": "2026-02-01", "rate": 0.85, "currency_id": eur, "company_id": 1})
    # A branch reads its root's rates; the company's own one wins over a newer shared one.
    assert currency.get_rates(db, [usd, eur, gbp], 2, "2026-01-15 12:00:00") == {usd: 1.0, eur: 0.80, gbp: 1.0}
    assert currency.get_rates(db, [eur], 1, "2026-02-01") == {eur: 0.85}
    assert currency.get_rates(db, [eur], 1, "2025-01-01") == {eur: 1.0}  # nothing on or before the date
    assert currency.conversion_rate(db, eur, usd, 1, "2026-02-01") == pytest.approx(1 / 0.85)
    assert currency.convert(db, 10000.0, usd, eur, 1, "2026-02-01") == 8500.0
    assert currency.convert(db, 0.0, usd, eur, 1, "2026-02-01") == 0.0
    assert currency.float_round(2.675, 0.01) == 2.68 and currency.float_round(-2.675, 0.01) == -2.68


def test_currency_reads_like_odoos(odoo: odoorpc.ODOO) -> None:
    rows = odoo.env["res.currency"].search_read([], ["name", "symbol", "rate", "decimal_places", "rate_ids"])
    by_name = {r["name"]: r for r in rows}
    assert by_name["USD"]["rate"] == 1.0 and by_name["USD"]["decimal_places"] == 2
    assert by_name["EUR"]["rate"] == 0.86 and len(by_name["EUR"]["rate_ids"]) == 3
    rates = odoo.env["res.currency.rate"].search_read([("currency_id.name", "=", "EUR")], ["name", "rate"])
    assert [r["name"] for r in rates] == sorted((r["name"] for r in rates), reverse=True)  # _order name desc


def test_siteops_routes_a_foreign_currency_order_by_its_amount_in_the_company_currency(tmp_path: Any) -> None:
    """The demo's 9,200 EUR order is 10,697.67 USD at its date's rate: above the policy's
    approval_limit (10,000, in the company's currency), so it needs category management
    and finance; routed on its face value it would have been a local purchase."""
    from siteops.config.sites import get_registry
    from siteops.connectors.odoo import get_client
    from siteops.rules import approvals as rules
    from siteops.services.approvals import Approvals, company_amount
    from siteops.store import approvals as store
    from tests.conftest import odoo_simulator, use_store

    with odoo_simulator(seed=3, scale=0.1) as sim, use_store(f"sqlite:///{tmp_path / 'store.db'}"):
        demo = sim.server.truth["currencies"]["EUR"]
        site = demo["site"]
        Approvals(site, get_client(site)).intake(lambda key, effect, **kw: effect(), lambda name, args: None)
        [request] = store.search(record_model="purchase.order", record_id=demo["orders"]["to_approve"])
        assert request["rule"] == "purchase-above-limit"
        assert [t["group"] for t in request["tiers"]] == ["category_management", "finance"]
        assert request["amount"] == pytest.approx(9200 / 0.86, abs=0.01)
        assert request["detail"]["currency"] == "EUR" and request["detail"]["amount_in_currency"] == 9200.0
        # The company's own orders are unchanged (rate 1); the face value alone routes elsewhere.
        assert company_amount({"amount_total": 11615.0, "currency_rate": 1.0}) == 11615.0
        assert company_amount({"amount_total": 11615.0, "currency_rate": False}) == 11615.0
        registry = get_registry()
        face = rules.route(registry.approvals, rules.Document("purchase", site, 9200.0, vendor_class="approved"),
                           params=registry.get(site).params, responsible=registry.get(site).responsible)
        assert face.rule != "purchase-above-limit"
