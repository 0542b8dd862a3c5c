"""Inbound customer messages and their triage, and the human corrections (new labelled data).

The store is the ONLY place a message's personal data lives (sender, body, raw text):
tasks carry the row id, results and logs carry ids, classes and counts. A message is
stored once per `message_id` (the e-mail's Message-ID or the portal's id): a redelivered
POST or a mailbox file seen twice finds the row it made the first time.

`purge_before` enforces the retention period: it blanks the sender, body and raw text of
messages received before the cut-off (the classification, references and priority stay,
so the queue's history and the counts survive without the personal data).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import DateTime, Float, ForeignKey, Integer, String, Text, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from siteops.store.db import get_engine
from siteops.store.models import Base, utcnow

STATUSES = ("new", "review", "routed", "decided")


class Message(Base):
    __tablename__ = "triage_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    source: Mapped[str] = mapped_column(String(32))
    sender: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(500), default="")
    body: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    stored_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    site: Mapped[str | None] = mapped_column(String(16), index=True)
    label: Mapped[str | None] = mapped_column(String(32))
    confidence: Mapped[float | None] = mapped_column(Float)
    evidence: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of words
    refs: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of linked records
    priority: Mapped[float] = mapped_column(Float, default=0.0)
    priority_reasons: Mapped[str] = mapped_column(Text, default="[]")
    model_version: Mapped[str | None] = mapped_column(String(80))
    activity: Mapped[str | None] = mapped_column(String(120))  # "model,res_id,activity_id"
    decided_label: Mapped[str | None] = mapped_column(String(32))
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    purged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Correction(Base):
    """A person's class for a message: new labelled data, and the count of the model's misses."""

    __tablename__ = "triage_corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message: Mapped[int] = mapped_column(ForeignKey("triage_messages.id"), index=True)
    predicted: Mapped[str | None] = mapped_column(String(32))
    corrected: Mapped[str] = mapped_column(String(32))
    decided_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Stored:
    id: int
    created: bool


def add(*, message_id: str, source: str, sender: str | None, subject: str, body: str, raw: str,
        received_at: dt.datetime) -> Stored:
    """Store a message once per message id; a second delivery returns the first row."""
    row = Message(message_id=message_id[:255], source=source[:32], sender=(sender or None) and sender[:320],
                  subject=subject[:500], body=body, raw=raw, received_at=received_at, stored_at=utcnow(),
                  status="new", evidence="[]", refs="[]", priority=0.0, priority_reasons="[]")
    try:
        with Session(get_engine()) as s, s.begin():
            s.add(row)
            s.flush()
            return Stored(int(row.id), True)
    except IntegrityError:  # the unique message id: stored before (or concurrently)
        with Session(get_engine()) as s:
            found = s.scalar(select(Message.id).where(Message.message_id == message_id[:255]))
        if found is None:
            raise
        return Stored(int(found), False)


def get(message_db_id: int) -> Message | None:
    with Session(get_engine(), expire_on_commit=False) as s:
        return s.get(Message, message_db_id)


def save_triage(message_db_id: int, *, status: str, site: str, label: str, confidence: float, evidence: list[str],
                refs: list[dict[str, Any]], priority: float, reasons: list[str], model_version: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    with Session(get_engine()) as s, s.begin():
        s.execute(update(Message).where(Message.id == message_db_id).values(
            status=status, site=site, label=label, confidence=confidence, evidence=json.dumps(evidence),
            refs=json.dumps(refs), priority=priority, priority_reasons=json.dumps(reasons),
            model_version=model_version))


def set_activity(message_db_id: int, model: str, res_id: int, activity_id: int) -> None:
    with Session(get_engine()) as s, s.begin():
        s.execute(update(Message).where(Message.id == message_db_id).values(
            activity=f"{model},{res_id},{activity_id}", status="routed"))


def decide(message_db_id: int, label: str, by: str) -> Correction:
    """Record a person's class: the message takes it, and a correction row keeps it as
    labelled data (also when the person confirms the model: that is a label too)."""
    now = utcnow()
    with Session(get_engine(), expire_on_commit=False) as s, s.begin():
        msg = s.get(Message, message_db_id, with_for_update=True)
        if msg is None:
            raise KeyError(message_db_id)
        c = Correction(message=msg.id, predicted=msg.label, corrected=label, decided_by=by[:64], decided_at=now)
        s.add(c)
        msg.decided_label, msg.decided_by, msg.decided_at, msg.status = label, by[:64], now, "decided"
        return c


def queue(*, site: str | None = None, status: str | None = None, limit: int = 200) -> list[Message]:
    """The triage queue, highest priority first (then oldest first)."""
    q = select(Message)
    if site:
        q = q.where(Message.site == site)
    if status:
        q = q.where(Message.status == status)
    q = q.order_by(Message.priority.desc(), Message.received_at.asc(), Message.id.asc()).limit(limit)
    with Session(get_engine(), expire_on_commit=False) as s:
        return list(s.scalars(q))


def corrections(message_db_id: int | None = None) -> list[Correction]:
    q = select(Correction).order_by(Correction.id)
    if message_db_id is not None:
        q = q.where(Correction.message == message_db_id)
    with Session(get_engine(), expire_on_commit=False) as s:
        return list(s.scalars(q))


def labelled_data() -> list[tuple[str, str]]:
    """(text, label) of every corrected message whose text is still held (not yet purged)."""
    q = (select(Message.subject, Message.body, Correction.corrected).join(Correction, Correction.message == Message.id)
         .where(Message.body.is_not(None)).order_by(Correction.id))
    with get_engine().connect() as conn:
        return [(f"{r.subject}\n{r.body}", str(r.corrected)) for r in conn.execute(q)]


def purge_before(cutoff: dt.datetime, limit: int = 1000) -> int:
    """Blank the personal data of messages received before `cutoff`; returns how many."""
    with Session(get_engine()) as s, s.begin():
        ids = list(s.scalars(select(Message.id).where(Message.received_at < cutoff, Message.purged_at.is_(None))
                             .order_by(Message.id).limit(limit)))
        if not ids:
            return 0
        s.execute(update(Message).where(Message.id.in_(ids)).values(
            sender=None, body=None, raw=None, subject="", purged_at=utcnow()))
        return len(ids)


def counts() -> dict[str, int]:
    with get_engine().connect() as conn:
        rows = conn.execute(select(Message.status, func.count()).group_by(Message.status))
        return {str(st): int(n) for st, n in rows}
