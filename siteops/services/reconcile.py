"""Reconciliation jobs: compare Odoo with a connector (or the store), report the drift, and
with `apply` fix what may be fixed, in batches, checkpointed, resumable.

A job walks its kind's records in id order, one batch at a time:

1. read the batch and plan it (`siteops.rules.reconcile`: the same functions for a dry
   run and a real run);
2. store the plan as the job's checkpoint (`pending`) before touching anything;
3. real run: apply each planned change that applies, every Odoo write through the task's
   `idempotent_call` keyed by job and record (`reconcile:<job>:<model>:<id>:<change>`),
   and audit it (store.reconcile.record_change, with the job id);
4. in one transaction: the cursor moves past the batch, progress and the report grow.

A job run again with its id (a redelivery after a crash, a revoke, an operator) finds
its checkpoint: a pending batch is applied again from its stored plan (the operations
return what was already done instead of doing it again), then the walk goes on. A job
that finished returns its stored report. A dry run changes nothing anywhere but its own
job row.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from siteops.config.sites import Site, get_registry
from siteops.connectors.errors import PermanentError
from siteops.rules import reconcile as rules
from siteops.rules.reconcile import Item
from siteops.rules.stock import m2o_id
from siteops.store import reconcile as store

log = logging.getLogger(__name__)
#: Records per batch (the checkpoint granularity); tests make it small.
BATCH_SIZE = 100
IdempotentCall = Callable[..., Any]
Progress = Callable[[int, int], None]


class Kind(Protocol):
    """One kind of reconciliation over one site."""

    def total(self) -> int: ...

    def batch(self, cursor: dict[str, Any], size: int) -> tuple[list[Item], dict[str, Any] | None, int]:
        """Plan the batch after `cursor`: (items, the next cursor or None at the end, records read)."""
        ...

    def apply(self, item: Item, call: IdempotentCall, key: str) -> Any:
        """Make one planned change (only items that `apply`); returns what it did (JSON)."""
        ...




def _window(field: str, since: str | None, until: str | None) -> list[Any]:
    domain: list[Any] = []
    if since:
        domain.append((field, ">=", since))
    if until:
        domain.append((field, "<", until))
    return domain


def _warehouse(odoo: Any, site: Site) -> int:
    rows = odoo.search_read("stock.warehouse", [("code", "=", site.odoo_warehouse)], ["id"], limit=1)
    if not rows:
        raise PermanentError(f"no Odoo warehouse with code {site.odoo_warehouse!r} for site {site.code}",
                             system="odoo", operation="reconcile")
    return int(rows[0]["id"])


def _after(domain: list[Any], cursor: dict[str, Any]) -> list[Any]:
    return [*domain, ("id", ">", int(cursor.get("after") or 0))]


# --- shipments ---------------------------------------------------------------------------

class Shipments:
    """Outgoing pickings against the carrier's labels and tracking, and siteops's shipment rows."""

    def __init__(self, site: Site, odoo: Any, since: str | None, until: str | None) -> None:
        from siteops.services.shipping import Shipping

        self.site, self.odoo = site, odoo
        self.shipping = Shipping(site.code, odoo=odoo)
        self.domain = [("picking_type_id.warehouse_id", "=", _warehouse(odoo, site)),
                       ("picking_type_code", "=", "outgoing"), ("state", "!=", "cancel"),
                       *_window("scheduled_date", since, until)]
        self._labels: dict[str, dict[str, Any]] | None = None

    def labels(self) -> dict[str, dict[str, Any]]:
        """The carrier's bought labels by reference (read once per run: one paged list)."""
        if self._labels is None:
            found = self.shipping.call("shipment.list", lambda: self.shipping.carrier.list_bought())
            labels: dict[str, dict[str, Any]] = {}
            for s in reversed(found):  # oldest first, so the newest label of a reference wins
                if s.reference and s.tracking_code:
                    labels[s.reference] = s.as_dict() | {"status": str(s.status)}
            self._labels = labels
        return self._labels

    def total(self) -> int:
        return int(self.odoo.search_count("stock.picking", self.domain)) + 1  # + the labels-without-picking step

    def batch(self, cursor: dict[str, Any], size: int) -> tuple[list[Item], dict[str, Any] | None, int]:
        from siteops.store import shipments

        if cursor.get("phase") == "orphans":
            return self._orphans(), None, 1
        rows = self.odoo.search_read("stock.picking", _after(self.domain, cursor),
                                     ["id", "name", "state", "carrier_tracking_ref"], order="id asc", limit=size)
        if not rows:
            return self._orphans(), None, 1
        labels = self.labels()
        items: list[Item] = []
        for p in rows:
            row = shipments.get(self.site.code, int(p["id"]))
            view = {"tracking_code": row.tracking_code, "status": row.status} if row is not None else None
            items += rules.plan_shipment(p, labels.get(str(p["name"])), view)
        return items, {"phase": "pickings", "after": int(rows[-1]["id"])}, len(rows)

    def _orphans(self) -> list[Item]:
        prefix = f"{self.site.odoo_warehouse}/"
        refs = sorted(r for r in self.labels() if r.startswith(prefix))
        names: set[str] = set()
        for i in range(0, len(refs), 200):
            names |= {str(p["name"]) for p in self.odoo.search_read(
                "stock.picking", [("name", "in", refs[i:i + 200])], ["name"])}
        return rules.labels_without_picking([self.labels()[r] for r in refs], prefix, names)

    def apply(self, item: Item, call: IdempotentCall, key: str) -> Any:
        from siteops.services.shipping import apply_update
        from siteops.store import shipments

        pid, code = int(item.record_id or 0), str(item.detail.get("tracking_code"))
        if item.change == "write_tracking_ref":
            def current() -> str | None:
                rows = self.odoo.read("stock.picking", [pid], ["carrier_tracking_ref"])
                return (rows[0].get("carrier_tracking_ref") or None) if rows else None

            def write() -> dict[str, Any]:
                now = current()
                if now and now != code:  # someone wrote another one since the plan: theirs stays
                    return {"skipped": f"picking has tracking reference {now} now"}
                if now != code:
                    self.odoo.write("stock.picking", [pid], {"carrier_tracking_ref": code})
                return {"carrier_tracking_ref": code}

            return call(key, write, check=lambda: {"carrier_tracking_ref": code} if current() == code else None)
        if item.change == "record_label":
            def record() -> dict[str, Any]:
                label = self.labels().get(item.record)
                if label is None:
                    return {"skipped": "the carrier no longer lists this label"}
                status = str(item.detail.get("status") or "pre_transit")
                row = shipments.record_label(site=self.site.code, picking_id=pid, picking_name=item.record,
                                             account=self.shipping.account.name, label=label,
                                             status=status if status != "unknown" else "pre_transit")
                return {"shipment_row": row.id, "status": row.status}

            def recorded() -> dict[str, Any] | None:
                row = shipments.get(self.site.code, pid)
                return {"shipment_row": row.id, "status": row.status} if row is not None else None

            return call(key, record, check=recorded)
        if item.change == "update_status":
            row = shipments.get(self.site.code, pid)
            if row is None or not row.tracker_id:
                return {"skipped": "no shipment row with a tracker"}
            tracker_id, row_id = row.tracker_id, row.id

            def track() -> dict[str, Any]:
                update = self.shipping.call("tracker.retrieve", lambda: self.shipping.carrier.track(tracker_id))
                return {"status": str(update.status), "changed": apply_update(self.site.code, row_id, update)}

            # Applying a tracking update twice is harmless (same status: no change, no alert).
            return call(key, track, on_unknown="repeat")
        raise ValueError(f"shipments: no apply step for {item.change}")


