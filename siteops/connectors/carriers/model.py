"""The carrier-neutral model: what siteops asks of any carrier, and what it gets back.

Business logic reads only these types and the neutral `TrackStatus`; each adapter maps
its carrier's shapes onto them (edi-carriers.md §5.5, §5.7) and keeps the raw code next
to the neutral one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class TrackStatus(StrEnum):
    PRE_TRANSIT = "pre_transit"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    EXCEPTION = "exception"
    RETURNED = "returned"
    UNKNOWN = "unknown"


#: Statuses after which a parcel is not polled any more.
TERMINAL = frozenset({TrackStatus.DELIVERED, TrackStatus.RETURNED})
#: Statuses that need a person: they become `shipment_exceptions` findings.
TROUBLE = frozenset({TrackStatus.EXCEPTION, TrackStatus.RETURNED})


@dataclass(frozen=True)
class Address:
    name: str
    street1: str
    city: str
    zip: str
    country: str  # ISO 3166-1 alpha-2
    street2: str | None = None
    state: str | None = None
    company: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Parcel:
    weight_kg: float
    length_cm: float | None = None
    width_cm: float | None = None
    height_cm: float | None = None


@dataclass(frozen=True)
class ShipmentRequest:
    reference: str  # our correlation key at the carrier: the Odoo picking's name
    ship_from: Address
    ship_to: Address
    parcel: Parcel
    service: str | None = None  # None: the cheapest rate
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rate:
    id: str
    carrier: str
    service: str
    amount: str
    currency: str


@dataclass(frozen=True)
class Shipment:
    """A shipment at the carrier; `tracking_code` is set once a label was bought."""

    id: str
    reference: str | None
    rates: tuple[Rate, ...] = ()
    tracking_code: str | None = None
    tracker_id: str | None = None
    carrier: str | None = None
    service: str | None = None
    amount: str | None = None
    currency: str | None = None
    label_url: str | None = None
    status: TrackStatus = TrackStatus.UNKNOWN

    @property
    def bought(self) -> bool:
        return bool(self.tracking_code)

    def as_dict(self) -> dict[str, Any]:
        """The JSON kept as the operation's result (no rates: they are the carrier's business)."""
        return {"shipment_id": self.id, "reference": self.reference, "tracking_code": self.tracking_code,
                "tracker_id": self.tracker_id, "carrier": self.carrier, "service": self.service,
                "amount": self.amount, "currency": self.currency, "label_url": self.label_url}


@dataclass(frozen=True)
class TrackingUpdate:
    tracking_code: str
    status: TrackStatus
    carrier_status: str  # the carrier's own code, kept next to the neutral one
    detail: str | None
    message: str | None
    occurred_at: str | None  # the carrier's time of the latest event (ISO 8601)
    tracker_id: str | None = None
    event_id: str | None = None  # webhook event id (dedupe)
    source: str = "poll"  # "poll" | "webhook"


class Carrier(Protocol):
    """What every carrier adapter offers. Every method raises only siteops.connectors.errors."""

    name: str

    def create_shipment(self, request: ShipmentRequest) -> Shipment: ...

    def buy(self, shipment: Shipment, service: str | None = None) -> Shipment: ...

    def retrieve(self, shipment_id: str) -> Shipment: ...

    def find_by_reference(self, reference: str) -> Shipment | None: ...

    def list_bought(self, page_size: int = 100) -> list[Shipment]: ...

    def void(self, shipment_id: str) -> Shipment: ...

    def track(self, tracker_id: str) -> TrackingUpdate: ...

    def parse_webhook(self, headers: Any, body: bytes, secret: str) -> TrackingUpdate | None: ...
