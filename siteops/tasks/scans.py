"""Beat-driven scans: read a site's records from Odoo, judge them, remember, alert.

Thin on purpose: which records to read (a domain per scan kind) and the plumbing; what
counts as a problem is in `siteops.rules.stock`, what to do with it in
`siteops.rules.findings`. A scan decides nothing unless it read everything: a failed
or partial read raises before any finding is touched, and the task is retried.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from siteops.config.sites import Site, get_registry
from siteops.observability.metrics import SCAN_DURATION, SCAN_FAILURES, SCAN_LAST_SUCCESS, SCAN_RECORDS
from siteops.rules import stock
from siteops.rules.findings import Observation, plan
from siteops.store import findings as store
from siteops.store.models import utcnow
from siteops.tasks.base import SiteopsTask, siteops_task

log = logging.getLogger(__name__)
PAGE = 2000


def odoo_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


class Counted:
    """Counts records as they stream past, for the scan's metrics and audit."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, rows: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        for row in rows:
            self.n += 1
            yield row


def _warehouse_id(odoo: Any, site: Site) -> int:
    rows = odoo.search_read("stock.warehouse", [("code", "=", site.odoo_warehouse)], ["id"], limit=1)
    if not rows:
        from siteops.connectors.errors import PermanentError

        raise PermanentError(f"no Odoo warehouse with code {site.odoo_warehouse!r} for site {site.code}",
                             system="odoo", operation="scan")
    return int(rows[0]["id"])


def observe(kind: str, site: Site, odoo: Any, now: dt.datetime, count: Counted) -> list[Observation]:
    """Read what `kind` needs for `site` and return what the rules see in it."""
    params = site.params
    wh = _warehouse_id(odoo, site)
    in_wh = ("picking_type_id.warehouse_id", "=", wh)

    def pickings(domain: list[Any]) -> Iterator[Mapping[str, Any]]:
        return count(odoo.iter_search_read("stock.picking", domain, stock.TRANSFER_FIELDS, page_size=PAGE))

    if kind == "aging_transfers":
        cutoff = now - dt.timedelta(hours=float(params["transfer_aging_hours"]))
        return list(stock.aging_transfers(site.code, pickings([
            in_wh, ("picking_type_code", "=", "internal"), ("state", "in", list(stock.OPEN_TRANSFER_STATES)),
            ("scheduled_date", "<", odoo_time(cutoff))]), params, now))
    if kind == "overdue_receipts":
        cutoff = now - dt.timedelta(days=float(params["receipt_grace_days"]))
        return list(stock.overdue_receipts(site.code, pickings([
            in_wh, ("picking_type_code", "=", "incoming"), ("state", "not in", list(stock.CLOSED_STATES)),
            ("scheduled_date", "<", odoo_time(cutoff))]), params, now))
    if kind == "aging_backorders":
        cutoff = now - dt.timedelta(days=float(params["backorder_aging_days"]))
        return list(stock.aging_backorders(site.code, pickings([
            in_wh, ("backorder_id", "!=", False), ("state", "not in", list(stock.CLOSED_STATES)),
            ("scheduled_date", "<", odoo_time(cutoff))]), params, now))
    if kind == "stock_anomalies":
        return stock_anomalies(site, odoo, wh, now, count)
    raise ValueError(f"unknown scan kind {kind!r}")


