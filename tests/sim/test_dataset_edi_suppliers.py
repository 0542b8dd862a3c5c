"""The demo's uncovered shortages are bought from the EDI partners' vendors (sites.toml), so
that approving one sends the order by EDI; nothing else in the data set moves."""

from __future__ import annotations

from typing import Any

import pytest

from siteops.config.edi import load_edi
from siteops.config.sites import get_registry
from siteops.sim.odoo import dataset
from tests.sim.conftest import NOW, SITES


def first_suppliers(db: Any, products: list[int]) -> list[tuple[str, str]]:
    """(first supplier's ref, second supplier's ref) of each product, by sequence."""
    infos, partners = db.tables["product.supplierinfo"], db.tables["res.partner"].rows
    out = []
    for pid in products:
        tmpl = db.tables["product.product"].rows[pid]["product_tmpl_id"]
        rows = sorted((infos.rows[r] for r in infos.lookup("product_tmpl_id", tmpl)), key=lambda r: r["sequence"])
        out.append(tuple(partners[r["partner_id"]]["ref"] for r in rows))
    return out


def test_uncovered_shortages_go_to_the_edi_partners_vendors_in_turn() -> None:
    registry = get_registry()
    refs = [p.odoo_vendor_ref for p in load_edi(registry=registry)]
    db, truth = dataset.generate(registry, seed=7, scale=0.3, now=NOW)
    uncovered = [p for t in truth["replenishment"].values() for p in t["uncovered"]]
    assert len(uncovered) >= 2
    suppliers = first_suppliers(db, uncovered)
    assert [s[0] for s in suppliers] == [refs[i % len(refs)] for i in range(len(uncovered))]
    # The second supplier is another vendor, not a second row for the same one.
    assert all(len(s) == 2 and s[1] not in (s[0], "") for s in suppliers)


def test_without_edi_partners_only_those_suppliers_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    with_edi, truth = dataset.generate(SITES, seed=7, scale=0.3, now=NOW)
    monkeypatch.setattr(dataset, "_edi_vendor_refs", lambda sites: [])
    without, truth_without = dataset.generate(SITES, seed=7, scale=0.3, now=NOW)
    assert truth == truth_without  # no random draw moved
    uncovered = {p for t in truth["replenishment"].values() for p in t["uncovered"]}
    for model in ("purchase.order", "stock.picking", "stock.quant", "stock.warehouse.orderpoint", "res.partner"):
        assert with_edi.tables[model].rows == without.tables[model].rows, model
    a, b = with_edi.tables["product.supplierinfo"].rows, without.tables["product.supplierinfo"].rows
    assert a.keys() == b.keys()
    templates = {pid: row["product_tmpl_id"] for pid, row in with_edi.tables["product.product"].rows.items()}
    changed = {a[r]["product_tmpl_id"] for r in a if a[r] != b[r]}
    # (one may have had a partner's vendor first already)
    assert changed and changed <= {templates[p] for p in uncovered}
    # A list of sites still reads sites.toml's partners.
    refs = {p.odoo_vendor_ref for p in load_edi(registry=get_registry())}
    assert all(first in refs for first, _ in first_suppliers(with_edi, sorted(uncovered)))