# --- findings ----------------------------------------------------------------------------

class Findings:
    """Every active finding of the site, re-judged by the scan rules against Odoo as it is now."""

    def __init__(self, site: Site, odoo: Any, since: str | None, until: str | None) -> None:
        self.site, self.odoo = site, odoo
        self.since, self.until = since, until
        self._seen: dict[str, set[str]] = {}

    def _findings(self, after: int, limit: int | None) -> list[dict[str, Any]]:
        return store.active_findings(self.site.code, after=after, limit=limit, since=self.since, until=self.until)

    def total(self) -> int:
        return len(self._findings(0, None))

    def seen(self, kind: str) -> set[str]:
        """What a complete read of `kind` raises now (read once per run and kind; a failed read raises)."""
        from siteops.services.scans import Counted, observe
        from siteops.store.models import utcnow

        if kind not in self._seen:
            self._seen[kind] = {o.fingerprint for o in observe(kind, self.site, self.odoo, utcnow(), Counted())}
        return self._seen[kind]

    def batch(self, cursor: dict[str, Any], size: int) -> tuple[list[Item], dict[str, Any] | None, int]:
        from siteops.rules import shipping as shipping_rules
        from siteops.rules.findings import KINDS
        from siteops.store import shipments

        rows = self._findings(int(cursor.get("after") or 0), size)
        if not rows:
            return [], None, 0
        seen = {k: self.seen(k) for k in sorted({r["kind"] for r in rows} & set(KINDS))}
        status: dict[int, str] = {}
        for r in rows:
            if r["kind"] == shipping_rules.KIND and (row := shipments.get(self.site.code, int(r["record_id"]))):
                status[int(r["record_id"])] = row.status
        nxt = {"after": int(rows[-1]["id"])} if len(rows) == size else None
        return rules.plan_findings(rows, seen, status), nxt, len(rows)

    def apply(self, item: Item, call: IdempotentCall, key: str) -> Any:
        from siteops.rules.findings import Known, Plan
        from siteops.store import findings

        fid = int(item.record_id or 0)

        def resolve() -> dict[str, Any]:
            f = findings.get(fid)
            if f is None or f.status not in ("open", "acknowledged"):
                return {"skipped": f"finding is {f.status if f else 'gone'}"}
            known = Known(id=f.id, fingerprint=f.fingerprint, status=f.status, severity=f.severity,
                          first_seen=f.first_seen, escalated_at=f.escalated_at)
            # A guarded update (WHERE status = what we read): another resolver first wins.
            applied = findings.apply(Plan(resolve=[known]))
            return {"resolved": True} if applied.resolved else {"skipped": "resolved meanwhile"}

        def resolved() -> dict[str, Any] | None:
            f = findings.get(fid)
            return {"resolved": True} if f is not None and f.status == "resolved" else None

        return call(key, resolve, check=resolved)


