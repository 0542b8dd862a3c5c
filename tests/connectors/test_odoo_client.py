"""The Odoo connector against the simulator: paging, batching, idempotent creates, chatter,
version-aware fields, both transports on the same data, per-process clients, metrics."""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest

from siteops.connectors.errors import PermanentError
from siteops.connectors.odoo import OdooClient, OdooConfig, get_client, reset_client
from siteops.connectors.odoo.metrics import CALL_DURATION, CALLS
from siteops.sim.odoo import OdooSim
from tests.connectors.conftest import make_client, start_sim


def _search_reads(sim: OdooSim) -> list[dict[str, Any]]:
    return [e for e in sim.log.entries() if e.get("model_method") == "search_read"]


@pytest.mark.parametrize("protocol", ["jsonrpc", "json2"])
def test_iter_search_read_pages_by_id(sim19: OdooSim, protocol: str) -> None:
    client = make_client(sim19, protocol)
    domain = [("picking_type_code", "=", "outgoing")]
    expected = client.search_count("stock.picking", domain)
    sim19.log.clear()
    rows = list(client.iter_search_read("stock.picking", domain, ["name", "partner_id", "picking_type_id"],
                                        page_size=100))
    ids = [r["id"] for r in rows]
    assert len(ids) == expected and ids == sorted(set(ids))
    assert rows[0]["picking_type_id"][1].endswith("Delivery Orders")  # names come with the page
    calls = _search_reads(sim19)
    assert len(calls) == math.floor(expected / 100) + 1
    assert not any(e.get("model_method") == "read" for e in sim19.log.entries())


def test_both_transports_see_the_same_data(sim19: OdooSim) -> None:
    fields = ["name", "state", "partner_id", "scheduled_date", "move_ids"]
    domain = [("state", "in", ["assigned", "confirmed"])]
    a = list(make_client(sim19, "jsonrpc").iter_search_read("stock.picking", domain, fields, page_size=77))
    b = list(make_client(sim19, "json2").iter_search_read("stock.picking", domain, fields, page_size=77))
    assert a == b and a


def test_auto_protocol_follows_the_server_version(sim17: OdooSim, sim19: OdooSim) -> None:
    assert make_client(sim17, "auto").protocol == "jsonrpc"
    assert make_client(sim19, "auto").protocol == "json2"
    assert make_client(sim19, "auto", api_key="").protocol == "jsonrpc"  # no key: JSON-RPC with the password
    assert make_client(sim17, "auto").version == 17


def test_version_aware_field_names(sim17: OdooSim, sim19: OdooSim) -> None:
    c17, c19 = make_client(sim17), make_client(sim19, "json2")
    assert c17.field("purchase.order", "notes") == "notes" and c19.field("purchase.order", "notes") == "note"
    assert c19.field("purchase.order.line", "product_uom") == "product_uom_id"
    for client in (c17, c19):
        fields = client.fields("purchase.order.line", ["product_uom", "product_qty"])
        assert client.search_read("purchase.order.line", [], fields, limit=1)[0][fields[0]]
        assert client.search_count("product.product", client.storable_domain()) > 0
        assert client.field("stock.move", "quantity") == "quantity"


def test_batched_read_and_write(sim17: OdooSim) -> None:
    client = make_client(sim17)
    ids = client.search("stock.move", [], limit=1200)
    sim17.log.clear()
    rows = client.read("stock.move", [*ids, 10**8], ["product_id"], batch_size=500)
    assert [r["id"] for r in rows] == ids
    assert len(ids) > 500
    assert sim17.log.count(model_method="read") == math.ceil((len(ids) + 1) / 500)
    partners = client.search("res.partner", [("customer_rank", ">", 0)], limit=30)
    client.write("res.partner", partners, {"lang": "fr_FR"}, batch_size=20)
    assert sim17.log.count(model_method="write") == 2
    assert {r["lang"] for r in client.read("res.partner", partners, ["lang"])} == {"fr_FR"}


def test_explicit_fields_are_required(sim17: OdooSim) -> None:
    with pytest.raises(PermanentError, match="explicit fields"):
        make_client(sim17).search_read("stock.picking", [], [])


@pytest.mark.parametrize("protocol", ["jsonrpc", "json2"])
def test_ensure_created_is_idempotent(sim19: OdooSim, protocol: str) -> None:
    client = make_client(sim19, protocol)
    key = f"EDI-850-{protocol}-000123"
    first = client.ensure_created("sale.order", {"partner_id": 1}, key=key, ref_field="client_order_ref")
    again = client.ensure_created("sale.order", {"partner_id": 1}, key=key, ref_field="client_order_ref")
    assert first[1] is True and again == (first[0], False)
    assert client.search_count("sale.order", [("client_order_ref", "=", key)]) == 1
    xml_first = client.ensure_created("res.partner", {"name": "Carrier Co"}, key=f"Carrier {protocol} 42")
    xml_again = client.ensure_created("res.partner", {"name": "Carrier Co"}, key=f"Carrier {protocol} 42")
    assert xml_again == (xml_first[0], False)
    ref = client.search_read("ir.model.data", [("module", "=", "siteops"), ("name", "=", f"carrier_{protocol}_42")],
                             ["model", "res_id"])
    assert ref == [{"id": ref[0]["id"], "model": "res.partner", "res_id": xml_first[0]}]


