"""What the platform still owes: one row per alert a finding event calls for, until it is paid.

Why a ledger rather than "enqueue after commit and hope": the scan commits its findings,
then publishes their alert tasks; a crash or a failed publish in between used to leave
findings nobody would ever alert (the next scan sees them as known). Now the debt is
written in the same transaction as the finding (or its escalation), and stays unpaid
until the alert task has done its work:

- ``owed_at``: when the finding event happened (the debt was written);
- ``touched_at``: the last time somebody did something about it (the scan published it,
  the sweep re-published it, or an attempt of the alert task started). The sweep only
  re-publishes debts untouched for longer than its grace, so a task still retrying with
  backoff is not duplicated;
- ``paid_at`` + ``outcome``: ``sent`` (the alert went out) or ``moot`` (nothing to alert
  any more: the Odoo record is gone, or the finding was resolved first), with ``detail``.

One row per (finding, event, channel): opened/escalated x odoo/webhook. Alert tasks are
idempotent (their side effects go through `store.operations`), so paying twice or
publishing twice is harmless; the ledger is what makes "at least once" certain.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, select, text, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from siteops.store.db import session
from siteops.store.models import Base, utcnow

EVENTS = ("opened", "escalated")
CHANNELS = ("odoo", "webhook")


class AlertDebt(Base):
    """An alert a finding event calls for, on one channel; paid once it went out (or became moot)."""

    __tablename__ = "alert_debts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    finding_id: Mapped[int] = mapped_column(Integer, ForeignKey("findings.id", ondelete="CASCADE"))
    site: Mapped[str] = mapped_column(String(8))
    event: Mapped[str] = mapped_column(String(16))  # opened, escalated
    channel: Mapped[str] = mapped_column(String(16))  # odoo, webhook
    owed_at: Mapped[dt.datetime] = mapped_column()
    touched_at: Mapped[dt.datetime] = mapped_column()
    publishes: Mapped[int] = mapped_column(Integer, default=0)
    paid_at: Mapped[dt.datetime | None] = mapped_column()
    outcome: Mapped[str | None] = mapped_column(String(16))  # sent, moot
    detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("finding_id", "event", "channel", name="uq_alert_debts_finding_event_channel"),
        # The sweep's question, "what is unpaid and untouched for a while", stays an index scan.
        Index("ix_alert_debts_unpaid", "touched_at", postgresql_where=text("paid_at IS NULL"),
              sqlite_where=text("paid_at IS NULL")),
    )


@dataclass(frozen=True)
class Debt:
    id: int
    finding_id: int
    site: str
    event: str
    channel: str
    touched_at: dt.datetime


def owe(s: Session, finding_id: int, site: str, event: str, channels: Iterable[str], now: dt.datetime) -> None:
    """Record, inside the caller's transaction, that `event` of a finding must be alerted."""
    for channel in channels:
        if channel not in CHANNELS:
            raise ValueError(f"unknown alert channel {channel!r}; channels: {', '.join(CHANNELS)}")
        s.add(AlertDebt(finding_id=finding_id, site=site, event=event, channel=channel, owed_at=now,
                        touched_at=now, publishes=0))


def _touch(s: Session, debt_id: int, expect: dt.datetime | None, now: dt.datetime, publish: bool) -> bool:
    query = update(AlertDebt).where(AlertDebt.id == debt_id, AlertDebt.paid_at.is_(None))
    if expect is not None:
        query = query.where(AlertDebt.touched_at == expect)  # two sweepers: only one wins
    values: dict[str, object] = {"touched_at": now}
    if publish:
        values["publishes"] = AlertDebt.publishes + 1
    return s.execute(query.values(**values)).rowcount == 1  # type: ignore[attr-defined]


def published(finding_ids: Sequence[int], event: str, channel: str) -> None:
    """The scan published these alerts: start the sweep's grace from now."""
    if not finding_ids:
        return
    with session() as s:
        s.execute(update(AlertDebt).where(AlertDebt.finding_id.in_(list(finding_ids)), AlertDebt.event == event,
                                          AlertDebt.channel == channel, AlertDebt.paid_at.is_(None))
                  .values(touched_at=utcnow(), publishes=AlertDebt.publishes + 1))


def attempt(finding_id: int, event: str, channel: str) -> bool:
    """An alert task starts: True while the debt is unpaid (the work is still owed)."""
    with session() as s:
        row = s.execute(select(AlertDebt.id, AlertDebt.paid_at).where(
            AlertDebt.finding_id == finding_id, AlertDebt.event == event, AlertDebt.channel == channel)).first()
        if row is None:
            return True  # a finding from before the ledger, or a replay: do the (idempotent) work
        if row.paid_at is not None:
            return False
        _touch(s, row.id, None, utcnow(), publish=False)
        return True


def pay(finding_id: int, event: str, channel: str, outcome: str, detail: str | None = None) -> bool:
    """Mark the debt paid; False when it already was (the first payment's outcome stands)."""
    with session() as s:
        result = s.execute(update(AlertDebt).where(
            AlertDebt.finding_id == finding_id, AlertDebt.event == event, AlertDebt.channel == channel,
            AlertDebt.paid_at.is_(None)).values(paid_at=utcnow(), outcome=outcome, detail=(detail or None)))
        return result.rowcount == 1  # type: ignore[attr-defined]


def unpaid(*, older_than: dt.timedelta, limit: int = 500, now: dt.datetime | None = None) -> list[Debt]:
    """Unpaid debts nobody touched for `older_than` (oldest first)."""
    cutoff = (now or utcnow()) - older_than
    with session() as s:
        rows = s.execute(select(AlertDebt).where(AlertDebt.paid_at.is_(None), AlertDebt.touched_at <= cutoff)
                         .order_by(AlertDebt.touched_at, AlertDebt.id).limit(limit)).scalars().all()
        return [Debt(r.id, r.finding_id, r.site, r.event, r.channel, r.touched_at) for r in rows]


def claim_for_publish(debt: Debt) -> bool:
    """Take a swept debt for re-publishing; False if another sweeper (or an attempt) touched it first."""
    with session() as s:
        return _touch(s, debt.id, debt.touched_at, utcnow(), publish=True)


def dead_lettered(debts: Sequence[Debt], task_names: dict[str, str]) -> set[tuple[int, str, str]]:
    """(finding, event, channel) of the debts whose alert task waits in the dead-letter store, not replayed."""
    from siteops.store.models import DeadLetter

    by_task = {name: channel for channel, name in task_names.items()}
    keys = sorted({str(d.finding_id) for d in debts})
    with session() as s:
        rows = s.execute(select(DeadLetter.task_name, DeadLetter.business_key, DeadLetter.args).where(
            DeadLetter.task_name.in_(list(by_task)), DeadLetter.business_key.in_(keys),
            DeadLetter.replayed_at.is_(None))).all()
    parked = set()
    for name, key, args in rows:
        event = args[2] if isinstance(args, list) and len(args) > 2 else None
        if key and str(key).isdigit() and isinstance(event, str):
            parked.add((int(key), event, by_task[name]))
    return parked


def debts_of(finding_id: int) -> list[AlertDebt]:
    with session() as s:
        return list(s.scalars(select(AlertDebt).where(AlertDebt.finding_id == finding_id).order_by(AlertDebt.id)))