def stock_anomalies(site: Site, odoo: Any, wh: int, now: dt.datetime, count: Counted) -> list[Observation]:
    """Quants and adjustments, streamed: memory follows the anomalies, not the records.

    Quants are judged one at a time as pages arrive; only count-variance candidates are
    kept (to be valued). Adjustments are found first (few), and only their products'
    history is read.
    """
    params = site.params
    found: list[Observation] = []
    candidates: list[Mapping[str, Any]] = []

    def judge(quants: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        for q in quants:
            if stock.count_variance_candidate(q, params):
                candidates.append(q)
            yield q

    internal = [("location_id.usage", "=", "internal"), ("location_id.warehouse_id", "=", wh)]
    found += stock.quant_state_anomalies(
        site.code, judge(count(odoo.iter_search_read("stock.quant", internal, stock.QUANT_FIELDS, page_size=PAGE))))
    product_ids = sorted({pid for q in candidates if (pid := stock.m2o_id(q["product_id"])) is not None})
    prices = {int(p["id"]): float(p.get("standard_price") or 0)
              for p in odoo.read("product.product", product_ids, ["standard_price"])} if product_ids else {}
    found += stock.count_variances(site.code, candidates, prices, params)

    since = odoo_time(now - dt.timedelta(days=stock.HISTORY_DAYS))
    in_wh = ["|", ("location_id.warehouse_id", "=", wh), ("location_dest_id.warehouse_id", "=", wh)]
    recent = [("state", "=", "done"), ("date", ">=", since), *in_wh]
    adjusted = sorted({pid for m in count(odoo.iter_search_read(
        "stock.move", [*recent, ("is_inventory", "=", True)], ["id", "product_id"], page_size=PAGE))
        if (pid := stock.m2o_id(m.get("product_id"))) is not None})
    for i in range(0, len(adjusted), 200):  # one product's history at most in memory per batch
        history = count(odoo.iter_search_read("stock.move", [*recent, ("product_id", "in", adjusted[i:i + 200])],
                                              stock.MOVE_FIELDS, page_size=PAGE))
        found += stock.abnormal_adjustments(site.code, history, params)
    return found


def scan_once(site_code: str, kind: str, odoo: Any, *, task_id: str | None = None,
              now: dt.datetime | None = None) -> tuple[dict[str, Any], store.Applied]:
    """One scan, start to store: read, judge, apply the plan, record the scan run.

    Raises (and decides nothing) when the read fails or stops part way.
    """
    site = get_registry().get(site_code)
    now = now or utcnow()
    started, t0 = utcnow(), time.perf_counter()
    count = Counted()
    try:
        seen = observe(kind, site, odoo, now, count)
    except BaseException as exc:
        SCAN_FAILURES.labels(site_code, kind).inc()
        store.record_scan(task_id=task_id, site=site_code, kind=kind, status="failed", records_read=count.n,
                          error=f"{type(exc).__name__}: {exc}"[:2000], started_at=started, finished_at=utcnow(),
                          duration_seconds=time.perf_counter() - t0)
        raise  # nothing was decided; the base class retries or dead-letters
    escalate_after = dt.timedelta(hours=float(site.params.get("escalate_after_hours", 24)))
    applied = store.apply(plan(store.active(site_code, kind), seen, complete=True, now=now,
                               escalate_after=escalate_after), now=now)
    duration = time.perf_counter() - t0
    store.record_scan(task_id=task_id, site=site_code, kind=kind, status="complete", records_read=count.n,
                      found=len(seen), opened=len(applied.opened), resolved=len(applied.resolved),
                      escalated=len(applied.escalated), started_at=started, finished_at=utcnow(),
                      duration_seconds=duration)
    SCAN_DURATION.labels(site_code, kind).observe(duration)
    SCAN_RECORDS.labels(site_code, kind).inc(count.n)
    SCAN_LAST_SUCCESS.labels(site_code, kind).set(time.time())
    summary = {"site": site_code, "kind": kind, "records_read": count.n, "found": len(seen),
               "opened": len(applied.opened), "resolved": len(applied.resolved), "escalated": len(applied.escalated)}
    return summary, applied


def run_scan(task: SiteopsTask, site_code: str, kind: str) -> dict[str, Any]:
    """The task body: scan, then alert on what opened or escalated (alerts are tasks of their own)."""
    from siteops.connectors.odoo import get_client
    from siteops.tasks.alerts import alert

    summary, applied = scan_once(site_code, kind, get_client(site_code), task_id=task.request.id)
    for finding_id in applied.opened:
        alert(site_code, finding_id, "opened")
    for finding_id in applied.escalated:
        alert(site_code, finding_id, "escalated")
    return summary


@siteops_task("siteops.scan.aging_transfers", idempotent=True)
def scan_aging_transfers(self: SiteopsTask, site: str) -> dict[str, Any]:
    return run_scan(self, site, "aging_transfers")


@siteops_task("siteops.scan.overdue_receipts", idempotent=True)
def scan_overdue_receipts(self: SiteopsTask, site: str) -> dict[str, Any]:
    return run_scan(self, site, "overdue_receipts")


@siteops_task("siteops.scan.stock_anomalies", idempotent=True)
def scan_stock_anomalies(self: SiteopsTask, site: str) -> dict[str, Any]:
    return run_scan(self, site, "stock_anomalies")


@siteops_task("siteops.scan.aging_backorders", idempotent=True)
def scan_aging_backorders(self: SiteopsTask, site: str) -> dict[str, Any]:
    return run_scan(self, site, "aging_backorders")