# --- stock ---------------------------------------------------------------------------------

class Stock:
    """Orderpoints against on-hand: the proposals of the one replenishment rule, read by the
    one reader the approvals flow uses too (`services/replenishment.py`: same suppliers, same
    "already open"). A dry run reports them; a real run turns them into draft requests (`apply`)."""

    def __init__(self, site: Site, odoo: Any, since: str | None, until: str | None) -> None:
        from siteops.services.replenishment import Replenishment

        self.site, self.odoo = site, odoo
        self.reader = Replenishment(odoo, site, get_registry())

    def total(self) -> int:
        return self.reader.count()

    def batch(self, cursor: dict[str, Any], size: int) -> tuple[list[Item], dict[str, Any] | None, int]:
        got = self.reader.propose(after=int(cursor.get("after") or 0), limit=size)
        if not got.read:
            return [], None, 0
        items = rules.plan_stock(got.proposals, got.skipped, got.orderpoints, got.central, got.partners)
        nxt = {"after": got.last_id} if got.read == size else None
        return items, nxt, got.read

    def apply(self, item: Item, call: IdempotentCall, key: str) -> Any:
        """A proposal becomes a DRAFT request in Odoo (a draft transfer from the central
        warehouse, or a draft RFQ to the supplier) with the operation key as its origin:
        nothing moves and nothing is ordered until a person confirms it (approvals apply)."""
        from siteops.store.models import utcnow

        pid, qty = int(item.detail["product_id"]), float(item.detail["quantity"])
        when = utcnow().strftime("%Y-%m-%d %H:%M:%S")
        note = f"siteops reconcile: {item.detail.get('on_hand')} < min {item.detail.get('min')}"
        model = "stock.picking" if item.change == "propose_transfer" else "purchase.order"

        def found() -> dict[str, Any] | None:
            ids = self.odoo.search(model, [("origin", "=", key)], limit=1)
            return {"model": model, "id": int(ids[0])} if ids else None

        if item.change == "propose_transfer":
            if self.reader.central_wh is None:
                return {"skipped": "no central warehouse to transfer from"}
            here, there = self.reader.wh, self.reader.central_wh
            dest, int_type = m2o_id(here["lot_stock_id"]), m2o_id(here["int_type_id"])
            src = m2o_id(there["lot_stock_id"])

            def create() -> dict[str, Any]:
                rid = self.odoo.create("stock.picking", {
                    "picking_type_id": int_type, "location_id": src, "location_dest_id": dest, "origin": key,
                    "scheduled_date": when, "move_ids": [(0, 0, {
                        "name": note, "product_id": pid, "product_uom_qty": qty, "location_id": src,
                        "location_dest_id": dest, "date": when, "origin": key})]})
                return {"model": "stock.picking", "id": rid}

            return call(key, create, check=found)
        if item.change == "propose_purchase":
            supplier = item.detail.get("supplier_id")
            if not supplier:
                return {"skipped": "no supplier known for the product"}
            in_type = m2o_id(self.reader.wh["in_type_id"])
            # The supplierinfo price the rule priced it at (a create over RPC runs no onchange).
            price = round(float(item.detail.get("amount") or 0) / qty, 4) if qty else 0.0

            def order() -> dict[str, Any]:
                rid = self.odoo.create("purchase.order", {
                    "partner_id": int(supplier), "picking_type_id": in_type, "origin": key, "date_order": when,
                    "company_id": 1, "order_line": [(0, 0, {
                        "name": note, "product_id": pid, "product_qty": qty, "price_unit": price,
                        "date_planned": when})]})
                return {"model": "purchase.order", "id": rid}

            return call(key, order, check=found)
        raise ValueError(f"stock: no apply step for {item.change}")


