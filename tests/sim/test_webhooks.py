"""Odoo 17's webhook server action, as the simulator sends it (odoo.md §4.1): receivers of
Odoo webhooks can be tested against the real payload shape."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import odoorpc

from siteops.sim.odoo import OdooSim
from tests.sim.conftest import wait_for


class Catcher:
    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.paths: list[str] = []
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                catcher.paths.append(self.path)
                catcher.calls.append((dict(self.headers), body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/odoo/t0ken"


def test_create_and_write_post_odoos_payload(fresh_sim: OdooSim, fresh_odoo: odoorpc.ODOO) -> None:
    catcher = Catcher()
    try:
        rule = httpx.post(f"{fresh_sim.url}/__sim__/webhooks", timeout=5, json={
            "model": "stock.picking", "url": catcher.url, "name": "Notify WMS",
            "fields": ["name", "state", "partner_id", "scheduled_date"]}).json()[0]
        picking = fresh_odoo.env["stock.picking"].search([("state", "=", "assigned")], limit=1)[0]
        fresh_odoo.execute_kw("stock.picking", "write", [[picking], {"origin": "S-WEBHOOK"}])
        headers, body = wait_for(lambda: catcher.calls, what="the webhook")[0]
        # Sorted keys, exactly as Odoo 17 serialises them, and only the JSON content type.
        assert body.decode() == json.dumps(json.loads(body), sort_keys=True)
        sent = json.loads(body)
        assert sent["_action"] == f"Notify WMS(#{rule['id']})"
        assert sent["_id"] == sent["id"] == picking and sent["_model"] == "stock.picking"
        assert sent["state"] == "assigned"
        assert isinstance(sent["partner_id"], int | bool)  # load=None: a bare id, never [id, name]
        assert len(sent["scheduled_date"]) >= 19 and sent["scheduled_date"][10] == " "
        assert headers["Content-Type"] == "application/json"
        assert not any(h.lower().startswith("x-") or h.lower() == "authorization" for h in headers)
    finally:
        catcher.server.shutdown()


def test_a_dead_receiver_does_not_fail_the_write(fresh_sim: OdooSim, fresh_odoo: odoorpc.ODOO) -> None:
    httpx.post(f"{fresh_sim.url}/__sim__/webhooks", timeout=5, json={
        "model": "res.partner", "url": "http://127.0.0.1:9/nobody", "trigger": "on_create"})
    partner = fresh_odoo.execute_kw("res.partner", "create", [{"name": "Webhook Test Ltd"}])
    assert fresh_odoo.execute_kw("res.partner", "read", [[partner], ["name"]])[0]["name"] == "Webhook Test Ltd"
    assert httpx.post(f"{fresh_sim.url}/__sim__/webhooks", timeout=5, json={"model": "x", "url": "u",
                                                                           "trigger": "sometimes"}).status_code == 400


def add_rule(sim: OdooSim, **rule: Any) -> httpx.Response:
    return httpx.post(f"{sim.url}/__sim__/webhooks", timeout=5, json=rule)


def picking_of(odoo: odoorpc.ODOO, code: str, state: str = "assigned") -> int:
    return odoo.env["stock.picking"].search([("picking_type_id.warehouse_id.code", "=", code),
                                             ("state", "=", state)], limit=1)[0]


def test_a_rule_fires_only_for_records_its_domain_matches(fresh_sim: OdooSim, fresh_odoo: odoorpc.ODOO) -> None:
    catcher = Catcher()
    try:
        add_rule(fresh_sim, model="stock.picking", url=catcher.url, name="CW pickings", fields=["state"],
                 domain=[["picking_type_id.warehouse_id.code", "=", "CW"]]).raise_for_status()
        north, cw = picking_of(fresh_odoo, "NORTH"), picking_of(fresh_odoo, "CW")
        # The POST is made inside the write (Odoo 17): when write returns, it was sent or not.
        fresh_odoo.execute_kw("stock.picking", "write", [[north], {"origin": "NOT-CW"}])
        assert catcher.calls == []
        fresh_odoo.execute_kw("stock.picking", "write", [[cw], {"origin": "CW-ONLY"}])
        assert [json.loads(body)["_id"] for _, body in catcher.calls] == [cw]
    finally:
        catcher.server.shutdown()


def test_a_rule_with_a_domain_odoo_would_not_save_is_refused(fresh_sim: OdooSim) -> None:
    bad = add_rule(fresh_sim, model="stock.picking", url="http://127.0.0.1:9/x",
                   domain=[["picking_type_id.warehous_id", "=", 1]])
    assert bad.status_code == 400 and "warehous_id" in bad.json()["error"]
    assert add_rule(fresh_sim, model="stock.picking", url="u", pre_domain=[["nope", "=", 1]]).status_code == 400
    assert "'frobnicate'" in add_rule(fresh_sim, model="stock.picking", url="u",
                                      fields=["frobnicate"]).json()["error"]
    assert add_rule(fresh_sim, model="stock.picking", url="u", domain="[('state','=','done')]").status_code == 400
    assert add_rule(fresh_sim, model="no.such.model", url="u").status_code == 400
    assert httpx.get(f"{fresh_sim.url}/__sim__/webhooks", timeout=5).json() == []  # none of them was kept


def test_a_buttons_state_change_fires_and_the_pre_domain_is_matched_before_the_write(
        fresh_sim: OdooSim, fresh_odoo: odoorpc.ODOO) -> None:
    catcher = Catcher()
    try:
        add_rule(fresh_sim, model="stock.picking", url=catcher.url, name="Done", trigger="on_write",
                 fields=["state"], domain=[["state", "=", "done"]],
                 pre_domain=[["state", "!=", "done"]]).raise_for_status()
        picking = picking_of(fresh_odoo, "CW")
        before = fresh_odoo.env["stock.picking"].read([picking], ["write_date"])[0]["write_date"]
        fresh_odoo.execute_kw("stock.picking", "button_validate", [[picking]])
        [(_, body)] = catcher.calls  # button_validate writes the state, as in Odoo
        assert json.loads(body)["state"] == "done"
        stamped = fresh_odoo.env["stock.picking"].read([picking], ["write_date"])[0]["write_date"]
        assert stamped > before  # the button stamps write_date (the catch-up scan reads it)
        # Already done before this write: the pre-domain does not match, nothing is sent.
        fresh_odoo.execute_kw("stock.picking", "write", [[picking], {"origin": "AFTER-DONE"}])
        assert len(catcher.calls) == 1
    finally:
        catcher.server.shutdown()


def test_the_rules_make_run_registers_are_valid_and_route_each_sites_records(
        fresh_sim: OdooSim, fresh_odoo: odoorpc.ODOO) -> None:
    from siteops.sim.runner import register_odoo_rules

    catcher = Catcher()
    base = catcher.url.split("/hooks/")[0]
    try:
        assert register_odoo_rules(fresh_sim.url, base, "t0ken", ["CW", "NORTH"]) == 8  # 4 models x 2 sites
        assert register_odoo_rules(fresh_sim.url, base, "t0ken", ["CW", "NORTH"]) == 8  # again: replaced, not added
        assert len(httpx.get(f"{fresh_sim.url}/__sim__/webhooks", timeout=5).json()) == 8
        north, web = picking_of(fresh_odoo, "NORTH"), picking_of(fresh_odoo, "WEB")
        fresh_odoo.execute_kw("stock.picking", "write", [[web], {"origin": "NO-RULE-FOR-WEB"}])
        fresh_odoo.execute_kw("stock.picking", "write", [[north], {"origin": "NORTH"}])
        assert catcher.paths == ["/hooks/odoo/NORTH/t0ken"]
        sent = json.loads(catcher.calls[0][1])
        assert sent["_id"] == north and {"state", "picking_type_code", "carrier_tracking_ref"} <= set(sent)
        # A reordering rule and a quant of CW reach CW's URL (what the replenishment acts on).
        op = fresh_odoo.env["stock.warehouse.orderpoint"].search([("warehouse_id.code", "=", "CW")], limit=1)[0]
        fresh_odoo.execute_kw("stock.warehouse.orderpoint", "write", [[op], {"product_min_qty": 7}])
        quant = fresh_odoo.env["stock.quant"].search([("location_id.warehouse_id.code", "=", "CW")], limit=1)[0]
        fresh_odoo.execute_kw("stock.quant", "write", [[quant], {"inventory_quantity": 3}])
        assert catcher.paths[1:] == ["/hooks/odoo/CW/t0ken"] * 2
        assert [json.loads(b)["_model"] for _, b in catcher.calls[1:]] == ["stock.warehouse.orderpoint", "stock.quant"]
    finally:
        catcher.server.shutdown()
