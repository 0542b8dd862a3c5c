"""Odoo events seen per record, and each site's catch-up watermark.

`seen` remembers the `write_date` of the record version siteops last acted on, so the
catch-up scan enqueues only records whose change no event covered (a dropped webhook),
and a webhook replayed for a version already handled is cheap to recognise.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from siteops.store.db import get_engine
from siteops.store.models import Base, utcnow


class OdooEventSeen(Base):
    __tablename__ = "odoo_events_seen"

    site: Mapped[str] = mapped_column(String(16), primary_key=True)
    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    record_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    write_date: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(200))
    seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class CatchUpWatermark(Base):
    __tablename__ = "catch_up_watermarks"

    site: Mapped[str] = mapped_column(String(16), primary_key=True)
    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: Odoo's `write_date` text of the newest record the last complete pass read.
    write_date: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


def _upsert(model: type[Base], key: dict[str, object], values: dict[str, object]) -> None:
    # merge() is a portable upsert (SQLite and PostgreSQL) for these tiny rows; the primary
    # key makes a concurrent double insert fail loudly rather than duplicate.
    from sqlalchemy.orm import Session

    with Session(get_engine()) as session, session.begin():
        session.merge(model(**key, **values))


def mark_seen(site: str, model: str, record_id: int, write_date: str, outcome: str) -> None:
    _upsert(OdooEventSeen, {"site": site, "model": model, "record_id": record_id},
            {"write_date": write_date, "outcome": outcome[:200], "seen_at": utcnow()})


def seen_versions(site: str, model: str, record_ids: list[int]) -> dict[int, str]:
    if not record_ids:
        return {}
    t = OdooEventSeen.__table__
    with get_engine().connect() as conn:
        rows = conn.execute(select(t.c.record_id, t.c.write_date).where(
            t.c.site == site, t.c.model == model, t.c.record_id.in_(record_ids)))
        return {int(r.record_id): str(r.write_date) for r in rows}


def watermark(site: str, model: str) -> str | None:
    t = CatchUpWatermark.__table__
    with get_engine().connect() as conn:
        value = conn.execute(select(t.c.write_date).where(t.c.site == site, t.c.model == model)).scalar()
        return str(value) if value is not None else None


def set_watermark(site: str, model: str, write_date: str) -> None:
    _upsert(CatchUpWatermark, {"site": site, "model": model}, {"write_date": write_date, "updated_at": utcnow()})