def _po_acks(site: Site, odoo: Any, since: str | None, until: str | None) -> Kind:
    from siteops.services.reconcile_edi import PoAcks  # the EDI connector loads only for this kind

    return PoAcks(site, odoo, since, until)


#: THE declaration of the kinds (the CLI lists them from here), in rules.reconcile.KINDS order.
KINDS: dict[str, Callable[[Site, Any, str | None, str | None], Kind]] = {
    "shipments": Shipments,
    "po-acks": _po_acks,
    "stock": Stock,
    "findings": Findings,
}
if tuple(KINDS) != rules.KINDS:
    raise RuntimeError(f"reconcile kinds differ: {sorted(KINDS)} vs rules.reconcile.KINDS {sorted(rules.KINDS)}")


# --- the job ---------------------------------------------------------------------------

def parse_date(value: str | None, option: str) -> str | None:
    """A date or datetime as the user typed it -> Odoo's 'YYYY-MM-DD HH:MM:SS' (UTC), or a clear error."""
    if value is None or value == "":
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{option}: {value!r} is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


def _report(job: store.ReconcileJob, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"job_id": job.id, "kind": job.kind, "site": job.site, "dry_run": job.dry_run, "since": job.since,
            "until": job.until, "counts": rules.counts(items), "changes": items}


