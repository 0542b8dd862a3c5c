"""Shipments in the store: one row per (site, picking) with its label and tracking state.

The label's truth is the carrier's (and the operation that bought it); this row is what
siteops knows for the operator's view (`siteops shipments`), for polling and for
webhooks to find their site. Status changes only move forward in carrier time: a late
or replayed webhook older than what we have is ignored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from siteops.store.db import session
from siteops.store.models import Base, utcnow


class ShipmentRow(Base):
    __tablename__ = "shipments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(8))
    picking_id: Mapped[int] = mapped_column(Integer)
    picking_name: Mapped[str] = mapped_column(String(200))
    account: Mapped[str] = mapped_column(String(32))
    carrier: Mapped[str | None] = mapped_column(String(64))
    service: Mapped[str | None] = mapped_column(String(64))
    shipment_id: Mapped[str] = mapped_column(String(64))
    tracking_code: Mapped[str] = mapped_column(String(64), index=True)
    tracker_id: Mapped[str | None] = mapped_column(String(64))
    label_url: Mapped[str | None] = mapped_column(Text)
    amount: Mapped[str | None] = mapped_column(String(16))
    currency: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(24))  # neutral TrackStatus
    carrier_status: Mapped[str | None] = mapped_column(String(32))
    status_detail: Mapped[str | None] = mapped_column(String(64))
    status_message: Mapped[str | None] = mapped_column(Text)
    status_at: Mapped[str | None] = mapped_column(String(32))  # the carrier's time of the latest event
    last_event_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    polled_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (
        UniqueConstraint("site", "picking_id", name="uq_shipments_site_picking"),
        Index("ix_shipments_site_status", "site", "status"),
    )


@dataclass(frozen=True)
class Change:
    """What applying a tracking update did."""

    shipment: ShipmentRow
    previous: str
    changed: bool


def record_label(*, site: str, picking_id: int, picking_name: str, account: str, label: dict[str, Any],
                 status: str = "pre_transit") -> ShipmentRow:
    """Remember a bought label (idempotent: a repeat returns the existing row)."""
    now = utcnow()
    try:
        with session() as s:
            row = ShipmentRow(site=site, picking_id=picking_id, picking_name=picking_name, account=account,
                              carrier=label.get("carrier"), service=label.get("service"),
                              shipment_id=label["shipment_id"], tracking_code=label["tracking_code"],
                              tracker_id=label.get("tracker_id"), label_url=label.get("label_url"),
                              amount=label.get("amount"), currency=label.get("currency"), status=status,
                              created_at=now, updated_at=now)
            s.add(row)
        return row
    except IntegrityError:
        found = get(site, picking_id)
        assert found is not None
        return found


def get(site: str, picking_id: int) -> ShipmentRow | None:
    with session() as s:
        return s.scalars(select(ShipmentRow).where(ShipmentRow.site == site,
                                                   ShipmentRow.picking_id == picking_id)).one_or_none()


def by_tracking_code(code: str) -> ShipmentRow | None:
    with session() as s:
        return s.scalars(select(ShipmentRow).where(ShipmentRow.tracking_code == code)
                         .order_by(ShipmentRow.id)).first()


def apply_status(row_id: int, *, status: str, carrier_status: str | None, detail: str | None,
                 message: str | None, occurred_at: str | None, event_id: str | None,
                 polled: bool = False) -> Change:
    """Move a shipment to `status` unless the update is older than what we have."""
    now = utcnow()
    with session() as s:
        row = s.get(ShipmentRow, row_id, with_for_update=True)
        if row is None:
            raise LookupError(f"shipment row {row_id} is gone")
        previous = row.status
        if polled:
            row.polled_at = now
        stale = bool(occurred_at and row.status_at and occurred_at < row.status_at)
        duplicate = bool(event_id and row.last_event_id == event_id)
        changed = not stale and not duplicate and status != previous
        if not stale and not duplicate:
            row.status, row.carrier_status, row.status_detail = status, carrier_status, detail
            row.status_message = message
            row.status_at = occurred_at or row.status_at
            row.last_event_id = event_id or row.last_event_id
            row.updated_at = now
        return Change(shipment=row, previous=previous, changed=changed)


def due_for_tracking(site: str, *, terminal: tuple[str, ...], before: dt.datetime, limit: int) -> list[ShipmentRow]:
    """Shipments still travelling, least recently polled first."""
    with session() as s:
        return list(s.scalars(
            select(ShipmentRow)
            .where(ShipmentRow.site == site, ShipmentRow.status.not_in(terminal),
                   or_(ShipmentRow.polled_at.is_(None), ShipmentRow.polled_at < before))
            .order_by(ShipmentRow.polled_at.is_not(None), ShipmentRow.polled_at, ShipmentRow.id)
            .limit(limit)))


def search(*, site: str | None = None, status: str | None = None, limit: int = 1000) -> list[ShipmentRow]:
    with session() as s:
        query = select(ShipmentRow).order_by(ShipmentRow.id)
        if site:
            query = query.where(ShipmentRow.site == site)
        if status:
            query = query.where(ShipmentRow.status == status)
        return list(s.scalars(query.limit(limit)))


def status_counts() -> list[tuple[str, str, int]]:
    with session() as s:
        rows = s.execute(select(ShipmentRow.site, ShipmentRow.status, func.count())
                         .group_by(ShipmentRow.site, ShipmentRow.status))
        return [(r[0], r[1], int(r[2])) for r in rows]


def as_dict(r: ShipmentRow) -> dict[str, Any]:
    return {"id": r.id, "site": r.site, "picking_id": r.picking_id, "picking": r.picking_name, "account": r.account,
            "carrier": r.carrier, "service": r.service, "shipment_id": r.shipment_id,
            "tracking_code": r.tracking_code, "status": r.status, "carrier_status": r.carrier_status,
            "detail": r.status_detail, "message": r.status_message, "status_at": r.status_at,
            "label_url": r.label_url, "amount": r.amount, "currency": r.currency,
            "created_at": r.created_at.isoformat(), "updated_at": r.updated_at.isoformat(),
            "polled_at": r.polled_at.isoformat() if r.polled_at else None}
