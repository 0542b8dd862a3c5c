"""The carrier simulator's memory: shipments, labels, trackers and their scripted timelines.

Shaped like EasyPost's objects (edi-carriers.md §5.1): `shp_`, `rate_`, `trk_`, `adr_`,
`prcl_`, `hook_`, `evt_` ids; a shipment is created with rates and bought separately; a
second buy of the same shipment is refused (`SHIPMENT.POSTAGE.EXISTS`). Tracking codes
are deterministic (a counter per simulator), and every tracker follows a script chosen
from its code: most are delivered, some end in an exception (`failure`), some come back
(`return_to_sender`). The timeline runs on the simulator's clock, which tests may move
forward (`advance`), so no test has to wait for a parcel to travel.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

SCRIPTS: dict[str, list[tuple[str, str, str]]] = {
    # (EasyPost status, status_detail, message)
    "delivered": [("pre_transit", "label_created", "Shipping label created"),
                  ("in_transit", "departed_facility", "Departed shipping partner facility"),
                  ("out_for_delivery", "out_for_delivery", "Out for delivery"),
                  ("delivered", "arrived_at_destination", "Delivered, in mailbox")],
    "exception": [("pre_transit", "label_created", "Shipping label created"),
                  ("in_transit", "arrived_at_facility", "Arrived at sorting facility"),
                  ("failure", "address_not_found", "Delivery exception: address not found")],
    "returned": [("pre_transit", "label_created", "Shipping label created"),
                 ("in_transit", "departed_facility", "Departed shipping partner facility"),
                 ("return_to_sender", "return", "Returned to sender: refused by recipient")],
}
SERVICES = [("USPS", "GroundAdvantage", 5.80, 3), ("USPS", "Priority", 7.40, 2), ("UPS", "Ground", 9.10, 4)]


def now_iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def script_of(tracking_code: str, exception_share: float, return_share: float) -> str:
    """Which timeline a parcel follows: fixed by its tracking code (deterministic)."""
    x = int(hashlib.sha256(tracking_code.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if x < exception_share:
        return "exception"
    if x < exception_share + return_share:
        return "returned"
    return "delivered"


class ApiError(Exception):
    """An EasyPost error envelope: {"error": {"code", "message", "errors"}}."""

    def __init__(self, status: int, code: str, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors or []

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "errors": self.errors}}


@dataclass
class TimelineConfig:
    step_seconds: float = 20.0  # time between two tracking events of a parcel
    exception_share: float = 0.1
    return_share: float = 0.1


@dataclass
class CarrierState:
    timeline: TimelineConfig = field(default_factory=TimelineConfig)
    lock: threading.RLock = field(default_factory=threading.RLock)
    addresses: dict[str, dict[str, Any]] = field(default_factory=dict)
    parcels: dict[str, dict[str, Any]] = field(default_factory=dict)
    shipments: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_reference: dict[str, list[str]] = field(default_factory=dict)
    trackers: dict[str, dict[str, Any]] = field(default_factory=dict)
    tracker_by_code: dict[str, str] = field(default_factory=dict)
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    forced: dict[str, str] = field(default_factory=dict)  # tracking code -> script forced by a test
    clock_offset: float = 0.0
    _seq: int = 0
    labels_bought: int = 0

    # -- ids and time -----------------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.clock_offset += float(seconds)

    def new_id(self, prefix: str) -> str:
        with self.lock:
            self._seq += 1
            return f"{prefix}_{self._seq:024x}"

    # -- addresses and parcels --------------------------------------------------------------

    def address(self, raw: Any, field_name: str) -> dict[str, Any]:
        if isinstance(raw, dict) and set(raw) == {"id"}:
            found = self.addresses.get(str(raw["id"]))
            if found is None:
                raise ApiError(404, "NOT_FOUND", "The requested resource could not be found.")
            return found
        if not isinstance(raw, dict):
            raise ApiError(422, "PARAMETER.REQUIRED", "Missing required parameter.",
                           [{"field": field_name, "message": "cannot be blank"}])
        missing = [k for k in ("street1", "city", "zip", "country") if not str(raw.get(k) or "").strip()]
        if missing:
            raise ApiError(422, "ADDRESS.VERIFY.FAILURE", "Address is missing required fields.",
                           [{"field": f"{field_name}.{k}", "message": "cannot be blank"} for k in missing])
        address: dict[str, Any] = {"id": self.new_id("adr"), "object": "Address", "mode": "test",
                   **{k: raw.get(k) for k in ("name", "company", "street1", "street2", "city", "state", "zip",
                                              "country", "phone", "email")}}
        with self.lock:
            self.addresses[address["id"]] = address
        return address

    def parcel(self, raw: Any) -> dict[str, Any]:
        if isinstance(raw, dict) and set(raw) == {"id"}:
            found = self.parcels.get(str(raw["id"]))
            if found is None:
                raise ApiError(404, "NOT_FOUND", "The requested resource could not be found.")
            return found
        try:
            weight = float((raw or {}).get("weight") or 0)
        except (TypeError, ValueError):
            weight = 0.0
        if not isinstance(raw, dict) or weight <= 0:
            raise ApiError(422, "PARCEL.WEIGHT.INVALID", "Parcel weight must be greater than zero.",
                           [{"field": "parcel.weight", "message": "must be greater than 0"}])
        parcel: dict[str, Any] = {"id": self.new_id("prcl"), "object": "Parcel", "mode": "test", "weight": weight,
                  **{k: raw.get(k) for k in ("length", "width", "height", "predefined_package")}}
        with self.lock:
            self.parcels[parcel["id"]] = parcel
        return parcel

    # -- shipments --------------------------------------------------------------------------

    def create_shipment(self, raw: Any, mode: str) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise ApiError(422, "PARAMETER.REQUIRED", "Missing required parameter.",
                           [{"field": "shipment", "message": "cannot be blank"}])
        to_address = self.address(raw.get("to_address"), "shipment.to_address")
        from_address = self.address(raw.get("from_address"), "shipment.from_address")
        parcel = self.parcel(raw.get("parcel"))
        sid = self.new_id("shp")
        t = self.now()
        pounds = parcel["weight"] / 16.0
        rates = [{"id": self.new_id("rate"), "object": "Rate", "mode": mode, "carrier": carrier, "service": service,
                  "rate": f"{base + 0.45 * pounds:.2f}", "currency": "USD", "delivery_days": days,
                  "shipment_id": sid, "carrier_account_id": f"ca_{carrier.lower()}"}
                 for carrier, service, base, days in SERVICES]
        shipment = {"id": sid, "object": "Shipment", "mode": mode, "reference": raw.get("reference"),
                    "status": "unknown", "tracking_code": None, "to_address": to_address,
                    "from_address": from_address, "parcel": parcel, "options": raw.get("options") or {},
                    "rates": rates, "selected_rate": None, "postage_label": None, "tracker": None,
                    "created_at": now_iso(t), "updated_at": now_iso(t), "messages": []}
        with self.lock:
            self.shipments[sid] = shipment
            if shipment["reference"]:
                self.by_reference.setdefault(str(shipment["reference"]), []).append(str(sid))
        return shipment

    def get_shipment(self, id_or_reference: str) -> dict[str, Any]:
        """By id, or by reference (the purchased one first, else the newest)."""
        with self.lock:
            if id_or_reference in self.shipments:
                return self.view(self.shipments[id_or_reference])
            ids = self.by_reference.get(id_or_reference) or []
            if not ids:
                raise ApiError(404, "NOT_FOUND", "The requested resource could not be found.")
            bought = [i for i in ids if self.shipments[i]["tracking_code"]]
            return self.view(self.shipments[(bought or ids)[-1]])

    def buy(self, sid: str, rate: Any) -> dict[str, Any]:
        with self.lock:  # one buy per shipment, even when two arrive together
            shipment = self.shipments.get(sid)
            if shipment is None:
                raise ApiError(404, "NOT_FOUND", "The requested resource could not be found.")
            if shipment["postage_label"] is not None:
                raise ApiError(422, "SHIPMENT.POSTAGE.EXISTS", "Postage already exists for this shipment.")
            rate_id = rate.get("id") if isinstance(rate, dict) else None
            chosen = next((r for r in shipment["rates"] if r["id"] == rate_id), None)
            if chosen is None:
                raise ApiError(422, "SHIPMENT.RATE.INVALID", "The rate you selected is not valid for this shipment.",
                               [{"field": "rate.id", "message": "not a rate of this shipment"}])
            self.labels_bought += 1
            code = f"9400{self.labels_bought:018d}"
            t = self.now()
            tracker = self._new_tracker(code, chosen["carrier"], shipment["mode"], t, sid)
            shipment.update(
                tracking_code=code, selected_rate=chosen, tracker=tracker["id"], status="purchased",
                updated_at=now_iso(t),
                postage_label={"object": "PostageLabel", "id": self.new_id("pl"), "label_file_type": "image/png",
                               "label_size": "4x6", "label_url": f"http://127.0.0.1/labels/{sid}.png",
                               "label_date": now_iso(t), "label_pdf_url": None, "label_zpl_url": None})
            return self.view(shipment)

    def refund(self, sid: str) -> dict[str, Any]:
        with self.lock:
            shipment = self.shipments.get(sid)
            if shipment is None:
                raise ApiError(404, "NOT_FOUND", "The requested resource could not be found.")
            if shipment["postage_label"] is None:
                raise ApiError(422, "SHIPMENT.REFUND.INVALID", "This shipment has no postage to refund.")
            shipment["refund_status"] = "submitted"
            return self.view(shipment)

    def list_shipments(self, params: dict[str, str]) -> dict[str, Any]:
        try:
            page_size = max(1, min(100, int(params.get("page_size") or 20)))
        except ValueError:
            raise ApiError(422, "PARAMETER.INVALID", "page_size must be an integer.") from None
        purchased = params.get("purchased")
        with self.lock:
            ids = sorted(self.shipments, reverse=True)  # newest first, as EasyPost lists
            before = params.get("before_id")
            if before:
                ids = [i for i in ids if i < before]
            if purchased in ("true", "True", "1"):
                ids = [i for i in ids if self.shipments[i]["postage_label"] is not None]
            elif purchased in ("false", "False", "0"):
                ids = [i for i in ids if self.shipments[i]["postage_label"] is None]
            page = [self.view(self.shipments[i]) for i in ids[:page_size]]
        return {"shipments": page, "has_more": len(ids) > page_size}

    def view(self, shipment: dict[str, Any]) -> dict[str, Any]:
        out = dict(shipment)
        if shipment["tracker"]:
            out["tracker"] = self.tracker_view(shipment["tracker"])
        return out

    # -- trackers ---------------------------------------------------------------------------

    def _new_tracker(self, code: str, carrier: str, mode: str, t: float, sid: str | None) -> dict[str, Any]:
        tracker: dict[str, Any] = {"id": self.new_id("trk"), "object": "Tracker", "mode": mode, "tracking_code": code,
                   "carrier": carrier, "shipment_id": sid, "started": t, "created_at": now_iso(t),
                   "pushed": None, "public_url": f"http://127.0.0.1/track/{code}"}
        self.trackers[tracker["id"]] = tracker
        self.tracker_by_code[code] = tracker["id"]
        return tracker

    def create_tracker(self, raw: Any, mode: str) -> dict[str, Any]:
        code = str((raw or {}).get("tracking_code") or "") if isinstance(raw, dict) else ""
        if not code:
            raise ApiError(422, "PARAMETER.REQUIRED", "Missing required parameter.",
                           [{"field": "tracker.tracking_code", "message": "cannot be blank"}])
        with self.lock:
            existing = self.tracker_by_code.get(code)
            if existing:
                return self.tracker_view(existing)
            tracker = self._new_tracker(code, str(raw.get("carrier") or "USPS"), mode, self.now(), None)
            return self.tracker_view(tracker["id"])

    def script(self, code: str) -> list[tuple[str, str, str]]:
        name = self.forced.get(code) or script_of(code, self.timeline.exception_share, self.timeline.return_share)
        return SCRIPTS[name]

    def tracker_view(self, tid: str) -> dict[str, Any]:
        with self.lock:
            tracker = self.trackers.get(tid)
            if tracker is None:
                raise ApiError(404, "NOT_FOUND", "The requested resource could not be found.")
            steps = self.script(tracker["tracking_code"])
            step = max(0.001, self.timeline.step_seconds)
            reached = min(len(steps), 1 + int(max(0.0, self.now() - tracker["started"]) / step))
            details = [{"object": "TrackingDetail", "status": s, "status_detail": d, "message": m,
                        "datetime": now_iso(tracker["started"] + i * step),
                        "tracking_location": {"object": "TrackingLocation", "city": "SAN FRANCISCO", "state": "CA",
                                              "country": "US", "zip": "94107"}}
                       for i, (s, d, m) in enumerate(steps[:reached])]
            last = details[-1]
            return {k: v for k, v in tracker.items() if k not in ("started", "pushed")} | {
                "status": last["status"], "status_detail": last["status_detail"], "tracking_details": details,
                "updated_at": last["datetime"], "est_delivery_date": now_iso(tracker["started"] + 3 * step),
                "signed_by": "J. DOE" if last["status"] == "delivered" else None}

    def force(self, code: str, script: str) -> None:
        if script not in SCRIPTS:
            raise ApiError(422, "PARAMETER.INVALID", f"script must be one of {sorted(SCRIPTS)}")
        with self.lock:
            self.forced[code] = script

    def tracker_changes(self) -> list[tuple[dict[str, Any], str | None]]:
        """Trackers whose status moved since the last push: (tracker view, previous status)."""
        out = []
        with self.lock:
            for tid, tracker in self.trackers.items():
                view = self.tracker_view(tid)
                if view["status"] != tracker["pushed"]:
                    out.append((view, tracker["pushed"]))
                    tracker["pushed"] = view["status"]
        return out

    def counts(self) -> dict[str, Any]:
        with self.lock:
            per_ref: dict[str, int] = {}
            for s in self.shipments.values():
                if s["postage_label"] is not None:
                    per_ref[str(s["reference"])] = per_ref.get(str(s["reference"]), 0) + 1
            return {"shipments": len(self.shipments), "labels": self.labels_bought,
                    "duplicate_references": {r: n for r, n in per_ref.items() if n > 1},
                    "trackers": len(self.trackers), "webhooks": len(self.webhooks)}