def run(site_code: str, kind: str, job_id: str, *, since: str | None = None, until: str | None = None,
        apply: bool = False, call: IdempotentCall | None = None, progress: Progress | None = None,
        task_id: str | None = None, odoo: Any = None, batch_size: int | None = None) -> dict[str, Any]:
    """Run (or resume) job `job_id`; returns its report. `call`: the task's `idempotent_call`."""
    from siteops.connectors.odoo import get_client

    if kind not in KINDS:
        raise PermanentError(f"unknown reconcile kind {kind!r}; kinds: {', '.join(KINDS)}", operation="reconcile")
    if apply and call is None:
        raise ValueError("a real run needs the task's idempotent_call")
    site = get_registry().get(site_code)
    try:
        job = store.start(job_id=job_id, kind=kind, site=site.code, dry_run=not apply, since=since, until=until,
                          task_id=task_id)
    except store.JobMismatch as exc:
        raise PermanentError(str(exc), operation="reconcile") from None
    if job.status == store.JobStatus.SUCCEEDED:
        log.info("reconcile job %s already finished; returning its report", job_id)
        return dict(job.report)
    size = batch_size or BATCH_SIZE
    try:
        worker = KINDS[kind](site, odoo or get_client(site.code), since, until)
        total = worker.total()
        store.set_total(job_id, total)
        items: list[dict[str, Any]] = list((job.report or {}).get("changes") or [])
        done = int(job.done or 0)
        checkpoint: dict[str, Any] = dict(job.checkpoint or {})
        if progress:
            progress(done, total)
        for planned, cursor, n in _batches(worker, checkpoint, size, job_id):
            outcomes = [_apply_one(worker, job, Item.from_dict(p), call) if apply and p["applies"]
                        else {**p, "outcome": "would_change" if p["applies"] else "reported"} for p in planned]
            items += outcomes
            done = min(total, done + n) if total else done + n
            report = _report(job, items)
            store.save_checkpoint(job_id, {"cursor": cursor} if cursor is not None else {"cursor": None,
                                                                                            "end": True},
                                  done=done, report=report, batch_finished=True)
            if progress:
                progress(done, max(total, done))
        report = _report(job, items)
        store.finish(job_id, status=store.JobStatus.SUCCEEDED, report=report)
        return report
    except BaseException as exc:
        # The checkpoint stays: running the job again continues from it.
        store.finish(job_id, status=store.JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000])
        raise


def _batches(worker: Kind, checkpoint: dict[str, Any], size: int,
             job_id: str) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any] | None, int]]:
    """The job's batches from its checkpoint: a pending (planned, not finished) batch first."""
    if checkpoint.get("end"):
        return
    if "pending" in checkpoint:
        yield list(checkpoint["pending"]), checkpoint.get("next"), int(checkpoint.get("n") or 0)
        cursor = checkpoint.get("next")
    else:
        cursor = checkpoint.get("cursor") or {}
    while cursor is not None:
        items, nxt, n = worker.batch(cursor, size)
        planned = [i.as_dict() for i in items]
        # The plan is stored before anything is changed: a crash from here on resumes with
        # exactly this plan (what the dry run at this moment would have reported).
        store.save_checkpoint(job_id, {"cursor": cursor, "pending": planned, "next": nxt, "n": n})
        yield planned, nxt, n
        cursor = nxt


def _apply_one(worker: Kind, job: store.ReconcileJob, item: Item, call: IdempotentCall | None) -> dict[str, Any]:
    assert call is not None
    key = f"reconcile:{job.id}:{item.key}"
    result = worker.apply(item, call, key)
    skipped = isinstance(result, dict) and "skipped" in result
    store.record_change(job_id=job.id, key=item.key, site=job.site, kind=job.kind, model=item.model,
                        record_id=item.record_id, record=item.record, change=item.change, detail=dict(item.detail),
                        result=result)
    return {**item.as_dict(), "outcome": "skipped" if skipped else "changed", "result": result}
