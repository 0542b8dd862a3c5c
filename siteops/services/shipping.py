"""Shipping: buy one label per ready picking, write it back to Odoo, follow the parcel.

Exactly one label per picking, whatever fails (edi-carriers.md §5.6: no carrier offers
an idempotency key, so siteops keeps its own):

1. a picking with a tracking reference, or whose label operation already succeeded, is
   never bought again (the stored label is written back instead);
2. the shipment is created at the carrier under an operation
   (`carrier:<site>:<picking>:shipment`) with the picking's name as `reference`; after an
   unknown outcome the operation's check looks the shipment up by reference first;
3. the label is bought under a second operation (`carrier:<site>:<picking>:label`) on
   *that* shipment id; after a timeout or a 500 the check looks the shipment up by
   reference, and a repeated buy of the same shipment is refused by the carrier
   (`SHIPMENT.POSTAGE.EXISTS`), which the adapter turns into "here is the label you
   bought". So even a buy that completes at the carrier after we gave up (a timeout
   whose request was still running) cannot make a second label.
4. the tracking reference goes to the picking (a write, idempotent) and a chatter note
   (an operation with a check: the note is looked up by its marker).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from siteops.config.sites import Site, get_registry
from siteops.connectors.carriers.config import CarrierAccount, account_for_site
from siteops.connectors.carriers.easypost import get_carrier
from siteops.connectors.carriers.guard import Guard
from siteops.connectors.carriers.metrics import LABELS_BOUGHT, TRACKING_UPDATES
from siteops.connectors.carriers.model import (
    TERMINAL,
    Address,
    Parcel,
    Rate,
    Shipment,
    ShipmentRequest,
    TrackingUpdate,
)
from siteops.connectors.errors import PermanentError, RetryableError
from siteops.rules import shipping as rules
from siteops.rules.findings import plan
from siteops.rules.stock import m2o_id
from siteops.store import findings as findings_store
from siteops.store import operations, shipments
from siteops.store.models import OpState, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")
PICKING_FIELDS = ["name", "state", "picking_type_code", "partner_id", "carrier_tracking_ref", "weight",
                  "shipping_weight"]
PARTNER_FIELDS = ["name", "street", "street2", "city", "zip", "country_code", "phone", "email"]
IdempotentCall = Callable[..., Any]




class Shipping:
    """One site's shipping: its Odoo, its carrier account (adapter + shared guard)."""

    def __init__(self, site_code: str, odoo: Any | None = None, account: CarrierAccount | None = None) -> None:
        from siteops.connectors.odoo import get_client

        self.site: Site = get_registry().get(site_code)
        self.odoo = odoo or get_client(site_code)
        self.account = account or account_for_site(site_code)
        self.carrier = get_carrier(self.account)
        self.guard = Guard(self.account)

    def call(self, operation: str, fn: Callable[[], T]) -> T:
        return self.guard.call(self.site.code, operation, fn)

    # -- Odoo side --------------------------------------------------------------------------

    def warehouse(self) -> dict[str, Any]:
        rows = self.odoo.search_read("stock.warehouse", [("code", "=", self.site.odoo_warehouse)],
                                     ["id", "partner_id"], limit=1)
        if not rows:
            raise PermanentError(f"no Odoo warehouse with code {self.site.odoo_warehouse!r} for site "
                                 f"{self.site.code}", system="odoo", operation="shipping")
        return dict(rows[0])

    def picking(self, picking_id: int, warehouse_id: int) -> dict[str, Any]:
        rows = self.odoo.search_read("stock.picking", [("id", "=", picking_id),
                                                       ("picking_type_id.warehouse_id", "=", warehouse_id)],
                                     PICKING_FIELDS, limit=1)
        if not rows:
            raise PermanentError(f"picking {picking_id} is not a transfer of site {self.site.code}",
                                 system="odoo", operation="shipping")
        return dict(rows[0])

    def address(self, partner: Any, what: str) -> Address:
        pid = m2o_id(partner)
        rows = self.odoo.read("res.partner", [pid], PARTNER_FIELDS) if pid else []
        if not rows:
            raise PermanentError(f"{what}: no partner", system="odoo", operation="shipping")
        p = rows[0]
        missing = [f for f in ("street", "city", "zip", "country_code") if not p.get(f)]
        if missing:
            raise PermanentError(f"{what}: partner {p.get('name')!r} (res.partner {pid}) has no "
                                 f"{', '.join(missing)}", system="odoo", operation="shipping")
        return Address(name=str(p["name"]), street1=str(p["street"]), street2=p.get("street2") or None,
                       city=str(p["city"]), zip=str(p["zip"]), country=str(p["country_code"]),
                       phone=p.get("phone") or None, email=p.get("email") or None)

    def weight_kg(self, picking: Mapping[str, Any]) -> float:
        weight = float(picking.get("shipping_weight") or picking.get("weight") or 0)
        if weight > 0:
            return weight
        moves = self.odoo.search_read("stock.move", [("picking_id", "=", picking["id"])],
                                      ["product_id", "product_uom_qty"])
        products = {pid for m in moves if (pid := m2o_id(m["product_id"])) is not None}
        per_unit = {int(p["id"]): float(p.get("weight") or 0)
                    for p in self.odoo.read("product.product", sorted(products), ["weight"])} if products else {}
        weight = sum(per_unit.get(m2o_id(m["product_id"]) or 0, 0.0) * float(m["product_uom_qty"] or 0)
                     for m in moves)
        if weight <= 0:
            raise PermanentError(f"picking {picking['name']} has no weight (neither on the picking nor on its "
                                 f"products)", system="odoo", operation="shipping")
        return weight

    def note_posted(self, picking_id: int, marker: str) -> int | None:
        rows = self.odoo.search_read("mail.message", [("model", "=", "stock.picking"), ("res_id", "=", picking_id),
                                                      ("body", "ilike", marker)], ["id"], limit=1)
        return int(rows[0]["id"]) if rows else None

    # -- create_shipment --------------------------------------------------------------------

    def create_shipment(self, idempotent_call: IdempotentCall, picking_id: int) -> dict[str, Any]:
        code = self.site.code
        wh = self.warehouse()
        picking = self.picking(picking_id, int(wh["id"]))
        name = str(picking["name"])
        label_key = f"carrier:{code}:{picking_id}:label"
        op = operations.get_operation(label_key)
        label: dict[str, Any] | None = op["result"] if op and op["state"] == OpState.SUCCEEDED else None
        if label is None:
            why_not = rules.ready_to_ship(picking)
            if why_not:
                return {"picking": name, "skipped": why_not, "tracking_ref": picking.get("carrier_tracking_ref")}
            label = self._buy(idempotent_call, picking, wh)
        row = shipments.record_label(site=code, picking_id=picking_id, picking_name=name, account=self.account.name,
                                     label=label)
        self._write_back(idempotent_call, picking, label)
        return {"picking": name, "picking_id": picking_id, "tracking_code": label["tracking_code"],
                "carrier": label.get("carrier"), "service": label.get("service"),
                "shipment_id": label["shipment_id"], "shipment_row": row.id}

    def _lookup(self, reference: str) -> Shipment | None:
        return self.call("shipment.retrieve", lambda: self.carrier.find_by_reference(reference))

    def _buy(self, idempotent_call: IdempotentCall, picking: Mapping[str, Any],
             wh: Mapping[str, Any]) -> dict[str, Any]:
        code, pid, name = self.site.code, int(picking["id"]), str(picking["name"])
        request = ShipmentRequest(
            reference=name, ship_from=self.address(wh.get("partner_id"), f"warehouse {self.site.odoo_warehouse}"),
            ship_to=self.address(picking.get("partner_id"), f"picking {name}"),
            parcel=Parcel(weight_kg=self.weight_kg(picking)))

        def created() -> dict[str, Any]:
            s = self.call("shipment.create", lambda: self.carrier.create_shipment(request))
            return _with_rates(s)

        def existing_shipment() -> dict[str, Any] | None:
            found = self._lookup(name)
            return _with_rates(found) if found is not None else None

        shipment = idempotent_call(f"carrier:{code}:{pid}:shipment", created, check=existing_shipment)

        def bought() -> dict[str, Any]:
            if shipment.get("tracking_code"):  # the lookup found it bought already
                return {k: v for k, v in shipment.items() if k != "rates"}
            s = self.call("shipment.buy", lambda: self.carrier.buy(_from_dict(shipment)))  # the cheapest rate
            if not s.bought:
                raise RetryableError(f"shipment {s.id} came back from buy without a tracking code",
                                     system="carrier", operation="shipment.buy")
            LABELS_BOUGHT.labels(self.account.name, code).inc()
            return s.as_dict()

        def existing_label() -> dict[str, Any] | None:
            found = self._lookup(name)
            return found.as_dict() if found is not None and found.bought else None

        label: dict[str, Any] = idempotent_call(f"carrier:{code}:{pid}:label", bought, check=existing_label)
        log.info("label for %s: %s %s %s", name, label.get("carrier"), label.get("service"), label["tracking_code"])
        return label

    def _write_back(self, idempotent_call: IdempotentCall, picking: Mapping[str, Any],
                    label: Mapping[str, Any]) -> None:
        pid, code = int(picking["id"]), str(label["tracking_code"])
        current = picking.get("carrier_tracking_ref")
        if current and current != code:
            log.warning("picking %s already has tracking reference %s; not overwriting with ours (%s)",
                        picking["name"], current, code)
        elif current != code:
            self.odoo.write("stock.picking", [pid], {"carrier_tracking_ref": code})
        marker = f"[siteops label {code}]"
        body = (f"<p>{marker} Label bought from {label.get('carrier')} {label.get('service')} "
                f"({self.account.name}): tracking {code}, {label.get('amount')} {label.get('currency')}. "
                f"Carrier shipment {label['shipment_id']}.</p>")
        idempotent_call(f"odoo:{self.site.code}:shipnote:{pid}:{code}",
                        lambda: self.odoo.post_note("stock.picking", pid, body),
                        check=lambda: self.note_posted(pid, marker))

    def ready_pickings(self, limit: int = 2000) -> list[int]:
        """Outgoing pickings of the site that are ready and have no tracking reference yet."""
        wh = self.warehouse()
        return self.odoo.search("stock.picking", [("picking_type_id.warehouse_id", "=", int(wh["id"])),
                                                  ("picking_type_code", "=", "outgoing"), ("state", "=", "assigned"),
                                                  ("carrier_tracking_ref", "=", False)], order="id", limit=limit)

    # -- tracking ---------------------------------------------------------------------------

    def sync_tracking(self, *, min_interval: float = 60.0, limit: int = 200) -> dict[str, Any]:
        """Poll the parcels still travelling (least recently polled first); webhooks are faster,
        this is the backstop. A carrier that is down stops the round; the next one continues."""
        code = self.site.code
        due = shipments.due_for_tracking(code, terminal=tuple(TERMINAL),
                                         before=utcnow() - dt.timedelta(seconds=min_interval), limit=limit)
        summary: dict[str, Any] = {"site": code, "due": len(due), "polled": 0, "changed": 0, "failed": 0, "deferred": 0}
        for index, row in enumerate(due):
            if not row.tracker_id:
                continue
            tracker_id = row.tracker_id
            try:
                update = self.call("tracker.retrieve", lambda tid=tracker_id: self.carrier.track(tid))  # type: ignore[misc]
            except RetryableError as exc:
                summary["deferred"] = len(due) - index
                log.warning("tracking round of %s stopped: %s", code, exc)
                break
            except PermanentError as exc:
                summary["failed"] += 1
                log.warning("tracking %s: %s", row.tracking_code, exc)
                continue
            summary["polled"] += 1
            if apply_update(code, row.id, update, polled=True):
                summary["changed"] += 1
        return summary


