"""Odoo 19's JSON-2 API on the simulator (odoo.md §8, §9), and what `--odoo-version` switches (16-19)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import odoorpc
import pytest

from siteops.sim.odoo import OdooSim
from tests.sim.conftest import make_sim


@pytest.fixture(scope="module")
def sim19() -> Iterator[OdooSim]:
    sim, _ = make_sim(version=19, scale=0.1)
    yield sim
    sim.stop()


def j2(sim: OdooSim, model: str, method: str, body: Any, key: str = "admin",
       headers: dict[str, str] | None = None) -> httpx.Response:
    h = {"Authorization": f"bearer {key}", "X-Odoo-Database": "demo"}
    h.update(headers or {})
    return httpx.post(f"{sim.url}/json/2/{model}/{method}", json=body, headers=h, timeout=5)


def test_json2_success_is_the_bare_value(sim19: OdooSim) -> None:
    resp = j2(sim19, "res.partner", "search_read", {"domain": [["id", "=", 1]], "fields": ["name"]})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json() == [{"id": 1, "name": "SiteOps Distribution"}]


def test_json2_record_methods_take_ids(sim19: OdooSim) -> None:
    assert j2(sim19, "res.partner", "read", {"ids": [1], "fields": ["name"]}).json() == \
        [{"id": 1, "name": "SiteOps Distribution"}]
    new = j2(sim19, "res.partner", "create", {"vals_list": [{"name": "J2 Co"}]}).json()
    assert isinstance(new, list) and len(new) == 1
    assert j2(sim19, "res.partner", "write", {"ids": new, "vals": {"email": "j2@example.com"}}).json() is True


def test_json2_returns_every_recordset_as_an_id_list(sim19: OdooSim) -> None:
    """json2.py: `if isinstance(result, BaseModel): result = result.ids` — no special case for create."""
    one = j2(sim19, "res.partner", "create", {"vals_list": {"name": "One Dict Co"}}).json()
    assert isinstance(one, list) and len(one) == 1 and isinstance(one[0], int)
    assert j2(sim19, "res.partner", "read", {"ids": one, "fields": ["name"]}).json()[0]["name"] == "One Dict Co"
    mid = j2(sim19, "res.partner", "message_post", {"ids": one, "body": "hello"}).json()
    assert isinstance(mid, list) and len(mid) == 1
    assert j2(sim19, "mail.message", "read", {"ids": mid, "fields": ["res_id"]}).json()[0]["res_id"] == one[0]
    acts = j2(sim19, "res.partner", "activity_schedule",
              {"ids": one, "act_type_xmlid": "mail.mail_activity_data_todo", "summary": "call"}).json()
    assert isinstance(acts, list) and len(acts) == 1 and isinstance(acts[0], int)


@pytest.mark.parametrize("version", [16, 17, 18, 19])
def test_jsonrpc_results_follow_the_version(version: int) -> None:
    """`/jsonrpc`: 16/17 downgrade through `api.returns`; 18/19's call_kw special-cases only create(dict)."""
    sim, _ = make_sim(version=version, scale=0.05)
    try:
        odoo = odoorpc.ODOO(sim.host, port=sim.port, timeout=10)
        odoo.login("demo", "admin", "admin")
        pid = odoo.execute_kw("res.partner", "create", [{"name": "RPC Co"}])
        assert isinstance(pid, int) and not isinstance(pid, bool)
        assert odoo.execute_kw("res.partner", "create", [[{"name": "A"}, {"name": "B"}]]) == [pid + 1, pid + 2]
        mid = odoo.execute_kw("res.partner", "message_post", [[pid]], {"body": "hi"})
        acts = odoo.execute_kw("res.partner", "activity_schedule", [[pid]],
                               {"act_type_xmlid": "mail.mail_activity_data_todo", "summary": "call"})
        if version <= 17:
            assert isinstance(mid, int)
            assert isinstance(acts, str) and acts.startswith("mail.activity(")
        else:
            assert isinstance(mid, list) and len(mid) == 1
            assert isinstance(acts, list) and len(acts) == 1
    finally:
        sim.stop()


def _a_picking(sim: OdooSim, state: str) -> int:
    return int(j2(sim, "stock.picking", "search", {"domain": [["state", "=", state]], "limit": 1}).json()[0])


