"""Currencies as Odoo 17's `res.currency` converts them (`odoo/addons/base/models/res_currency.py`).

* A rate (`res.currency.rate.rate`) is "units of this currency per unit of the currency
  of rate 1", normally the company's currency (which then has no rate, or rate 1).
* `_get_rates(company, date)`: per currency, the rate of the newest `res.currency.rate`
  dated on or before `date` whose company is the company's root or empty; a
  company-specific rate is preferred to a shared one whatever their dates (PostgreSQL's
  `ORDER BY r.company_id, r.name DESC` puts NULL last); 1.0 when there is none.
* `_get_conversion_rate(from, to, company, date)` is `rates[to] / rates[from]` (1 for the
  same currency); `_convert(amount, to, company, date)` multiplies and rounds to the
  target currency's `rounding` (Odoo's `float_round`, half-up), and gives 0.0 for 0.
* The date compares as a date: a datetime such as `date_order` counts by its (UTC) day,
  as PostgreSQL casts `'2026-03-01 10:00:00'` when comparing it to a date column.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from siteops.sim.odoo.store import Database, Table


def root_company(db: Database, company_id: Any) -> int | None:
    """The company's root (`res.company.root_id`): rates belong to main companies only."""
    companies = db.tables["res.company"].rows
    seen: set[int] = set()
    cid = company_id or None
    while cid and cid in companies and cid not in seen:
        seen.add(cid)
        parent = companies[cid].get("parent_id")
        if not parent:
            return int(cid)
        cid = parent
    return int(cid) if cid else None


def company_currency(db: Database, company_id: Any) -> int | None:
    row = db.tables["res.company"].rows.get(company_id or 0) or {}
    return row.get("currency_id")


def get_rates(db: Database, currency_ids: Iterable[int], company_id: Any, date: str) -> dict[int, float]:
    """`res.currency._get_rates`: currency id -> its rate on `date` for the company."""
    day = str(date)[:10]
    root = root_company(db, company_id)
    rates = db.tables["res.currency.rate"]
    out: dict[int, float] = {}
    for cid in currency_ids:
        best: tuple[int, str] | None = None
        rate = 1.0
        for rid in rates.lookup("currency_id", cid):
            r = rates.rows[rid]
            name = str(r.get("name") or "")
            owner = r.get("company_id")
            if not name or name > day or (owner is not None and owner != root):
                continue
            # A company's own rate before a shared one (NULLS LAST), then the newest date.
            key = (0 if owner is not None else 1, name)
            if best is None or key[0] < best[0] or (key[0] == best[0] and key[1] > best[1]):
                best, rate = key, float(r.get("rate") or 0.0) or 1.0
        out[cid] = rate
    return out


def conversion_rate(db: Database, from_currency: Any, to_currency: Any, company_id: Any, date: str) -> float:
    """`res.currency._get_conversion_rate`: how many `to` one `from` is worth on `date`."""
    if from_currency == to_currency:
        return 1.0
    rates = get_rates(db, [from_currency, to_currency], company_id, date)
    return rates[to_currency] / rates[from_currency]


def float_round(value: float, rounding: float) -> float:
    """Odoo's `float_round(value, precision_rounding=rounding)`, half-up: the value is
    nudged by one ulp of its magnitude so that binary halves (2.675) round up too."""
    if not value or not rounding:
        return 0.0
    normalized = value / rounding
    sign = math.copysign(1.0, normalized)
    normalized += sign * 2 ** (math.log2(abs(normalized)) - 52)
    result = math.floor(abs(normalized) + 0.5) * sign * rounding
    digits = max(0, math.ceil(-math.log10(rounding))) if rounding < 1 else 0
    return round(result, digits)


def rounding_of(db: Database, currency_id: Any) -> float:
    row = db.tables["res.currency"].rows.get(currency_id or 0) or {}
    return float(row.get("rounding") or 0.01)


def convert(db: Database, amount: float, from_currency: Any, to_currency: Any, company_id: Any, date: str,
            round_result: bool = True) -> float:
    """`from_currency._convert(amount, to_currency, company, date)`."""
    from_currency, to_currency = from_currency or to_currency, to_currency or from_currency
    if not amount:
        return 0.0
    converted = amount * conversion_rate(db, from_currency, to_currency, company_id, date)
    return float_round(converted, rounding_of(db, to_currency)) if round_result else converted


# -- computed fields (models.py resolves these lazily) ----------------------------------------


def _main_company(db: Database) -> int:
    companies = db.tables["res.company"]
    return companies.ids[0] if companies.ids else 1


def current_rate(db: Database, table: Table, row: dict[str, Any]) -> float:
    """`res.currency.rate` (non-stored): the rate today, relative to the company's currency."""
    company = _main_company(db)
    base = company_currency(db, company) or row["id"]
    rates = get_rates(db, {row["id"], base}, company, db.today())
    return (rates[row["id"]] or 1.0) / rates[base]


def current_inverse_rate(db: Database, table: Table, row: dict[str, Any]) -> float:
    return 1.0 / current_rate(db, table, row)


def decimal_places(db: Database, table: Table, row: dict[str, Any]) -> int:
    rounding = float(row.get("rounding") or 0.01)
    return math.ceil(math.log10(1 / rounding)) if 0 < rounding < 1 else 0


def company_rate(db: Database, table: Table, row: dict[str, Any]) -> float:
    """`res.currency.rate.company_rate`: the rate over the company currency's latest rate."""
    company = row.get("company_id") or _main_company(db)
    base = company_currency(db, company)
    last = get_rates(db, [base], company, "9999-12-31")[base] if base else 1.0
    return float(row.get("rate") or 1.0) / last


def inverse_company_rate(db: Database, table: Table, row: dict[str, Any]) -> float:
    return 1.0 / (company_rate(db, table, row) or 1.0)
