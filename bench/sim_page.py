"""Simulator page time: a 2,000-record search_read page out of 200,000 pickings.

The anchor is the same page out of a data set 10 times smaller, in the same run: the
ratio shows whether page time grows with the table (it should not, for keyset pages).

    python bench/sim_page.py [--pickings 200000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FIELDS = ["name", "state", "partner_id", "picking_type_id", "scheduled_date", "origin"]


def build(n: int):
    from siteops.sim.odoo import OdooSim, generate
    from siteops.sim.odoo.dataset import demo_sites

    db, _ = generate(demo_sites(), seed=1, scale=0.1, now=datetime(2026, 11, 28, tzinfo=UTC))
    pickings = db.tables["stock.picking"]
    types, partners = list(db.tables["stock.picking.type"].ids), list(db.tables["res.partner"].ids)
    rng = random.Random(1)
    states = ["done"] * 14 + ["assigned", "confirmed", "waiting", "draft", "cancel"]
    for i in range(max(0, n - len(pickings))):
        pickings.insert({"name": f"BULK/{i:07d}", "state": rng.choice(states), "picking_type_id": rng.choice(types),
                         "partner_id": rng.choice(partners), "location_id": 1, "location_dest_id": 2,
                         "scheduled_date": "2026-02-10 10:00:00", "priority": "0", "company_id": 1})
    return OdooSim(db)


def pages(sim, n: int) -> list[float]:
    import odoorpc

    odoo = odoorpc.ODOO(sim.host, port=sim.port, version="17.0", timeout=60)
    odoo.login("demo", "admin", "admin")
    out = []
    for last in (0, n // 4, n // 2, n - 4000):
        for extra in ([], [("state", "in", ["assigned", "confirmed"]), ("picking_type_code", "=", "outgoing")]):
            t0 = time.perf_counter()
            odoo.execute_kw("stock.picking", "search_read", [[("id", ">", last), *extra]],
                            {"fields": FIELDS, "limit": 2000, "order": "id"})
            out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pickings", type=int, default=200_000)
    n = parser.parse_args().pickings
    results = {}
    for size in (n // 10, n):
        with build(size) as sim:
            results[size] = pages(sim, size)
    small, big = statistics.median(results[n // 10]), statistics.median(results[n])
    print(f"2,000-record keyset page, median of {len(results[n])}: {big * 1000:.0f} ms out of {n:,} pickings "
          f"(worst {max(results[n]) * 1000:.0f} ms), {small * 1000:.0f} ms out of {n // 10:,}")
    print(f"ratio: {big / small:.2f}x for 10x the table (goal: a page well under a second)")


if __name__ == "__main__":
    main()
