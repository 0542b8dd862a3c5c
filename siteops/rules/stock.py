"""The scan rules: pure functions from Odoo records (as `search_read` returns them) to findings.

Each rule takes the site's effective parameters (policy + site overrides) and `now`, and
records in every observation the rule version and the parameters it judged by, so a
finding can always be explained later, even after the policy changed.

Record shapes follow Odoo 17's JSON-RPC: many2one fields are `[id, "name"]` or `False`,
datetimes are naive UTC strings `"YYYY-MM-DD HH:MM:SS"`.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from siteops.rules.findings import Observation, severity_by_multiple

RULE_VERSION = "1"
OPEN_TRANSFER_STATES = ("waiting", "confirmed", "assigned")
CLOSED_STATES = ("done", "cancel")
# Fewer done moves than this and a product has no "normal" to deviate from.
MIN_HISTORY = 12
# The product's recent history: done moves of this many days.
HISTORY_DAYS = 60
# Median absolute deviation -> standard deviation, for normally distributed data.
MAD_SCALE = 1.4826


def parse_dt(value: Any) -> dt.datetime | None:
    if not value:
        return None
    text = str(value)
    if len(text) == 10:  # a date field
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(text[:19]).replace(tzinfo=dt.UTC)


def m2o_id(value: Any) -> int | None:
    """A many2one's id: `[id, name]` as Odoo reads it, a bare id (`load=None`, JSON-2), or None."""
    if isinstance(value, list | tuple) and value:
        return int(value[0])
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value else None


def m2o_name(value: Any) -> str | None:
    return str(value[1]) if isinstance(value, list | tuple) and len(value) > 1 else None


def _obs(site: str, kind: str, rule: str, model: str, rec: Mapping[str, Any], severity: int, title: str,
         params: Mapping[str, Any], **details: Any) -> Observation:
    return Observation(site=site, kind=kind, rule=rule, model=model, record_id=int(rec["id"]),
                       record_name=str(rec.get("name") or rec.get("display_name") or rec["id"]),
                       severity=severity, title=title, rule_version=RULE_VERSION, params=dict(params),
                       details=details)


# --- transfers -----------------------------------------------------------------------

TRANSFER_FIELDS = ["id", "name", "state", "scheduled_date", "picking_type_id", "backorder_id", "partner_id",
                   "origin", "location_id", "location_dest_id", "purchase_id"]


def aging_transfers(site: str, pickings: Iterable[Mapping[str, Any]], params: Mapping[str, Any],
                    now: dt.datetime) -> Iterator[Observation]:
    """Internal transfers still open `transfer_aging_hours` after their scheduled date.

    `pickings`: the site's internal transfers (picking type code `internal`). Severity
    grows with multiples of the threshold.
    """
    hours = float(params["transfer_aging_hours"])
    used = {"transfer_aging_hours": hours}
    for p in pickings:
        scheduled = parse_dt(p.get("scheduled_date"))
        if p.get("state") not in OPEN_TRANSFER_STATES or scheduled is None:
            continue
        age_h = (now - scheduled).total_seconds() / 3600
        if age_h > hours:
            yield _obs(site, "aging_transfers", "aging_transfer", "stock.picking", p,
                       severity_by_multiple(age_h, hours),
                       f"{p.get('name')} open {age_h:.0f} h after its scheduled date (limit {hours:.0f} h)",
                       used, age_hours=round(age_h, 1), state=p.get("state"), scheduled_date=p.get("scheduled_date"))


def aging_backorders(site: str, pickings: Iterable[Mapping[str, Any]], params: Mapping[str, Any],
                     now: dt.datetime) -> Iterator[Observation]:
    """Backorders (pickings with `backorder_id`) open `backorder_aging_days` after their date."""
    days = float(params["backorder_aging_days"])
    used = {"backorder_aging_days": days}
    for p in pickings:
        scheduled = parse_dt(p.get("scheduled_date"))
        if not p.get("backorder_id") or p.get("state") in CLOSED_STATES or scheduled is None:
            continue
        age_d = (now - scheduled).total_seconds() / 86400
        if age_d > days:
            yield _obs(site, "aging_backorders", "aging_backorder", "stock.picking", p,
                       severity_by_multiple(age_d, days),
                       f"backorder {p.get('name')} of {m2o_name(p.get('backorder_id'))} open {age_d:.0f} days "
                       f"(limit {days:.0f})", used, age_days=round(age_d, 1),
                       backorder_of=m2o_name(p.get("backorder_id")))


def overdue_receipts(site: str, pickings: Iterable[Mapping[str, Any]], params: Mapping[str, Any],
                     now: dt.datetime) -> Iterator[Observation]:
    """Receipts not done or cancelled once their scheduled date plus the grace has passed."""
    grace = float(params["receipt_grace_days"])
    used = {"receipt_grace_days": grace}
    for p in pickings:
        scheduled = parse_dt(p.get("scheduled_date"))
        if p.get("state") in CLOSED_STATES or scheduled is None:
            continue
        late_d = (now - scheduled).total_seconds() / 86400 - grace
        if late_d > 0:
            po = m2o_name(p.get("purchase_id")) or p.get("origin") or "?"
            vendor = m2o_name(p.get("partner_id")) or "?"
            yield _obs(site, "overdue_receipts", "overdue_receipt", "stock.picking", p,
                       severity_by_multiple(late_d + grace, max(grace, 1.0)),
                       f"receipt {p.get('name')} for {po} from {vendor} is {late_d:.0f} days overdue",
                       used, days_overdue=round(late_d, 1), purchase_order=po, vendor=vendor)


# --- stock ---------------------------------------------------------------------------

