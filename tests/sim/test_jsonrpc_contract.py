"""Contract tests: unmodified odoorpc 0.10.1 against the simulator, item by item of odoo.md §6.

Protocol details are checked on the raw wire (http.client), client behaviour through
odoorpc itself; a wrong envelope, status or value format fails here.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from typing import Any

import odoorpc
import pytest

from siteops.sim.odoo import OdooSim


def raw(sim: OdooSim, path: str, body: Any, content_type: str = "application/json",
        method: str = "POST") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(sim.host, sim.port, timeout=5)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn.request(method, path, body=data if method == "POST" else None,
                 headers={"Content-Type": content_type, "Connection": "close"})
    resp = conn.getresponse()
    payload = resp.read()
    headers = {k.lower(): v for k, v in resp.getheaders()}
    conn.close()
    return resp.status, headers, payload


def rpc(sim: OdooSim, service: str, method: str, *args: Any, rid: int = 4242) -> dict[str, Any]:
    status, _, body = raw(sim, "/jsonrpc", {"jsonrpc": "2.0", "method": "call", "id": rid,
                                                  "params": {"service": service, "method": method,
                                                             "args": list(args)}})
    assert status == 200
    return json.loads(body)


def obj(sim: OdooSim, model: str, method: str, args: list[Any], kwargs: dict[str, Any] | None = None,
        password: str = "admin") -> dict[str, Any]:
    return rpc(sim, "object", "execute_kw", "demo", 2, password, model, method, args, kwargs or {})


# -- HTTP -----------------------------------------------------------------------------------


def test_version_info_envelope_and_cookie(sim: OdooSim) -> None:
    status, headers, body = raw(sim, "/web/webclient/version_info",
                                {"jsonrpc": "2.0", "method": "call", "params": {}, "id": 77})
    assert status == 200
    assert json.loads(body) == {"jsonrpc": "2.0", "id": 77, "result": {
        "server_version": "17.0", "server_version_info": [17, 0, 0, "final", 0, ""],
        "server_serie": "17.0", "protocol_version": 1}}
    assert re.match(r"session_id=[0-9a-f]{40}; .*HttpOnly; Path=/", headers["set-cookie"])


def test_jsonrpc_reply_headers_and_id_echo(sim: OdooSim) -> None:
    status, headers, body = raw(sim, "/jsonrpc", {"jsonrpc": "2.0", "method": "call", "id": 123456789,
                                                  "params": {"service": "db", "method": "list", "args": []}})
    assert status == 200
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert int(headers["content-length"]) == len(body)
    assert json.loads(body) == {"jsonrpc": "2.0", "id": 123456789, "result": ["demo"]}


def test_unknown_path_is_http_404_and_odoorpc_sees_httperror(sim: OdooSim, odoo: odoorpc.ODOO) -> None:
    status, _, _ = raw(sim, "/web/dataset/call_kw", {"params": {}})
    assert status == 404
    with pytest.raises(Exception) as exc:  # urllib.error.HTTPError, unwrapped by odoorpc
        odoo.json("/no/such/route", {})
    assert getattr(exc.value, "code", None) == 404


@pytest.mark.parametrize("body,ctype,text", [
    (b'{"params": {}}', "text/plain", b"is type='json'"),
    (b"{not json", "application/json", b"Invalid JSON data"),
    (b"[1, 2]", "application/json", b"Invalid JSON-RPC data"),
])
def test_bad_requests_are_http_400(sim: OdooSim, body: bytes, ctype: str, text: bytes) -> None:
    status, headers, payload = raw(sim, "/jsonrpc", body, content_type=ctype)
    assert status == 400
    assert text in payload
    assert headers["content-type"].startswith("text/html")


def test_error_envelope_is_odoo_17(sim: OdooSim) -> None:
    reply = obj(sim, "stock.picking", "search_read", [[("nope", "=", 1)]])
    assert "result" not in reply
    assert reply["id"] == 4242 and reply["jsonrpc"] == "2.0"
    err = reply["error"]
    assert err["code"] == 200 and err["message"] == "Odoo Server Error"
    data = err["data"]
    assert set(data) == {"name", "debug", "message", "arguments", "context"}
    assert data["name"] == "builtins.ValueError"
    assert data["message"] == "Invalid field stock.picking.nope in leaf ('nope', '=', 1)"
    assert data["arguments"] == [data["message"]] and data["context"] == {}
    assert data["debug"].startswith("Traceback (most recent call last):")


def test_none_result_is_omitted(fresh_sim: OdooSim, fresh_odoo: odoorpc.ODOO) -> None:
    odoo = fresh_odoo
    pid = odoo.env["stock.picking"].search([("state", "=", "assigned")], limit=1)[0]
    reply = obj(fresh_sim, "stock.picking", "do_unreserve", [[pid]])
    assert reply == {"jsonrpc": "2.0", "id": 4242}
    assert odoo.execute_kw("stock.picking", "read", [[pid], ["state"]])[0]["state"] == "confirmed"


def test_concurrent_clients_one_connection_per_request(sim: OdooSim) -> None:
    client = odoorpc.ODOO(sim.host, port=sim.port, timeout=10)
    client.login("demo", "admin", "admin")
    errors: list[BaseException] = []
    before = len(sim.log)

    def work() -> None:
        try:
            for _ in range(20):
                assert client.execute_kw("res.partner", "search_count", [[]]) > 0
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert len(sim.log) - before >= 160


# -- services -------------------------------------------------------------------------------


def test_common_version_login_authenticate(sim: OdooSim) -> None:
    assert rpc(sim, "common", "version")["result"]["server_version"] == "17.0"
    assert rpc(sim, "common", "login", "demo", "admin", "admin")["result"] == 2
    assert rpc(sim, "common", "login", "demo", "admin", "wrong")["result"] is False
    assert rpc(sim, "common", "authenticate", "demo", "admin", "admin", {})["result"] == 2
    assert rpc(sim, "common", "login", "nodb", "admin", "admin")["error"]["data"]["name"] == \
        "psycopg2.OperationalError"
    err = rpc(sim, "common", "frobnicate")["error"]["data"]
    assert (err["name"], err["message"]) == ("builtins.Exception", "Method not found: frobnicate")


def test_odoorpc_login_with_bad_password_raises_rpcerror_with_info_false(sim: OdooSim) -> None:
    client = odoorpc.ODOO(sim.host, port=sim.port)
    with pytest.raises(odoorpc.error.RPCError) as exc:
        client.login("demo", "admin", "nope")
    assert str(exc.value) == "Wrong login ID or password" and exc.value.info is False


def test_api_key_works_as_password(sim: OdooSim) -> None:
    assert rpc(sim, "common", "login", "demo", "admin", "admin")["result"] == 2
    client = odoorpc.ODOO(sim.host, port=sim.port, version="17.0")
    client.login("demo", "admin", "admin")
    assert client.env.uid == 2


def test_db_list(odoo: odoorpc.ODOO) -> None:
    assert odoo.db.list() == ["demo"]


def test_object_execute_and_execute_kw(odoo: odoorpc.ODOO) -> None:
    via_execute = odoo.execute("res.partner", "read", [1], ["name"])
    assert via_execute == [{"id": 1, "name": "SiteOps Distribution"}]
    assert odoo.execute_kw("res.partner", "read", [[1], ["name"]]) == via_execute


@pytest.mark.parametrize("model,method,password,name,message", [
    ("res.partner", "search", "bad", "odoo.exceptions.AccessDenied", "Access Denied"),
    ("foo.bar", "search", "admin", "odoo.exceptions.UserError", "Object foo.bar doesn't exist"),
    ("res.partner", "_private", "admin", "odoo.exceptions.AccessError",
     "Private methods (such as _private) cannot be called remotely."),
    ("res.partner", "frobnicate", "admin", "builtins.AttributeError",
     "type object 'res.partner' has no attribute 'frobnicate'"),
])
def test_object_errors(sim: OdooSim, model: str, method: str, password: str, name: str, message: str) -> None:
    data = obj(sim, model, method, [[]], password=password)["error"]["data"]
    assert (data["name"], data["message"]) == (name, message)


def test_odoorpc_rpcerror_carries_the_error_dict(odoo: odoorpc.ODOO) -> None:
    with pytest.raises(odoorpc.error.RPCError) as exc:
        odoo.execute_kw("foo.bar", "search", [[]])
    assert exc.value.info["data"]["name"] == "odoo.exceptions.UserError"


def test_context_active_test(odoo: odoorpc.ODOO) -> None:
    Users = odoo.env["res.users"]
    assert Users.search([("login", "=", "__system__")]) == []
    assert Users.with_context(active_test=False).search([("login", "=", "__system__")]) == [1]
    assert odoo.execute_kw("res.users", "search", [[("login", "=", "__system__"), ("active", "=", False)]]) == [1]


# -- model methods --------------------------------------------------------------------------


def test_context_get(sim: OdooSim) -> None:
    reply = rpc(sim, "object", "execute", "demo", 2, "admin", "res.users", "context_get")
    assert reply["result"] == {"lang": "en_US", "tz": "Europe/Brussels", "uid": 2}


def test_fields_get_shape(odoo: odoorpc.ODOO) -> None:
    fields = odoo.execute("stock.picking", "fields_get")
    state = fields["state"]
    assert state["type"] == "selection" and ["assigned", "Ready"] in state["selection"]
    assert {"string", "required", "readonly"} <= set(state)
    partner = fields["partner_id"]
    assert partner["type"] == "many2one" and partner["relation"] == "res.partner"
    assert partner["context"] == {}
    assert fields["move_ids"]["relation"] == "stock.move"
    some = odoo.execute_kw("stock.picking", "fields_get", [["name"]], {"attributes": ["type"]})
    assert some == {"name": {"type": "char"}}


def test_search_read_read_positional_and_keyword(odoo: odoorpc.ODOO) -> None:
    P = odoo.env["stock.picking"]
    dom = [("state", "=", "done")]
    positional = P.search_read(dom, ["name"], 0, 5, "id asc")
    keyword = P.search_read(domain=dom, fields=["name"], offset=0, limit=5, order="id asc")
    assert positional == keyword and len(positional) == 5
    ids = [r["id"] for r in positional]
    assert P.search(dom, limit=5, order="id asc") == ids
    assert P.search(dom, offset=2, limit=2, order="id asc") == ids[2:4]
    assert P.read([*ids, 10**9], ["name"]) == positional  # missing ids are dropped
    assert P.search_count(dom) == len(P.search(dom))
    assert P.search_count(dom, limit=3) == 3


def test_value_formats(odoo: odoorpc.ODOO) -> None:
    rec = odoo.execute_kw("stock.picking", "search_read", [[("state", "=", "done"), ("partner_id", "!=", False)]],
                          {"fields": ["partner_id", "scheduled_date", "move_ids", "note", "backorder_id",
                                      "printed"], "limit": 1})[0]
    assert next(iter(rec)) == "id"
    assert isinstance(rec["partner_id"], list) and isinstance(rec["partner_id"][1], str)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", rec["scheduled_date"])
    assert rec["move_ids"] and all(isinstance(i, int) for i in rec["move_ids"])
    assert rec["note"] is False and rec["backorder_id"] is False and rec["printed"] is False
    bare = odoo.execute_kw("stock.picking", "read", [[rec["id"]], ["partner_id"]], {"load": "_classic_write"})
    assert bare == [{"id": rec["id"], "partner_id": rec["partner_id"][0]}]
    activity = odoo.execute_kw("mail.activity", "search_read", [[]], {"fields": ["date_deadline"], "limit": 1})
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", activity[0]["date_deadline"])


def test_default_order_per_model(odoo: odoorpc.ODOO) -> None:
    recs = odoo.execute_kw("stock.picking", "search_read", [[("state", "in", ["assigned", "confirmed"])]],
                           {"fields": ["priority", "scheduled_date"]})
    keys = [(-int(r["priority"]), r["scheduled_date"], -r["id"]) for r in recs]
    assert keys == sorted(keys)
    locs = odoo.execute_kw("stock.location", "search_read", [[]], {"fields": ["complete_name"]})
    assert [r["complete_name"] for r in locs] == sorted(r["complete_name"] for r in locs)


def test_create_write_unlink(fresh_odoo: odoorpc.ODOO) -> None:
    odoo = fresh_odoo
    Partner = odoo.env["res.partner"]
    one = Partner.create({"name": "Contract Test"})
    assert isinstance(one, int)
    many = odoo.execute_kw("res.partner", "create", [[{"name": "Batch A"}, {"name": "Batch B"}]])
    assert isinstance(many, list) and len(many) == 2
    assert Partner.write([one], {"email": "c@example.com"}) is True
    assert Partner.read([one], ["email", "complete_name"])[0] == {"id": one, "email": "c@example.com",
                                                                 "complete_name": "Contract Test"}
    assert Partner.unlink(many) is True
    assert Partner.search([("id", "in", many)]) == []
    with pytest.raises(odoorpc.error.RPCError) as exc:
        Partner.write(many, {"name": "gone"})
    assert exc.value.info["data"]["name"] == "odoo.exceptions.MissingError"


def test_default_get_and_browse_n_plus_one(odoo: odoorpc.ODOO) -> None:
    defaults = odoo.execute_kw("stock.picking", "default_get", [["state", "priority", "move_type", "name"]])
    assert defaults == {"state": "draft", "priority": "0", "move_type": "direct", "name": "/"}
    P = odoo.env["stock.picking"]
    empty = P.search([("partner_id", "=", False)], limit=1)
    full = P.search([("partner_id", "!=", False)], limit=1)
    for p in P.browse(empty + full):
        name = p.partner_id.name
        assert name is False or isinstance(name, str)
    assert p.picking_type_id.code in ("incoming", "outgoing", "internal")


def test_name_search_and_check_object_reference(odoo: odoorpc.ODOO) -> None:
    found = odoo.env["stock.location"].name_search("CW/Stock", limit=10)
    assert [n for _, n in found][:1] == ["CW/Stock"]
    assert odoo.env.ref("mail.mail_activity_data_todo")._name == "mail.activity.type"
    with pytest.raises(odoorpc.error.RPCError) as exc:
        odoo.env.ref("base.no_such_thing")
    assert "External ID not found in the system: base.no_such_thing" in str(exc.value)


def test_message_post_and_activity_schedule(fresh_odoo: odoorpc.ODOO) -> None:
    odoo = fresh_odoo
    pid = odoo.env["stock.picking"].search([], limit=1)[0]
    mid = odoo.execute_kw("stock.picking", "message_post", [[pid]], {"body": "Aging", "subtype_xmlid": "mail.mt_note"})
    assert isinstance(mid, int)
    msg = odoo.execute_kw("mail.message", "read", [[mid], ["model", "res_id", "body"]])[0]
    assert (msg["model"], msg["res_id"], msg["body"]) == ("stock.picking", pid, "Aging")
    with pytest.raises(odoorpc.error.RPCError) as exc:  # keyword-only body
        odoo.execute_kw("stock.picking", "message_post", [[pid], "positional body"])
    assert exc.value.info["data"]["name"] == "builtins.TypeError"
    res = odoo.execute_kw("stock.picking", "activity_schedule", [[pid]],
                          {"act_type_xmlid": "mail.mail_activity_data_todo", "summary": "Check it",
                           "date_deadline": "2026-03-05", "user_id": 2})
    assert re.fullmatch(r"mail\.activity\(\d+,\)", res)
    act_id = int(res.split("(")[1].rstrip(",)"))
    act = odoo.execute_kw("mail.activity", "read", [[act_id], ["res_model", "res_id", "summary", "res_name"]])[0]
    assert (act["res_model"], act["res_id"], act["summary"]) == ("stock.picking", pid, "Check it")


def test_picking_buttons_change_state_and_stock(fresh_odoo: odoorpc.ODOO) -> None:
    odoo = fresh_odoo
    P = odoo.env["stock.picking"]
    wh = odoo.execute_kw("stock.warehouse", "search_read", [[("code", "=", "NORTH")]],
                         {"fields": ["in_type_id", "out_type_id", "lot_stock_id"]})[0]
    quant = odoo.execute_kw("stock.quant", "search_read",
                            [[("location_id", "=", wh["lot_stock_id"][0]), ("quantity", ">", 100)]],
                            {"fields": ["product_id", "quantity", "reserved_quantity"], "limit": 1})[0]
    product = quant["product_id"][0]
    pid = P.create({"picking_type_id": wh["out_type_id"][0], "partner_id": 1,
                    "move_ids": [(0, 0, {"product_id": product, "product_uom_qty": 4})]})
    rec = P.read([pid], ["name", "state", "location_id"])[0]
    assert rec["name"].startswith("NORTH/OUT/") and rec["state"] == "draft"
    assert P.browse(pid).action_confirm() is True
    odoo.execute_kw("stock.picking", "action_assign", [[pid]])
    assert P.read([pid], ["state"])[0]["state"] == "assigned"
    odoo.execute_kw("stock.picking", "button_validate", [[pid]])
    after = P.read([pid], ["state", "date_done"])[0]
    assert after["state"] == "done" and after["date_done"]
    left = odoo.execute_kw("stock.quant", "read", [[quant["id"]], ["quantity"]])[0]["quantity"]
    assert left == quant["quantity"] - 4


def test_purchase_double_validation_as_odoo_17(fresh_sim: OdooSim, fresh_odoo: odoorpc.ODOO) -> None:
    """Above the company's amount a buyer's confirm waits in `to approve` and their
    button_approve silently skips it; a Purchase Manager (admin) bypasses the limit."""
    odoo = fresh_odoo
    PO = odoo.env["purchase.order"]
    in_type = odoo.execute_kw("stock.picking.type", "search", [[("code", "=", "incoming")]], {"limit": 1})[0]
    product = odoo.env["product.product"].search([("standard_price", ">", 1)], limit=1)[0]

    def order(qty: int) -> int:
        return PO.create({"partner_id": 1, "picking_type_id": in_type,
                          "order_line": [(0, 0, {"product_id": product, "product_qty": qty, "price_unit": 500})]})

    small, big, managers = order(1), order(100), order(100)
    buyer = odoorpc.ODOO(fresh_sim.host, port=fresh_sim.port, timeout=10)
    login = next(u["login"] for u in odoo.execute_kw("res.users", "search_read", [[("login", "like", ".manager")]],
                                                     {"fields": ["login"]}))
    buyer.login("demo", login, login)
    buyer.execute_kw("purchase.order", "button_confirm", [[small, big]])
    states = {r["id"]: r["state"] for r in PO.read([small, big], ["state"])}
    assert states == {small: "purchase", big: "to approve"}  # two-step approval above 10,000
    assert buyer.execute_kw("purchase.order", "button_approve", [[big]]) == {}  # skipped, no error
    assert PO.read([big], ["state"])[0]["state"] == "to approve"
    odoo.execute_kw("purchase.order", "button_approve", [[big]])
    rec = PO.read([big], ["state", "date_approve", "picking_ids"])[0]
    assert rec["state"] == "purchase" and rec["date_approve"] and len(rec["picking_ids"]) == 1
    odoo.execute_kw("purchase.order", "button_confirm", [[managers]])  # a manager confirms in one step
    assert PO.read([managers], ["state"])[0]["state"] == "purchase"


def test_supplier_info_ranks_vendors_by_sequence(fresh_odoo: odoorpc.ODOO) -> None:
    odoo = fresh_odoo
    rows = odoo.execute_kw("product.supplierinfo", "search_read", [[]],
                           {"fields": ["product_tmpl_id", "product_id", "partner_id", "sequence", "price"],
                            "limit": 50})
    # Keyed on the template as in Odoo; some rows name a variant, the others hold for all.
    assert rows and all(r["partner_id"] and r["product_tmpl_id"] for r in rows)
    assert any(r["product_id"] for r in rows) and any(r["product_id"] is False for r in rows)
    first = rows[0]["product_tmpl_id"][0]
    ranked = [r["sequence"] for r in rows if r["product_tmpl_id"][0] == first]
    assert ranked == sorted(ranked)


def test_a_product_created_alone_gets_its_own_template_as_with_inherits(fresh_odoo: odoorpc.ODOO) -> None:
    odoo = fresh_odoo
    categ = odoo.execute_kw("product.category", "search", [[]], {"limit": 1})[0]
    pid = odoo.execute_kw("product.product", "create", [{"name": "Hex Nut 9mm", "categ_id": categ}])
    (product,) = odoo.execute_kw("product.product", "read", [[pid], ["product_tmpl_id"]])
    (tmpl,) = odoo.execute_kw("product.template", "read", [[product["product_tmpl_id"][0]], ["name", "categ_id"]])
    assert tmpl["name"] == "Hex Nut 9mm" and tmpl["categ_id"][0] == categ
    vendor = odoo.execute_kw("res.partner", "search", [[]], {"limit": 1})[0]
    info = odoo.execute_kw("product.supplierinfo", "create", [{"partner_id": vendor, "product_id": pid}])
    (row,) = odoo.execute_kw("product.supplierinfo", "read", [[info], ["product_tmpl_id"]])
    assert row["product_tmpl_id"][0] == tmpl["id"]  # a variant's price list is its template's too


def test_apply_inventory(fresh_odoo: odoorpc.ODOO) -> None:
    odoo = fresh_odoo
    quant = odoo.execute_kw("stock.quant", "search_read",
                            [[("quantity", ">", 10), ("inventory_quantity_set", "=", False)]],
                            {"fields": ["quantity"], "limit": 1})[0]
    odoo.execute_kw("stock.quant", "write", [[quant["id"]], {"inventory_quantity": quant["quantity"] - 3}])
    diff = odoo.execute_kw("stock.quant", "read", [[quant["id"]], ["inventory_diff_quantity"]])[0]
    assert diff["inventory_diff_quantity"] == -3
    odoo.execute_kw("stock.quant", "action_apply_inventory", [[quant["id"]]])
    assert odoo.execute_kw("stock.quant", "read", [[quant["id"]], ["quantity"]])[0]["quantity"] == quant["quantity"] - 3


def test_ir_model_membership(odoo: odoorpc.ODOO) -> None:
    assert "stock.picking" in odoo.env
    assert "no.such.model" not in odoo.env


def test_read_group_counts_and_sums(odoo: odoorpc.ODOO) -> None:
    groups = odoo.execute_kw("stock.quant", "read_group", [[("quantity", ">", 0)], ["quantity:sum"], ["location_id"]])
    assert groups and all({"location_id", "location_id_count", "quantity", "__domain"} <= set(g) for g in groups)
    total = sum(g["location_id_count"] for g in groups)
    assert total == odoo.execute_kw("stock.quant", "search_count", [[("quantity", ">", 0)]])