@pytest.mark.parametrize("model,method,body,status,name", [
    # werkzeug's HTTP exceptions: their own code (arguments: [description, code])
    ("res.partner", "search", {"domain": [], "bogus": 1}, 422, "werkzeug.exceptions.UnprocessableEntity"),
    ("res.partner", "search", {}, 422, "werkzeug.exceptions.UnprocessableEntity"),
    ("res.partner", "search", None, 422, "werkzeug.exceptions.UnprocessableEntity"),
    ("res.partner", "search", {"ids": [1], "domain": []}, 422, "werkzeug.exceptions.UnprocessableEntity"),
    ("no.model", "search", {"domain": []}, 404, "werkzeug.exceptions.NotFound"),
    ("res.partner", "frobnicate", {}, 404, "werkzeug.exceptions.NotFound"),
    # the UserError family: its http_status
    ("res.partner", "write", {"ids": [10**7], "vals": {"name": "x"}}, 404, "odoo.exceptions.MissingError"),
    ("res.partner", "_private", {}, 403, "odoo.exceptions.AccessError"),
    ("sale.order", "create", {"vals_list": {"origin": "no partner"}}, 422, "odoo.exceptions.ValidationError"),
    ("stock.picking", "button_validate", "cancel", 422, "odoo.exceptions.UserError"),
    # anything else: 500
    ("res.partner", "search_read", {"domain": [["nope", "=", 1]]}, 500, "builtins.ValueError"),
    ("res.partner", "search_read", {"domain": [], "fields": ["nope"]}, 500, "builtins.ValueError"),
])
def test_json2_errors_follow_handle_error(sim19: OdooSim, model: str, method: str, body: Any,
                                          status: int, name: str) -> None:
    if body == "cancel":
        body = {"ids": [_a_picking(sim19, "cancel")]}
    resp = j2(sim19, model, method, body)
    assert resp.status_code == status, resp.text
    payload = resp.json()
    assert payload["name"] == name
    assert set(payload) == {"name", "message", "arguments", "context", "debug"}
    if name.startswith("werkzeug"):
        assert payload["arguments"] == [payload["message"], status]
    if status == 422 and body in ({}, None):
        assert "missing a required argument: 'domain'" in payload["message"]


def test_json2_login_failure_is_403(sim19: OdooSim) -> None:
    """AccessDenied is a UserError in 19 with http_status 403 (a bad *key* is werkzeug's 401)."""
    sim19.faults.set(error_rate=1.0, error_status=0, error_name="odoo.exceptions.AccessDenied",
                     error_message="Access Denied")
    try:
        resp = j2(sim19, "res.partner", "search", {"domain": []})
        assert (resp.status_code, resp.json()["name"]) == (403, "odoo.exceptions.AccessDenied")
    finally:
        sim19.faults.reset()


def test_json2_refusals_before_the_dispatcher(sim19: OdooSim) -> None:
    """Database, then content type (both HTML pages), then the key (401 JSON with a challenge)."""
    resp = j2(sim19, "res.partner", "search", {"domain": []}, headers={"X-Odoo-Database": "other"})
    assert resp.status_code == 404 and resp.headers["content-type"].startswith("text/html")
    resp = httpx.post(f"{sim19.url}/json/2/res.partner/search", content=b'{"domain": []}', timeout=5,
                      headers={"Authorization": "bearer admin", "Content-Type": "text/plain"})
    assert resp.status_code == 415 and resp.headers["content-type"].startswith("text/html")
    resp = httpx.post(f"{sim19.url}/json/2/res.partner/search", json={"domain": []}, timeout=5)
    assert resp.status_code == 401 and resp.headers["www-authenticate"] == "bearer"
    assert "Authorization" in resp.json()["message"]
    resp = httpx.post(f"{sim19.url}/json/2/res.partner/search", content=b"{not json", timeout=5,
                      headers={"Authorization": "bearer admin", "Content-Type": "application/json"})
    assert (resp.status_code, resp.json()["name"]) == (400, "werkzeug.exceptions.BadRequest")


REMOVED_IN_19 = [("stock.picking", "date"), ("stock.picking", "group_id"),
                 ("stock.picking", "move_ids_without_package"), ("stock.move", "scrapped"),
                 ("stock.move", "group_id")]


