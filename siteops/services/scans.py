"""Scan orchestration: read a site's records from Odoo, judge them, remember, owe the alerts.

What counts as a problem is in `siteops.rules.stock`, what to do with it in
`siteops.rules.findings`; this module holds which records each kind reads and the order of
things. A scan decides nothing unless it read everything: a failed or partial read raises
before any finding is touched, and the task is retried.

A scan kind is declared once, in `READERS` below (its name must also be in
`rules.findings.KINDS`, the import-light list the schedule, CLI and exporter use; the two
are checked against each other at import). The tasks `siteops.scan.<kind>` are generated
from `READERS` in `siteops.tasks.scans`.

One (site, kind) scans alone: `run` holds a Redis lock for the scan's duration (see
`ScanLock`); a second scan that finds it held does not wait or retry, it returns
``{"skipped": ...}`` at once: the scan already running reads the same Odoo and owes the
same alerts, and the next beat slot follows. The database backs this up (one active
finding per fingerprint, guarded updates: `store.findings.apply`), so even an expired
lock cannot duplicate a finding.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any

from siteops.config.sites import Site, get_registry
from siteops.observability.metrics import SCAN_DURATION, SCAN_FAILURES, SCAN_LAST_SUCCESS, SCAN_RECORDS
from siteops.rules import stock
from siteops.rules.findings import KINDS, Observation, plan
from siteops.store import findings as store
from siteops.store.models import utcnow

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


class ScanContext:
    """What a reader gets: the site, its Odoo, its warehouse id, `now`, and the record counter."""

    def __init__(self, site: Site, odoo: Any, now: dt.datetime, count: Counted) -> None:
        self.site, self.odoo, self.now, self.count = site, odoo, now, count
        self.params = site.params
        self.warehouse = _warehouse_id(odoo, site)

    def pickings(self, *domain: Any) -> Iterator[Mapping[str, Any]]:
        """The site's pickings matching `domain` (of this warehouse's picking types), streamed."""
        full = [("picking_type_id.warehouse_id", "=", self.warehouse), *domain]
        return self.count(self.odoo.iter_search_read("stock.picking", full, stock.TRANSFER_FIELDS, page_size=PAGE))

    def before(self, **delta: float) -> str:
        return odoo_time(self.now - dt.timedelta(**delta))


def _warehouse_id(odoo: Any, site: Site) -> int:
    rows = odoo.search_read("stock.warehouse", [("code", "=", site.odoo_warehouse)], ["id"], limit=1)
    if not rows:
        from siteops.connectors.errors import PermanentError

        raise PermanentError(f"no Odoo warehouse with code {site.odoo_warehouse!r} for site {site.code}",
                             system="odoo", operation="scan")
    return int(rows[0]["id"])


# --- the scan kinds: what each reads, and which rule judges it -------------------------

def aging_transfers(c: ScanContext) -> list[Observation]:
    return list(stock.aging_transfers(c.site.code, c.pickings(
        ("picking_type_code", "=", "internal"), ("state", "in", list(stock.OPEN_TRANSFER_STATES)),
        ("scheduled_date", "<", c.before(hours=float(c.params["transfer_aging_hours"])))), c.params, c.now))


def overdue_receipts(c: ScanContext) -> list[Observation]:
    return list(stock.overdue_receipts(c.site.code, c.pickings(
        ("picking_type_code", "=", "incoming"), ("state", "not in", list(stock.CLOSED_STATES)),
        ("scheduled_date", "<", c.before(days=float(c.params["receipt_grace_days"])))), c.params, c.now))


def aging_backorders(c: ScanContext) -> list[Observation]:
    return list(stock.aging_backorders(c.site.code, c.pickings(
        ("backorder_id", "!=", False), ("state", "not in", list(stock.CLOSED_STATES)),
        ("scheduled_date", "<", c.before(days=float(c.params["backorder_aging_days"])))), c.params, c.now))


def stock_anomalies(c: ScanContext) -> list[Observation]:
    """Quants and adjustments, streamed: memory follows the anomalies, not the records.

    Quants are judged one at a time as pages arrive; only count-variance candidates are
    kept (to be valued). Adjustments are found first (few), and only their products'
    history is read.
    """
    odoo, params, wh, count = c.odoo, c.params, c.warehouse, c.count
    found: list[Observation] = []
    candidates: list[Mapping[str, Any]] = []

    def judge(quants: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        for q in quants:
            if stock.count_variance_candidate(q, params):
                candidates.append(q)
            yield q

    internal = [("location_id.usage", "=", "internal"), ("location_id.warehouse_id", "=", wh)]
    found += stock.quant_state_anomalies(
        c.site.code, judge(count(odoo.iter_search_read("stock.quant", internal, stock.QUANT_FIELDS, page_size=PAGE))))
    product_ids = sorted({pid for q in candidates if (pid := stock.m2o_id(q["product_id"])) is not None})
    prices = {int(p["id"]): float(p.get("standard_price") or 0)
              for p in odoo.read("product.product", product_ids, ["standard_price"])} if product_ids else {}
    found += stock.count_variances(c.site.code, candidates, prices, params)

    in_wh = ["|", ("location_id.warehouse_id", "=", wh), ("location_dest_id.warehouse_id", "=", wh)]
    recent = [("state", "=", "done"), ("date", ">=", c.before(days=stock.HISTORY_DAYS)), *in_wh]
    adjusted = sorted({pid for m in count(odoo.iter_search_read(
        "stock.move", [*recent, ("is_inventory", "=", True)], ["id", "product_id"], page_size=PAGE))
        if (pid := stock.m2o_id(m.get("product_id"))) is not None})
    for i in range(0, len(adjusted), 200):  # one product's history at most in memory per batch
        history = count(odoo.iter_search_read("stock.move", [*recent, ("product_id", "in", adjusted[i:i + 200])],
                                              stock.MOVE_FIELDS, page_size=PAGE))
        found += stock.abnormal_adjustments(c.site.code, history, params)
    return found


#: THE declaration of the scan kinds: name -> reader. Tasks are generated from it.
READERS: dict[str, Callable[[ScanContext], list[Observation]]] = {
    "aging_transfers": aging_transfers,
    "overdue_receipts": overdue_receipts,
    "stock_anomalies": stock_anomalies,
    "aging_backorders": aging_backorders,
}
if set(READERS) != set(KINDS):  # a kind with no reader (or a reader nobody schedules) is a bug
    raise RuntimeError(f"scan kinds differ: readers {sorted(READERS)}, rules.findings.KINDS {sorted(KINDS)}")


def observe(kind: str, site: Site, odoo: Any, now: dt.datetime, count: Counted) -> list[Observation]:
    """Read what `kind` needs for `site` and return what the rules see in it."""
    reader = READERS.get(kind)
    if reader is None:
        raise ValueError(f"unknown scan kind {kind!r}; kinds: {', '.join(READERS)}")
    return reader(ScanContext(site, odoo, now, count))


# --- one scan ------------------------------------------------------------------------

def alert_channels() -> tuple[str, ...]:
    """The alerts every finding event owes: always Odoo; the webhook when one is configured."""
    from siteops.connectors import webhook

    return ("odoo", "webhook") if webhook.configured_url() else ("odoo",)


def scan_once(site_code: str, kind: str, odoo: Any, *, task_id: str | None = None,
              now: dt.datetime | None = None, channels: tuple[str, ...] = ()) -> tuple[dict[str, Any], store.Applied]:
    """One scan, start to store: read, judge, apply the plan (owing `channels` per event), record the run.

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
                               escalate_after=escalate_after), now=now, channels=channels)
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


