"""Odoo 16 to 19 through one connector: every scan kind reads and finds the planted problems on
each version (16's `quantity_done` through the version map), and what Odoo 19 returns as id
lists arrives as ids."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from siteops.config.sites import get_registry
from siteops.connectors.odoo import OdooClient
from siteops.sim.odoo import OdooSim, generate
from tests.connectors.conftest import make_client

NOW = dt.datetime(2026, 3, 2, 9, 30, 0)
KINDS = ["aging_transfers", "overdue_receipts", "aging_backorders", "stock_anomalies"]


def _sites() -> list[Any]:
    return list(get_registry().sites.values())[:2]


@pytest.fixture(scope="module", params=[16, 17, 18, 19])
def versioned(request: pytest.FixtureRequest) -> Iterator[tuple[int, OdooSim, dict[str, Any]]]:
    db, truth = generate(_sites(), seed=3, scale=0.15, version=request.param, now=NOW)
    sim = OdooSim(db).start()
    yield request.param, sim, truth
    sim.stop()


def _expected(truth: dict[str, Any], site: str, kind: str) -> set[tuple[str, int]]:
    s = truth["sites"][site]
    if kind == "stock_anomalies":
        return {(sub["model"], i) for sub in s[kind].values() for i in sub["ids"]}
    return {(s[kind]["model"], i) for i in s[kind]["ids"]}


@pytest.mark.parametrize("protocol", ["jsonrpc", "json2"])
def test_every_scan_kind_reads_every_version(versioned: tuple[int, OdooSim, dict[str, Any]],
                                             protocol: str) -> None:
    from siteops.services.scans import Counted, observe

    version, sim, truth = versioned
    if protocol == "json2" and version < 19:
        pytest.skip("JSON-2 exists from Odoo 19")
    client = make_client(sim, protocol)
    assert client.version == version
    planted = 0
    for site in _sites():
        for kind in KINDS:
            count = Counted()
            seen = observe(kind, site, client.for_site(site.code), NOW.replace(tzinfo=dt.UTC), count)
            assert count.n > 0, (version, site.code, kind)
            found = {(o.model, o.record_id) for o in seen}
            assert found == _expected(truth, site.code, kind), (version, site.code, kind)
            planted += len(found)
    assert planted > 10


def test_moves_read_under_the_logical_name_on_16(versioned: tuple[int, OdooSim, dict[str, Any]]) -> None:
    version, sim, _ = versioned
    client = make_client(sim)
    real = "quantity_done" if version == 16 else "quantity"
    assert client.field("stock.move", "quantity") == real
    rows = client.search_read("stock.move", [("quantity", ">", 0), ("state", "=", "done")], ["quantity", "state"],
                              limit=5)
    assert rows and all(set(r) == {"id", "quantity", "state"} and r["quantity"] > 0 for r in rows)
    assert client.read("stock.move", [rows[0]["id"]], ["quantity"]) == [{"id": rows[0]["id"],
                                                                        "quantity": rows[0]["quantity"]}]
    assert client.search_count("stock.move", [("quantity", ">", 0)]) >= len(rows)
    raw = client.call("stock.move", "search_read", domain=[("id", "=", rows[0]["id"])], fields=[real])
    assert raw[0][real] == rows[0]["quantity"]  # the server really has that name


def _raw_json2(sim: OdooSim, model: str, method: str, body: dict[str, Any]) -> Any:
    return httpx.post(f"{sim.url}/json/2/{model}/{method}", json=body, timeout=5,
                      headers={"Authorization": "bearer admin", "X-Odoo-Database": "demo"}).json()


def test_odoo_19_id_lists_become_ids(versioned: tuple[int, OdooSim, dict[str, Any]]) -> None:
    """JSON-2 `create` with one dict answers `[id]`, `message_post` `[id]`: callers still get an int."""
    version, sim, _ = versioned
    clients: list[OdooClient] = [make_client(sim, "jsonrpc")]
    if version >= 19:
        clients.append(make_client(sim, "json2"))
        assert isinstance(_raw_json2(sim, "res.partner", "create", {"vals_list": {"name": "raw"}}), list)
    for client in clients:
        tag = f"{version}-{client.protocol}"
        pid = client.create("res.partner", {"name": f"Partner {tag}"})
        assert type(pid) is int
        assert client.read("res.partner", [pid], ["name"])[0]["name"] == f"Partner {tag}"
        mid = client.post_note("res.partner", pid, "<p>note</p>")
        assert type(mid) is int
        assert client.read("mail.message", [mid], ["res_id"])[0]["res_id"] == pid
        act, created = client.schedule_activity("res.partner", pid, f"Call {tag}", user_id=2)
        assert type(act) is int and created
        made, fresh = client.ensure_created("res.partner", {"name": "Key Co"}, key=f"key-{tag}")
        again = client.ensure_created("res.partner", {"name": "Key Co"}, key=f"key-{tag}")
        assert type(made) is int and fresh and again == (made, False)
        ref, fresh = client.ensure_created("sale.order", {"partner_id": pid}, key=f"SO-{tag}",
                                           ref_field="client_order_ref")
        assert type(ref) is int and fresh