@pytest.mark.parametrize("protocol", ["jsonrpc", "json2"])
def test_post_note_and_schedule_activity(sim19: OdooSim, protocol: str) -> None:
    client = make_client(sim19, protocol)
    pid = client.search("stock.picking", [("state", "=", "assigned")], limit=1)[0]
    mid = client.post_note("stock.picking", pid, "<p>Aging transfer</p>")
    msg = client.read("mail.message", [mid], ["model", "res_id", "body", "is_internal"])[0]
    assert (msg["model"], msg["res_id"], msg["is_internal"]) == ("stock.picking", pid, True)
    act, created = client.schedule_activity("stock.picking", pid, f"Aging {protocol}", user_id=2,
                                            deadline="2026-03-05")
    again = client.schedule_activity("stock.picking", pid, f"Aging {protocol}", user_id=2)
    assert created and again == (act, False)
    rec = client.read("mail.activity", [act], ["res_model", "res_id", "user_id", "date_deadline",
                                               "activity_type_id"])[0]
    assert (rec["res_model"], rec["res_id"], rec["user_id"][0], rec["date_deadline"]) == \
        ("stock.picking", pid, 2, "2026-03-05")
    assert rec["activity_type_id"][1] == "To-Do"


def test_metrics_count_calls_by_site_method_outcome(sim17: OdooSim) -> None:
    client = make_client(sim17, site="NORTH")
    ok = CALLS.labels("odoo", "NORTH", "stock.picking.search_count", "ok")
    bad = CALLS.labels("odoo", "NORTH", "no.model.search_count", "permanent")
    before_ok, before_bad = ok._value.get(), bad._value.get()
    client.search_count("stock.picking", [])
    with pytest.raises(PermanentError):
        client.search_count("no.model", [])
    assert ok._value.get() == before_ok + 1 and bad._value.get() == before_bad + 1
    hist = CALL_DURATION.labels("odoo", "NORTH", "stock.picking.search_count")
    assert hist._sum.get() > 0


def test_config_from_environment(tmp_path: Path) -> None:
    secret = tmp_path / "odoo.pw"
    secret.write_text("from-a-file\n")
    cfg = OdooConfig.from_env({"SITEOPS_ODOO_URL": "http://odoo:8069/", "SITEOPS_ODOO_DB": "prod",
                               "SITEOPS_ODOO_LOGIN": "bot", "SITEOPS_ODOO_PASSWORD_FILE": str(secret),
                               "SITEOPS_ODOO_PROTOCOL": "JSONRPC"})
    assert (cfg.url, cfg.password, cfg.protocol, cfg.secret) == ("http://odoo:8069", "from-a-file", "jsonrpc",
                                                                 "from-a-file")
    assert "from-a-file" not in repr(cfg)
    with pytest.raises(PermanentError, match="SITEOPS_ODOO_URL"):
        OdooConfig.from_env({})
    with pytest.raises(PermanentError, match="path"):
        OdooConfig(url="http://odoo/prefix", db="d", login="l", password="p")
    with pytest.raises(PermanentError, match="SITEOPS_ODOO_PROTOCOL"):
        OdooConfig(url="http://odoo", db="d", login="l", password="p", protocol="xmlrpc")


def test_credentials_are_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    sim = start_sim(17, password="pw-Xq7-very-secret", api_key="key-Zz9-very-secret")
    try:
        caplog.set_level(logging.DEBUG)
        client = make_client(sim, password="pw-Xq7-very-secret", api_key="key-Zz9-very-secret")
        client.search_count("stock.picking", [])
        client.search_read("res.partner", [], ["name"], limit=2)
        text = "\n".join(r.getMessage() for r in caplog.records)
        assert "very-secret" not in text
    finally:
        sim.stop()


def test_one_client_per_process_built_after_fork(monkeypatch: pytest.MonkeyPatch, sim17: OdooSim) -> None:
    for k, v in {"SITEOPS_ODOO_URL": sim17.url, "SITEOPS_ODOO_DB": "demo", "SITEOPS_ODOO_LOGIN": "admin",
                 "SITEOPS_ODOO_API_KEY": "admin", "SITEOPS_ODOO_PROTOCOL": "jsonrpc"}.items():
        monkeypatch.setenv(k, v)
    reset_client()
    parent = get_client()
    assert get_client() is parent
    assert get_client("CW")._conn is parent._conn  # site views share the process connection
    assert get_client("CW").search_count("stock.warehouse", []) == 3
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child_inspect, args=(queue, id(parent._conn)))
    proc.start()
    child_pid, same_conn, count = queue.get(timeout=20)
    proc.join(timeout=20)
    assert child_pid != os.getpid()
    assert same_conn is False and count == 3
    reset_client()


def _child_inspect(queue: Any, parent_conn_id: int) -> None:
    client = get_client("NORTH")
    queue.put((os.getpid(), id(client._conn) == parent_conn_id, client.search_count("stock.warehouse", [])))


def test_client_for_site_labels(sim17: OdooSim) -> None:
    base = OdooClient(OdooConfig(url=sim17.url, db="demo", login="admin", password="admin", protocol="jsonrpc"))
    north = base.for_site("NORTH")
    assert north.site == "NORTH" and north._conn is base._conn
