"""The generator: deterministic, shaped by the registry, and its ground truth is what a scan finds.

The truth is checked by an independent reference scan over JSON-RPC, run with every
threshold halved and doubled: planted conditions sit >= 3x past their threshold and
healthy records <= 0.3x, so the answer must not move.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import odoorpc
import pytest

from siteops.sim.odoo import OdooSim, generate
from siteops.sim.odoo.dataset import DEFAULT_PARAMS
from tests.sim.conftest import NOW, SITES, wait_for

DT = "%Y-%m-%d %H:%M:%S"


def _param(site: Any, name: str) -> Any:
    return site.params.get(name, DEFAULT_PARAMS[name])


def _ids(rows: list[dict[str, Any]]) -> list[int]:
    return sorted(r["id"] for r in rows)


def reference_scan(odoo: odoorpc.ODOO, site: Any, factor: float) -> dict[str, Any]:
    """What a correct scan finds for `site` with every threshold multiplied by `factor`."""
    wh = odoo.execute_kw("stock.warehouse", "search_read", [[("code", "=", site.odoo_warehouse)]],
                         {"fields": ["id", "view_location_id"]})[0]
    now = NOW

    def ago(delta: timedelta) -> str:
        return (now - delta * factor).strftime(DT)

    def pickings(domain: list[Any]) -> list[int]:
        return _ids(odoo.execute_kw("stock.picking", "search_read",
                                    [[("picking_type_id.warehouse_id", "=", wh["id"]), *domain]],
                                    {"fields": ["id"]}))

    out: dict[str, Any] = {
        "aging_transfers": pickings([
            ("picking_type_code", "=", "internal"), ("state", "in", ["waiting", "confirmed", "assigned"]),
            ("scheduled_date", "<", ago(timedelta(hours=_param(site, "transfer_aging_hours"))))]),
        "overdue_receipts": pickings([
            ("picking_type_code", "=", "incoming"), ("state", "not in", ["done", "cancel"]),
            ("scheduled_date", "<", ago(timedelta(days=_param(site, "receipt_grace_days"))))]),
        "aging_backorders": pickings([("backorder_id", "!=", False), ("state", "not in", ["done", "cancel"]),
                                      ("scheduled_date", "<",
                                       ago(timedelta(days=_param(site, "backorder_aging_days"))))]),
        "ready_to_ship": pickings([("picking_type_code", "=", "outgoing"), ("state", "=", "assigned")]),
    }
    quants = odoo.execute_kw(
        "stock.quant", "search_read",
        [[("location_id", "child_of", wh["view_location_id"][0]), ("location_id.usage", "=", "internal")]],
        {"fields": ["product_id", "quantity", "reserved_quantity", "inventory_quantity_set",
                    "inventory_diff_quantity"]})
    costs = {p["id"]: p["standard_price"] for p in odoo.execute_kw(
        "product.product", "search_read", [[]], {"fields": ["standard_price"], "context": {"active_test": False}})}
    q_thr = _param(site, "variance_qty_threshold") * factor
    review = _param(site, "variance_value_review") * factor
    finance = _param(site, "variance_value_finance") * factor
    anomalies: dict[str, list[int]] = {k: [] for k in ("negative_quant", "reserved_above_on_hand",
                                                        "count_variance_review", "count_variance_finance")}
    for q in quants:
        if q["quantity"] < 0:
            anomalies["negative_quant"].append(q["id"])
        elif q["reserved_quantity"] > q["quantity"]:
            anomalies["reserved_above_on_hand"].append(q["id"])
        if q["inventory_quantity_set"]:
            diff = abs(q["inventory_diff_quantity"])
            value = diff * costs[q["product_id"][0]]
            if diff > q_thr and value > finance:
                anomalies["count_variance_finance"].append(q["id"])
            elif diff > q_thr and value > review:
                anomalies["count_variance_review"].append(q["id"])
    moves = odoo.execute_kw("stock.move", "search_read",
                            [[("warehouse_id", "=", wh["id"]), ("state", "=", "done"),
                              ("date", ">=", (now - timedelta(days=60)).strftime(DT))]],
                            {"fields": ["product_id", "quantity", "is_inventory"], "order": "id"})
    by_product: dict[int, list[float]] = {}
    for m in moves:
        by_product.setdefault(m["product_id"][0], []).append(m["quantity"])
    abnormal = []
    for m in moves:
        history = by_product[m["product_id"][0]]
        if not m["is_inventory"] or len(history) < 12:
            continue
        med = statistics.median(history)
        mad = statistics.median(abs(x - med) for x in history) or 1.0
        if 0.6745 * abs(m["quantity"] - med) / mad > _param(site, "anomaly_mad_score") * factor:
            abnormal.append(m["id"])
    anomalies["abnormal_adjustment"] = abnormal
    out["stock_anomalies"] = {k: sorted(v) for k, v in anomalies.items()}
    return out


def _truth_ids(truth: dict[str, Any], code: str) -> dict[str, Any]:
    t = truth["sites"][code]
    out = {k: t[k]["ids"] for k in ("aging_transfers", "overdue_receipts", "aging_backorders", "ready_to_ship")}
    out["stock_anomalies"] = {k: v["ids"] for k, v in t["stock_anomalies"].items()}
    return out


@pytest.mark.parametrize("factor", [0.5, 1.0, 2.0])
def test_truth_is_what_a_scan_finds_far_from_thresholds(sim: OdooSim, truth: dict[str, Any],
                                                        factor: float) -> None:
    odoo = odoorpc.ODOO(sim.host, port=sim.port, version="17.0", timeout=30)
    odoo.login("demo", "admin", "admin")
    for site in SITES:
        assert reference_scan(odoo, site, factor) == _truth_ids(truth, site.code), site.code


def test_every_condition_is_planted_at_every_site(truth: dict[str, Any]) -> None:
    for site in SITES:
        t = truth["sites"][site.code]
        for kind in ("aging_transfers", "overdue_receipts", "aging_backorders", "ready_to_ship"):
            assert t[kind]["ids"], (site.code, kind)
        for kind, sub in t["stock_anomalies"].items():
            assert sub["ids"], (site.code, kind)


def test_network_follows_the_registry(sim: OdooSim) -> None:
    odoo = odoorpc.ODOO(sim.host, port=sim.port, version="17.0")
    odoo.login("demo", "admin", "admin")
    whs = odoo.execute_kw("stock.warehouse", "search_read", [[]], {"fields": ["code", "name", "lot_stock_id"]})
    assert [w["code"] for w in whs] == [s.odoo_warehouse for s in SITES]
    assert whs[0]["lot_stock_id"][1] == "CW/Stock"
    codes = {t["display_name"]: t["code"] for t in odoo.execute_kw(
        "stock.picking.type", "search_read", [[("warehouse_id.code", "=", "CW")]],
        {"fields": ["display_name", "code"]})}
    assert codes == {"Central Warehouse: Receipts": "incoming", "Central Warehouse: Delivery Orders": "outgoing",
                     "Central Warehouse: Internal Transfers": "internal"}
    logins = {u["login"] for u in odoo.execute_kw("res.users", "search_read", [[]], {"fields": ["login"]})}
    assert {"cw.manager", "cw.supervisor", "north.manager", "web.manager"} <= logins
    # Responsible users of a site are the ones on its pickings.
    users = {p["user_id"][1] for p in odoo.execute_kw(
        "stock.picking", "search_read", [[("picking_type_id.warehouse_id.code", "=", "NORTH")]],
        {"fields": ["user_id"]})}
    assert users == {"North Manager"}
    assert odoo.execute("stock.picking", "search_count", [("name", "=like", "CW/OUT/%")]) > 10


def test_same_seed_same_data_and_truth() -> None:
    db1, t1 = generate(SITES, seed=11, scale=0.2, now=NOW)
    db2, t2 = generate(SITES, seed=11, scale=0.2, now=NOW)
    _, t3 = generate(SITES, seed=12, scale=0.2, now=NOW)
    assert t1 == t2
    for name in db1.tables:
        assert db1.tables[name].rows == db2.tables[name].rows, name
    assert t1["sites"] != t3["sites"]


def test_dates_are_relative_to_now() -> None:
    later = NOW + timedelta(days=30)
    db1, t1 = generate(SITES, seed=3, scale=0.2, now=NOW)
    db2, t2 = generate(SITES, seed=3, scale=0.2, now=later)
    assert t1["sites"] == t2["sites"]
    p1, p2 = db1.tables["stock.picking"].rows[5], db2.tables["stock.picking"].rows[5]
    shift = datetime.strptime(p2["scheduled_date"], DT) - datetime.strptime(p1["scheduled_date"], DT)
    assert shift == timedelta(days=30)


def test_scale_grows_the_data_set() -> None:
    small, _ = generate(SITES[:1], seed=1, scale=0.2, now=NOW)
    big, _ = generate(SITES[:1], seed=1, scale=1.0, now=NOW)
    assert len(big.tables["stock.picking"]) > 4 * len(small.tables["stock.picking"])


def test_real_registry_is_accepted() -> None:
    sites_mod = pytest.importorskip("siteops.config.sites")
    registry = sites_mod.load_registry(Path(__file__).resolve().parents[2] / "sites.toml")
    db, truth = generate(registry, seed=7, scale=0.1, now=NOW)
    assert set(truth["sites"]) == set(registry.sites)
    codes = [r["code"] for r in db.tables["stock.warehouse"].rows.values()]
    assert codes == [s.odoo_warehouse for s in registry.sites.values()]


def test_command_line_serves_and_writes_truth(tmp_path: Path) -> None:
    truth_path = tmp_path / "truth.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "siteops.sim.odoo", "--port", "0", "--scale", "0.1", "--truth", str(truth_path),
         "--odoo-version", "18"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = wait_for(proc.stdout.readline, timeout=20, what="the simulator banner")
        assert "listening on http://127.0.0.1:" in first
        url = first.strip().rsplit(" ", 1)[-1]
        creds = proc.stdout.readline()
        assert "database=demo login=admin password=admin api_key=admin" in creds
        host, port = url.removeprefix("http://").split(":")
        odoo = odoorpc.ODOO(host, port=int(port))
        assert odoo.version == "18.0"
        odoo.login("demo", "admin", "admin")
        assert odoo.env["stock.picking"].search_count([]) > 0
        truth = json.loads(truth_path.read_text())
        assert truth["odoo_version"] == 18 and set(truth["sites"])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