def publish_owed(site_code: str, applied: store.Applied, channels: tuple[str, ...]) -> None:
    """After the scan's commit: publish the alerts it now owes. A crash before (or during)
    this leaves the debts unpaid in the store, and the sweep publishes them."""
    from siteops.services import alerts
    from siteops.store import alert_debts

    for event, ids in (("opened", applied.opened), ("escalated", applied.escalated)):
        for channel in channels:
            for finding_id in ids:
                alerts.publish(site_code, finding_id, event, channel)
            alert_debts.published(ids, event, channel)


def run(site_code: str, kind: str, *, task_id: str | None) -> dict[str, Any]:
    """A scan task's body: alone for its (site, kind), then the owed alerts published."""
    from siteops.connectors.odoo import get_client

    lock = ScanLock(site_code, kind, task_id)
    if not lock.acquire():
        log.info("scan %s %s skipped: %s", site_code, kind, lock.refused)
        return {"site": site_code, "kind": kind, "skipped": lock.refused}
    with lock:
        channels = alert_channels()
        summary, applied = scan_once(site_code, kind, get_client(site_code), task_id=task_id, channels=channels)
    publish_owed(site_code, applied, channels)
    if applied.raced:
        summary["raced"] = applied.raced
    return summary


# --- the scan lock ---------------------------------------------------------------------