@pytest.mark.parametrize("model,field", REMOVED_IN_19)
def test_19_refuses_the_fields_it_removed(sim19: OdooSim, model: str, field: str) -> None:
    resp = j2(sim19, model, "search_read", {"domain": [], "fields": ["id", field], "limit": 1})
    assert resp.status_code == 500 and resp.json()["name"] == "builtins.ValueError"
    assert f"Invalid field '{field}'" in resp.json()["message"]
    resp = j2(sim19, model, "search_count", {"domain": [[field, "!=", False]]})
    assert resp.status_code == 500 and resp.json()["name"] == "builtins.ValueError"
    odoo = odoorpc.ODOO(sim19.host, port=sim19.port, timeout=10)
    odoo.login("demo", "admin", "admin")
    with pytest.raises(odoorpc.error.RPCError) as exc:
        odoo.execute_kw(model, "search_read", [[]], {"fields": [field], "limit": 1})
    assert exc.value.info["data"]["name"] == "builtins.ValueError"


def test_18_still_has_the_fields_19_removed() -> None:
    sim, _ = make_sim(version=18, scale=0.05)
    try:
        odoo = odoorpc.ODOO(sim.host, port=sim.port, timeout=10)
        odoo.login("demo", "admin", "admin")
        for model, field in REMOVED_IN_19:
            assert odoo.execute_kw(model, "search_read", [[]], {"fields": [field], "limit": 1})
        assert odoo.execute_kw("stock.picking", "search_read", [[]], {"fields": ["date"], "limit": 1})[0]["date"]
    finally:
        sim.stop()


def test_limit_zero_means_no_limit(sim19: OdooSim) -> None:
    total = j2(sim19, "stock.picking", "search_count", {"domain": []}).json()
    assert total > 10
    assert len(j2(sim19, "stock.picking", "search", {"domain": [], "limit": 0}).json()) == total
    assert len(j2(sim19, "stock.picking", "search_read", {"domain": [], "fields": ["id"], "limit": 0}).json()) \
        == total


def test_json2_only_exists_from_19() -> None:
    sim, _ = make_sim(version=17, scale=0.05)
    try:
        assert j2(sim, "res.partner", "search", {"domain": []}).status_code == 404
    finally:
        sim.stop()


@pytest.mark.parametrize("version", [16, 17, 18, 19])
def test_version_switches_fields_and_states(version: int) -> None:
    sim, _ = make_sim(version=version, scale=0.05)
    try:
        odoo = odoorpc.ODOO(sim.host, port=sim.port, timeout=10)
        assert odoo.version == f"{version}.0"
        odoo.login("demo", "admin", "admin")
        product = odoo.execute("product.product", "fields_get")
        po = odoo.execute("purchase.order", "fields_get")
        line = odoo.execute("purchase.order.line", "fields_get")
        move = odoo.execute("stock.move", "fields_get")
        ptype = odoo.execute("stock.picking.type", "fields_get")
        so_states = [k for k, _ in odoo.execute("sale.order", "fields_get")["state"]["selection"]]
        if version == 16:
            assert "done" in so_states and "locked" not in odoo.execute("sale.order", "fields_get")
            assert "quantity_done" in move and "quantity" not in move and "picked" not in move
            assert odoo.env["stock.move"].search_count([("quantity_done", ">", 0)]) > 0
        else:
            assert "done" not in so_states and "locked" in odoo.execute("sale.order", "fields_get")
            assert "quantity" in move and "quantity_done" not in move
        po_states = [k for k, _ in po["state"]["selection"]]
        if version <= 17:
            assert "detailed_type" in product and "is_storable" not in product
            assert ["product", "Storable Product"] in product["type"]["selection"]
            assert odoo.env["product.product"].search_count([("detailed_type", "=", "product")]) > 0
        else:
            assert "is_storable" in product and "detailed_type" not in product
            assert odoo.env["product.product"].search_count([("is_storable", "=", True)]) > 0
            assert "location_final_id" in move and "is_favorite" in ptype
        if version == 19:
            assert "done" not in po_states and "locked" in po and "note" in po and "notes" not in po
            assert "product_uom_id" in line and "product_uom" not in line
            info = httpx.post(f"{sim.url}/web/webclient/version_info", json={"jsonrpc": "2.0", "params": {}},
                              timeout=5).json()["result"]
            assert "protocol_version" not in info
            with pytest.raises(odoorpc.error.RPCError) as exc:
                odoo.execute_kw("no.model", "search", [[]])
            assert exc.value.info["code"] == 0  # 19's handle_error: "we don't care of this code"
        else:
            assert "done" in po_states and "notes" in po and "product_uom" in line
    finally:
        sim.stop()