def _with_rates(s: Shipment) -> dict[str, Any]:
    return s.as_dict() | {"rates": [vars(r) for r in s.rates]}


def _from_dict(d: Mapping[str, Any]) -> Shipment:
    return Shipment(id=str(d["shipment_id"]), reference=d.get("reference"),
                    rates=tuple(Rate(**r) for r in d.get("rates") or []))


def apply_update(site_code: str, row_id: int, update: TrackingUpdate, *, polled: bool = False) -> bool:
    """Record a tracking update; open or resolve the shipment's finding. True when the status changed."""
    change = shipments.apply_status(row_id, status=str(update.status), carrier_status=update.carrier_status,
                                    detail=update.detail, message=update.message, occurred_at=update.occurred_at,
                                    event_id=update.event_id, polled=polled)
    if not change.changed:
        return False
    row = change.shipment
    TRACKING_UPDATES.labels(row.account, site_code, str(update.status), update.source).inc()
    site = get_registry().get(site_code)
    view = shipments.as_dict(row)
    fingerprints = {f"{site_code}:{rules.KIND}:{rule}:stock.picking:{row.picking_id}"
                    for rule, _ in rules.RULES.values()}
    known = [k for k in findings_store.active(site_code, rules.KIND) if k.fingerprint in fingerprints]
    obs = rules.observation(site_code, view, str(update.status), site.params)
    escalate_after = dt.timedelta(hours=float(site.params.get("escalate_after_hours", 24)))
    todo = plan(known, [obs] if obs else [], complete=False, now=utcnow(), escalate_after=escalate_after)
    todo.resolve = [k for k in known if rules.resolves(str(update.status), k.fingerprint.split(":")[2])]
    # The same alert ledger as the scans': debts written with the finding, published after
    # the commit, and swept if this process dies in between.
    from siteops.services.scans import alert_channels, publish_owed

    channels = alert_channels()
    applied = findings_store.apply(todo, channels=channels)
    publish_owed(site_code, applied, channels)
    return True
