"""Big data sets: keyset pages out of 200,000 pickings are the right pages (correctness here;
the time per page is measured by bench/sim_page.py, never asserted in the suite)."""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Iterator

import odoorpc
import pytest

from siteops.sim.odoo import OdooSim, generate
from tests.sim.conftest import NOW, SITES

N = 200_000
FIELDS = ["name", "state", "partner_id", "picking_type_id", "scheduled_date", "origin"]


@pytest.fixture(scope="module")
def big() -> Iterator[OdooSim]:
    db, _ = generate(SITES, seed=1, scale=0.1, now=NOW)
    pickings = db.tables["stock.picking"]
    types = list(db.tables["stock.picking.type"].ids)
    partners = list(db.tables["res.partner"].ids)
    rng = random.Random(1)
    states = ["done"] * 14 + ["assigned", "confirmed", "waiting", "draft", "cancel"]
    gc.disable()  # bulk rows, like the generator: no cycles to look for
    try:
        for i in range(N - len(pickings)):
            ptype = rng.choice(types)
            pickings.insert({"name": f"BULK/{i:07d}", "state": rng.choice(states), "picking_type_id": ptype,
                             "partner_id": rng.choice(partners), "location_id": 1, "location_dest_id": 2,
                             "scheduled_date": f"2026-0{rng.randint(1, 2)}-{rng.randint(10, 28)} 10:00:00",
                             "priority": "0", "company_id": 1, "origin": f"S{i:06d}"})
    finally:
        gc.enable()
    gc.freeze()
    with OdooSim(db) as sim:
        yield sim
    gc.unfreeze()


def _timed_page(odoo: odoorpc.ODOO, domain: list, **kw: object) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    rows = odoo.execute_kw("stock.picking", "search_read", [domain], {"fields": FIELDS, "limit": 2000, **kw})
    return time.perf_counter() - start, rows


def test_keyset_pages_over_200k_pickings_are_fast(big: OdooSim) -> None:
    odoo = odoorpc.ODOO(big.host, port=big.port, version="17.0", timeout=30)
    odoo.login("demo", "admin", "admin")
    assert odoo.execute_kw("stock.picking", "search_count", [[]]) == N
    worst = 0.0
    for last in (0, 50_000, 150_000, 198_000):
        elapsed, rows = _timed_page(odoo, [("id", ">", last)], order="id")
        assert len(rows) == 2000 and rows[0]["id"] == last + 1
        worst = max(worst, elapsed)
        elapsed, rows = _timed_page(odoo, [("id", ">", last), ("state", "in", ["assigned", "confirmed"]),
                                           ("picking_type_code", "=", "outgoing")], order="id")
        assert rows and all(r["id"] > last for r in rows)
        worst = max(worst, elapsed)
    print(f"worst 2,000-record page over {N} pickings: {worst * 1000:.0f} ms")


def test_default_order_page_is_bounded(big: OdooSim) -> None:
    odoo = odoorpc.ODOO(big.host, port=big.port, version="17.0", timeout=30)
    odoo.login("demo", "admin", "admin")
    elapsed, rows = _timed_page(odoo, [("state", "=", "assigned")])
    assert len(rows) == 2000
    assert all(r["state"] == "assigned" for r in rows) and len({r["id"] for r in rows}) == 2000
    print(f"2,000-record page in the default order: {elapsed * 1000:.0f} ms")
