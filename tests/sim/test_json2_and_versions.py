"""Odoo 19's JSON-2 API on the simulator (odoo.md §8), and what `--odoo-version` switches."""

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
    mid = j2(sim19, "res.partner", "message_post", {"ids": new, "body": "hello"}).json()
    assert isinstance(mid, int)


def test_json2_invalid_key_is_401(sim19: OdooSim) -> None:
    resp = j2(sim19, "res.partner", "search", {"domain": []}, key="wrong")
    assert resp.status_code == 401
    body = resp.json()
    assert (body["name"], body["message"], body["arguments"]) == (
        "werkzeug.exceptions.Unauthorized", "Invalid apikey", ["Invalid apikey", 401])
    assert set(body) == {"name", "message", "arguments", "context", "debug"}


@pytest.mark.parametrize("model,method,body,status,name", [
    ("res.partner", "search", {"domain": [], "bogus": 1}, 422, "builtins.TypeError"),
    ("res.partner", "search_read", {"domain": [["nope", "=", 1]]}, 422, "builtins.ValueError"),
    ("no.model", "search", {"domain": []}, 404, "odoo.exceptions.UserError"),
    ("res.partner", "frobnicate", {}, 404, "builtins.AttributeError"),
    ("res.partner", "write", {"ids": [10**7], "vals": {"name": "x"}}, 404, "odoo.exceptions.MissingError"),
    ("res.partner", "_private", {}, 403, "odoo.exceptions.AccessError"),
])
def test_json2_errors_have_http_statuses(sim19: OdooSim, model: str, method: str, body: dict[str, Any],
                                         status: int, name: str) -> None:
    resp = j2(sim19, model, method, body)
    assert resp.status_code == status
    assert resp.json()["name"] == name


def test_json2_unknown_database(sim19: OdooSim) -> None:
    resp = j2(sim19, "res.partner", "search", {"domain": []}, headers={"X-Odoo-Database": "other"})
    assert resp.status_code == 404


def test_json2_only_exists_from_19() -> None:
    sim, _ = make_sim(version=17, scale=0.05)
    try:
        assert j2(sim, "res.partner", "search", {"domain": []}).status_code == 404
    finally:
        sim.stop()


@pytest.mark.parametrize("version", [17, 18, 19])
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
        assert "done" not in so_states and "locked" in odoo.execute("sale.order", "fields_get")
        assert "quantity" in move and "quantity_done" not in move
        po_states = [k for k, _ in po["state"]["selection"]]
        if version == 17:
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
