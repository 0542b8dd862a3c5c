"""EDI exchanges and control numbers in the store.

An exchange is one file we sent or received (OCA edi_oca's exchange record, trimmed):
direction, partner, site, document type, control numbers, state, the Odoo record it
belongs to, and the file's checksum — unique per (direction, partner), so the same file
is never applied twice, whoever picks it up. An outbound order also records when its
acknowledgment is due (a long wait kept here, not in a broker ETA) and when it came.

States: out  new -> sent -> acknowledged (997/CONTRL accepted) | error
        in   new -> applied | error (quarantined, with its reason)

Control numbers are allocated per (partner, kind) as rows under a unique constraint, so
a number is never handed out twice — not after a crash, not to two workers at once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint, func, select, update
from sqlalchemy import delete as sa_delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from siteops.store.db import session
from siteops.store.models import Base, utcnow


class ExchangeState:
    NEW = "new"
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    APPLIED = "applied"
    ERROR = "error"
    ALL = (NEW, SENT, ACKNOWLEDGED, APPLIED, ERROR)


class Exchange(Base):
    __tablename__ = "edi_exchanges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    direction: Mapped[str] = mapped_column(String(3))  # in / out
    partner: Mapped[str] = mapped_column(String(16))
    site: Mapped[str | None] = mapped_column(String(8))
    standard: Mapped[str] = mapped_column(String(8))
    doc_type: Mapped[str] = mapped_column(String(32))  # 850, 855,856, ORDERS, CONTRL...
    interchange_control: Mapped[str | None] = mapped_column(String(14))
    group_control: Mapped[str | None] = mapped_column(String(14))
    set_control: Mapped[str | None] = mapped_column(String(14))
    state: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str] = mapped_column(String(200))
    checksum: Mapped[str] = mapped_column(String(64))  # sha256 of the file's bytes
    odoo_model: Mapped[str | None] = mapped_column(String(64))
    odoo_id: Mapped[int | None] = mapped_column(Integer)
    business_key: Mapped[str | None] = mapped_column(String(64), index=True)  # PO name, shipment id
    error: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ack_due_at: Mapped[dt.datetime | None] = mapped_column()
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column()  # 997 / CONTRL
    responded_at: Mapped[dt.datetime | None] = mapped_column()  # 855 / ORDRSP (the business answer)
    overdue_at: Mapped[dt.datetime | None] = mapped_column()  # when the sweep raised "no answer"
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("direction", "partner", "checksum", name="uq_edi_exchanges_file"),
        Index("ix_edi_exchanges_partner_controls", "partner", "direction", "interchange_control"),
        Index("ix_edi_exchanges_state", "state", "ack_due_at"),
    )


class ControlNumber(Base):
    __tablename__ = "edi_control_numbers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    partner: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))  # interchange, group, set
    number: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("partner", "kind", "number", name="uq_edi_control_numbers"),)


MAX_CONTROL = 999_999_999  # ISA13 has 9 digits; UNB 0020 allows 14 but we keep one rule


def allocate(partner: str, kind: str, purpose: str = "") -> int:
    """The next control number of this kind for this partner; never handed out twice."""
    for _ in range(50):
        with session() as s:
            last = s.scalar(select(func.max(ControlNumber.number)).where(ControlNumber.partner == partner,
                                                                         ControlNumber.kind == kind))
        number = int(last or 0) + 1
        if number > MAX_CONTROL:
            raise RuntimeError(f"partner {partner}: {kind} control numbers exhausted")
        try:
            with session() as s:
                s.add(ControlNumber(partner=partner, kind=kind, number=number, purpose=purpose[:200]))
            return number
        except IntegrityError:
            continue  # another process took it: try the next one
    raise RuntimeError(f"partner {partner}: could not allocate a {kind} control number (contention)")


def add(**values: Any) -> Exchange | None:
    """Insert an exchange; None when this file (direction, partner, checksum) is already recorded."""
    values.setdefault("state", ExchangeState.NEW)
    now = utcnow()
    try:
        with session() as s:
            row = Exchange(created_at=now, updated_at=now, **values)
            s.add(row)
            s.flush()
            return row
    except IntegrityError:
        return None


def by_checksum(direction: str, partner: str, checksum: str) -> Exchange | None:
    with session() as s:
        return s.scalars(select(Exchange).where(Exchange.direction == direction, Exchange.partner == partner,
                                                Exchange.checksum == checksum)).first()


def get(exchange_id: int) -> Exchange | None:
    with session() as s:
        return s.get(Exchange, exchange_id)


def set_state(exchange_id: int, state: str, *, expect: str | tuple[str, ...] | None = None,
              **values: Any) -> bool:
    """Move an exchange to `state` (only from `expect` when given); True if it moved."""
    query = update(Exchange).where(Exchange.id == exchange_id)
    if expect is not None:
        query = query.where(Exchange.state.in_((expect,) if isinstance(expect, str) else expect))
    with session() as s:
        return bool(s.execute(query.values(state=state, updated_at=utcnow(), **values)).rowcount)  # type: ignore[attr-defined]


def update_values(exchange_id: int, **values: Any) -> None:
    with session() as s:
        s.execute(update(Exchange).where(Exchange.id == exchange_id).values(updated_at=utcnow(), **values))


def find_outbound(partner: str, *, doc_types: tuple[str, ...], group_control: str | None = None,
                  interchange_control: str | None = None, business_key: str | None = None,
                  odoo_id: int | None = None) -> Exchange | None:
    query = select(Exchange).where(Exchange.direction == "out", Exchange.partner == partner,
                                   Exchange.doc_type.in_(doc_types))
    if group_control is not None:
        query = query.where(Exchange.group_control == group_control)
    if interchange_control is not None:
        query = query.where(Exchange.interchange_control == interchange_control)
    if business_key is not None:
        query = query.where(Exchange.business_key == business_key)
    if odoo_id is not None:
        query = query.where(Exchange.odoo_id == odoo_id)
    with session() as s:
        return s.scalars(query.order_by(Exchange.id.desc())).first()


def inbound_with_control(partner: str, interchange_control: str) -> Exchange | None:
    """An applied inbound file of this partner with this interchange control number."""
    with session() as s:
        return s.scalars(select(Exchange).where(
            Exchange.direction == "in", Exchange.partner == partner,
            Exchange.interchange_control == interchange_control,
            Exchange.state.in_((ExchangeState.APPLIED, ExchangeState.NEW)))).first()


def overdue(now: dt.datetime | None = None, limit: int = 500) -> list[Exchange]:
    """Outbound orders whose answer is past its deadline and not yet raised."""
    now = now or utcnow()
    with session() as s:
        return list(s.scalars(select(Exchange).where(
            Exchange.direction == "out", Exchange.ack_due_at.is_not(None), Exchange.ack_due_at < now,
            Exchange.responded_at.is_(None), Exchange.overdue_at.is_(None),
            Exchange.state.in_((ExchangeState.SENT, ExchangeState.ACKNOWLEDGED))).limit(limit)))


def search(*, site: str | None = None, partner: str | None = None, state: str | None = None,
           direction: str | None = None, limit: int = 200) -> list[Exchange]:
    query = select(Exchange).order_by(Exchange.id.desc())
    for column, value in ((Exchange.site, site), (Exchange.partner, partner), (Exchange.state, state),
                          (Exchange.direction, direction)):
        if value:
            query = query.where(column == value)
    with session() as s:
        return list(s.scalars(query.limit(limit)))


def as_dict(x: Exchange) -> dict[str, Any]:
    return {
        "id": x.id, "direction": x.direction, "partner": x.partner, "site": x.site, "standard": x.standard,
        "doc_type": x.doc_type, "interchange_control": x.interchange_control, "group_control": x.group_control,
        "set_control": x.set_control, "state": x.state, "filename": x.filename, "checksum": x.checksum,
        "odoo_model": x.odoo_model, "odoo_id": x.odoo_id, "business_key": x.business_key, "error": x.error,
        "ack_due_at": x.ack_due_at.isoformat() if x.ack_due_at else None,
        "acknowledged_at": x.acknowledged_at.isoformat() if x.acknowledged_at else None,
        "responded_at": x.responded_at.isoformat() if x.responded_at else None,
        "created_at": x.created_at.isoformat(), "details": x.details,
    }


def find_outbound_for_po(po_id: int) -> Exchange | None:
    with session() as s:
        return s.scalars(select(Exchange).where(Exchange.direction == "out", Exchange.odoo_id == po_id,
                                                Exchange.odoo_model == "purchase.order",
                                                Exchange.doc_type.in_(("850", "ORDERS")))).first()


def delete(exchange_id: int) -> None:
    """Forget a claim (an inbound file whose apply failed transiently: the next poll takes it again)."""
    with session() as s:
        s.execute(sa_delete(Exchange).where(Exchange.id == exchange_id, Exchange.state == ExchangeState.NEW))
