"""Parked waits: work that must wait longer than the broker can safely hold it.

Redis hands an unacknowledged message out again after its visibility timeout, and an
ETA message is held in a worker's memory, so a wait of hours must not live in the
broker (DESIGN.md, "long waits live in the database"). A task that must wait longer
than the policy's backoff cap (a `Retry-After: 7200`, an open circuit breaker, "check
the receipt again in two days") is *parked* here, its message acknowledged, and the
sweeper (`siteops.worker.sweeper`) enqueues it again when it falls due, with its
original task id.

States: ``waiting`` -> ``claimed`` (a sweeper is enqueueing it) -> ``enqueued``; or
``refused`` when the send path would not take it back (an unknown site, a secret in its
arguments). A claim older than `STALE_CLAIM` is taken over: its sweeper died between
claim and publish, so the task may be enqueued twice with one task id (tasks that park
keep the idempotency contract).

A message is parked once per (task id, retry count): a redelivery of the same message finds
its wait and parks nothing new. The message the sweeper enqueues carries the wait's id
(`RESUMED_HEADER`); when *that* run parks again on the same retry count (an open circuit
does not spend a retry, and a 60 s outage parks a task many times) the finished wait is
re-armed instead, or the task would be acknowledged with no wait left to bring it back.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Table, Text, UniqueConstraint, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from siteops.store.db import get_engine, session
from siteops.store.models import Base, utcnow

STALE_CLAIM = dt.timedelta(minutes=2)
#: The message header the sweeper sets on a resumed task: the id of the wait it came from.
RESUMED_HEADER = "siteops_resumed_wait"


class WaitState:
    WAITING = "waiting"
    CLAIMED = "claimed"
    ENQUEUED = "enqueued"
    REFUSED = "refused"


class ParkedWait(Base):
    """One task waiting in the database until `due_at`."""

    __tablename__ = "parked_waits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[str] = mapped_column(String(64), index=True)  # the original task id, kept on re-enqueue
    task_name: Mapped[str] = mapped_column(String(200))
    site: Mapped[str | None] = mapped_column(String(8))
    business_key: Mapped[str | None] = mapped_column(String(200), index=True)
    args: Mapped[list[Any]] = mapped_column(JSON, default=list)
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The retry count the re-enqueued message carries, so a parked retry still counts.
    retries: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(String(32))  # rate_limited, circuit_open, ...
    error: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[dt.datetime] = mapped_column()
    state: Mapped[str] = mapped_column(String(16), default=WaitState.WAITING)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[dt.datetime | None] = mapped_column()
    enqueued_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (
        # A redelivered message parks once: same task id and retry count is the same wait.
        UniqueConstraint("task_id", "retries", name="uq_parked_waits_task_retries"),
        Index("ix_parked_waits_state_due", "state", "due_at"),
    )


_waits: Table = ParkedWait.__table__  # type: ignore[assignment]


def park(*, task_id: str, task_name: str, site: str | None, business_key: str | None, args: list[Any],
         kwargs: dict[str, Any], retries: int, reason: str, due_at: dt.datetime,
         error: str | None = None, resumed_from: int | None = None) -> int:
    """Record a wait; returns its id (the existing one if this message parked already).

    `resumed_from`: the wait the parking run was enqueued from (its `RESUMED_HEADER`). If
    that is the wait this key already has, the run is a later one, not a redelivery: the
    wait is armed again with the new due time (from `claimed` as well, since the resumed
    run can park before its sweeper has marked the wait enqueued)."""
    if due_at.tzinfo is None:
        raise ValueError("due_at must be a UTC-aware datetime")
    values = dict(task_id=task_id, task_name=task_name, site=site, business_key=business_key, args=list(args),
                  kwargs=dict(kwargs), retries=retries, reason=reason[:32], error=(error or None) and error[:4000],
                  due_at=due_at, state=WaitState.WAITING, created_at=utcnow())
    try:
        with get_engine().begin() as conn:
            key = conn.execute(insert(_waits).values(**values)).inserted_primary_key
            assert key is not None
            return int(key[0])
    except IntegrityError:
        with get_engine().begin() as conn:
            wait_id = int(conn.execute(select(_waits.c.id).where(_waits.c.task_id == task_id,
                                                                  _waits.c.retries == retries)).scalar_one())
            if resumed_from == wait_id:
                conn.execute(update(_waits).where(_waits.c.id == wait_id,
                                                  _waits.c.state.in_([WaitState.CLAIMED, WaitState.ENQUEUED]))
                             .values(state=WaitState.WAITING, due_at=due_at, reason=values["reason"],
                                     error=values["error"], args=values["args"], kwargs=values["kwargs"],
                                     claimed_by=None, claimed_at=None, enqueued_at=None))
            return wait_id


def claim_due(*, now: dt.datetime | None = None, limit: int = 100, claimer: str | None = None) -> list[ParkedWait]:
    """Claim the waits that are due, atomically: a row goes to exactly one sweeper.

    Each row is claimed by a conditional UPDATE (state still waiting, or a stale claim),
    which PostgreSQL and SQLite both apply atomically per row, so two platform workers
    sweeping at once never enqueue the same wait twice.
    """
    now = now or utcnow()
    claimer = claimer or uuid.uuid4().hex
    claimable = or_(_waits.c.state == WaitState.WAITING,
                    (_waits.c.state == WaitState.CLAIMED) & (_waits.c.claimed_at < now - STALE_CLAIM))
    with get_engine().begin() as conn:
        ids = list(conn.execute(select(_waits.c.id).where(_waits.c.due_at <= now, claimable)
                                .order_by(_waits.c.due_at).limit(limit)).scalars())
    claimed: list[int] = []
    for wait_id in ids:
        with get_engine().begin() as conn:
            result = conn.execute(update(_waits).where(_waits.c.id == wait_id, claimable)
                                  .values(state=WaitState.CLAIMED, claimed_by=claimer, claimed_at=now))
            if result.rowcount == 1:
                claimed.append(wait_id)
    if not claimed:
        return []
    with session() as s:
        return list(s.scalars(select(ParkedWait).where(ParkedWait.id.in_(claimed)).order_by(ParkedWait.due_at)))


def _finish(wait_id: int, claimer: str | None, **values: Any) -> bool:
    query = update(_waits).where(_waits.c.id == wait_id, _waits.c.state == WaitState.CLAIMED)
    if claimer is not None:
        query = query.where(_waits.c.claimed_by == claimer)
    with get_engine().begin() as conn:
        return bool(conn.execute(query.values(**values)).rowcount == 1)


def mark_enqueued(wait_id: int, claimer: str | None = None) -> bool:
    return _finish(wait_id, claimer, state=WaitState.ENQUEUED, enqueued_at=utcnow())


def mark_refused(wait_id: int, error: str, claimer: str | None = None) -> bool:
    return _finish(wait_id, claimer, state=WaitState.REFUSED, error=error[:4000])


def release(wait_id: int, claimer: str | None = None) -> bool:
    """Give a claim back (the publish failed): the next sweep tries again."""
    return _finish(wait_id, claimer, state=WaitState.WAITING, claimed_by=None, claimed_at=None)


def reschedule(wait_id: int, due_at: dt.datetime) -> bool:
    """Move a waiting row's due time (an operator's "retry now", or a test)."""
    with get_engine().begin() as conn:
        return bool(conn.execute(update(_waits).where(_waits.c.id == wait_id, _waits.c.state == WaitState.WAITING)
                                 .values(due_at=due_at)).rowcount == 1)


def get_wait(wait_id: int) -> ParkedWait | None:
    with session() as s:
        return s.get(ParkedWait, wait_id)


def waits_for(task_id: str) -> list[ParkedWait]:
    with session() as s:
        return list(s.scalars(select(ParkedWait).where(ParkedWait.task_id == task_id).order_by(ParkedWait.id)))


def list_waits(*, site: str | None = None, include_done: bool = False, limit: int = 500) -> list[ParkedWait]:
    with session() as s:
        query = select(ParkedWait).order_by(ParkedWait.due_at)
        if site:
            query = query.where(ParkedWait.site == site)
        if not include_done:
            query = query.where(ParkedWait.state.in_((WaitState.WAITING, WaitState.CLAIMED)))
        return list(s.scalars(query.limit(limit)))