#: The lock lives this long unless renewed; the holder renews it every third of that. A
#: holder that dies (SIGKILL) frees the (site, kind) within LOCK_TTL; one that merely
#: stalls longer than that loses it, and the store's constraints then keep the findings
#: one per problem.
LOCK_TTL = 60.0
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) "
          "else return 0 end")
_clients: dict[int, Any] = {}


def _redis() -> Any:
    import redis

    from siteops.config.settings import get_settings

    pid = os.getpid()
    if pid not in _clients:  # one client per process: never a parent's socket after fork
        _clients.clear()
        _clients[pid] = redis.Redis.from_url(get_settings().broker_url, socket_timeout=5, socket_connect_timeout=5)
    return _clients[pid]


class ScanLock:
    """A Redis lock on (site, kind) with an expiry, renewed while held, released on exit (also on failure).

    The value names the holder (task id + a random token). The same task id finding its
    own earlier token takes the lock over: a message is only handed out again once the
    attempt that held it is gone (its pool process was killed), and waiting out the TTL
    would turn every such redelivery into a skipped scan.
    """

    def __init__(self, site: str, kind: str, task_id: str | None, ttl: float = LOCK_TTL) -> None:
        self.key = f"siteops:scan-lock:{site}:{kind}"
        self.token = f"{task_id or '-'}:{uuid.uuid4().hex}"
        self.task_id = task_id
        self.ttl_ms = int(ttl * 1000)
        self.refused = ""
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self) -> bool:
        r = _redis()
        if r.set(self.key, self.token, nx=True, px=self.ttl_ms):
            return self._held()
        holder = (r.get(self.key) or b"").decode()
        if self.task_id and holder.startswith(f"{self.task_id}:") and r.set(self.key, self.token, xx=True,
                                                                               px=self.ttl_ms):
            log.warning("scan lock %s: taking over from an earlier attempt of task %s", self.key, self.task_id)
            return self._held()
        held_by = holder.partition(":")[0] or "?"
        self.refused = f"another scan of this site and kind is running (task {held_by})"
        return False

    def _held(self) -> bool:
        self._renewer = threading.Thread(target=self._renew, name=f"renew {self.key}", daemon=True)
        self._renewer.start()
        return True

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_ms / 3000):
            try:
                if not _redis().eval(_RENEW, 1, self.key, self.token, self.ttl_ms):
                    log.warning("scan lock %s was lost (expired while held); the store still guards", self.key)
                    return
            except Exception:  # the broker blinked: try again next period, the TTL still runs
                log.warning("could not renew scan lock %s", self.key, exc_info=True)

    def release(self) -> None:
        self._stop.set()
        try:
            _redis().eval(_RELEASE, 1, self.key, self.token)
        except Exception:  # it expires by itself within the TTL
            log.warning("could not release scan lock %s", self.key, exc_info=True)

    def __enter__(self) -> ScanLock:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