QUANT_FIELDS = ["id", "product_id", "location_id", "quantity", "reserved_quantity", "inventory_quantity",
                "inventory_diff_quantity", "inventory_quantity_set"]
MOVE_FIELDS = ["id", "reference", "product_id", "product_uom_qty", "quantity", "date", "state", "location_id",
               "location_dest_id", "picking_id", "is_inventory"]


def quant_state_anomalies(site: str, quants: Iterable[Mapping[str, Any]]) -> Iterator[Observation]:
    """Negative on hand, and reserved above on hand (judged one quant at a time, streaming)."""
    for q in quants:
        on_hand = float(q.get("quantity") or 0)
        reserved = float(q.get("reserved_quantity") or 0)
        if on_hand >= 0 and not reserved > on_hand:
            continue
        product = m2o_name(q.get("product_id")) or "?"
        location = m2o_name(q.get("location_id")) or "?"
        rec = {"id": q["id"], "name": f"{product} @ {location}"}
        if on_hand < 0:
            yield _obs(site, "stock_anomalies", "negative_quant", "stock.quant", rec, 3,
                       f"negative stock: {product} at {location} is {on_hand:g}", {}, quantity=on_hand)
        else:
            yield _obs(site, "stock_anomalies", "reserved_above_on_hand", "stock.quant", rec, 2,
                       f"{product} at {location}: {reserved:g} reserved but {on_hand:g} on hand", {},
                       quantity=on_hand, reserved_quantity=reserved)


def count_variance_candidate(q: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    """A counted quant whose difference passes the quantity threshold (its value decides)."""
    return bool(q.get("inventory_quantity_set")) and abs(float(q.get("inventory_diff_quantity") or 0)) > float(
        params["variance_qty_threshold"])


def count_variances(site: str, quants: Iterable[Mapping[str, Any]], prices: Mapping[int, float],
                    params: Mapping[str, Any]) -> Iterator[Observation]:
    """Counts that differ beyond the thresholds, valued at the product's standard price.

    Above the quantity threshold and the review value, the warehouse manager reviews;
    above the finance value, finance does (higher severity).
    """
    qty_limit = float(params["variance_qty_threshold"])
    review, finance = float(params["variance_value_review"]), float(params["variance_value_finance"])
    used = {"variance_qty_threshold": qty_limit, "variance_value_review": review, "variance_value_finance": finance}
    for q in quants:
        if not count_variance_candidate(q, params):
            continue
        diff = float(q.get("inventory_diff_quantity") or 0)
        value = abs(diff) * float(prices.get(m2o_id(q.get("product_id")) or 0, 0.0))
        if value <= review:
            continue
        level = "finance" if value > finance else "review"
        product = m2o_name(q.get("product_id")) or "?"
        location = m2o_name(q.get("location_id")) or "?"
        reviewer = "finance" if level == "finance" else "the warehouse manager"
        yield _obs(site, "stock_anomalies", f"count_variance_{level}", "stock.quant",
                   {"id": q["id"], "name": f"{product} @ {location}"}, 3 if level == "finance" else 2,
                   f"count of {product} at {location} differs by {diff:+g} ({value:,.0f} in value); "
                   f"to be reviewed by {reviewer}", used, difference=diff, value=round(value, 2), review=level)


def quant_anomalies(site: str, quants: Iterable[Mapping[str, Any]], prices: Mapping[int, float],
                    params: Mapping[str, Any]) -> Iterator[Observation]:
    """Every quant anomaly of a list of quants (the scan streams the two halves separately)."""
    quants = list(quants)
    yield from quant_state_anomalies(site, quants)
    yield from count_variances(site, quants, prices, params)


def abnormal_adjustments(site: str, moves: Iterable[Mapping[str, Any]], params: Mapping[str, Any]
                         ) -> Iterator[Observation]:
    """Inventory adjustments whose quantity is far outside the product's own history.

    History: the product's done moves in the warehouse (the caller reads the last
    `HISTORY_DAYS`). Robust score |q - median| / (1.4826 * MAD) (that is, 0.6745 * |q -
    median| / MAD); an adjustment (`is_inventory`) scoring above `anomaly_mad_score` is
    abnormal. A product needs `MIN_HISTORY` moves to have a "normal".
    """
    limit = float(params["anomaly_mad_score"])
    used = {"anomaly_mad_score": limit, "min_history": MIN_HISTORY, "history_days": HISTORY_DAYS}
    by_product: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for m in moves:
        product_id = m2o_id(m.get("product_id"))
        if product_id is not None and m.get("state", "done") == "done":
            by_product[product_id].append(m)
    for history in by_product.values():
        if len(history) < MIN_HISTORY:
            continue
        qtys = [float(m.get("quantity") or m.get("product_uom_qty") or 0) for m in history]
        median = statistics.median(qtys)
        # A product whose moves are all alike has MAD 0: any clear deviation counts.
        mad = statistics.median(abs(q - median) for q in qtys) or 1.0
        for m, q in zip(history, qtys, strict=True):
            if not m.get("is_inventory"):
                continue
            score = abs(q - median) / (MAD_SCALE * mad)
            if score > limit:
                rec = {"id": m["id"], "name": m.get("reference") or f"move {m['id']}"}
                yield _obs(site, "stock_anomalies", "abnormal_adjustment", "stock.move", rec,
                           min(4, severity_by_multiple(score, limit) + 1),
                           f"{m2o_name(m.get('product_id'))}: adjusted by {q:g}, usual move {median:g} "
                           f"(score {score:.1f})", used, quantity=q, median=median, mad=mad, score=round(score, 2))
