"""The audit trail and the dead-letter store: small, fast writes from task processes.

Every run writes two short transactions (start, finish) through SQLAlchemy Core: this is
on the hot path of every task, so no ORM unit of work and no reads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, func, insert, select, update

from siteops.store.db import get_engine, session
from siteops.store.models import DeadLetter, JobRun, RunState, utcnow

_runs: Table = JobRun.__table__  # type: ignore[assignment]
_dead: Table = DeadLetter.__table__  # type: ignore[assignment]


def record_run(
    *,
    task_id: str,
    task_name: str,
    site: str | None,
    business_key: str | None,
    attempt: int,
    redelivered: bool,
    worker: str | None,
    pid: int | None,
    started_at: dt.datetime | None,
    state: str,
    duration: float | None = None,
    error: BaseException | str | None = None,
    note: dict[str, Any] | None = None,
) -> None:
    """One row per run, written when the run ends: the only store write on the hot path.

    Runs that never end by themselves (their process was killed) get their row from
    whoever notices: the worker's main process for a killed pool process, or
    recover_lost for a worker that died whole.
    """
    now = utcnow()
    final: list[Any] = [state, now.isoformat()]
    if note:
        final.append(note)
    transitions = ([[RunState.RUNNING, started_at.isoformat()]] if started_at else []) + [final]
    values: dict[str, Any] = {
        "task_id": task_id,
        "task_name": task_name,
        "site": site,
        "business_key": business_key,
        "state": state,
        "attempt": attempt,
        "redelivered": redelivered,
        "worker": worker,
        "pid": pid,
        "transitions": transitions,
        "started_at": started_at or now,
        "finished_at": now,
        "duration_seconds": duration,
    }
    if isinstance(error, BaseException):
        values["error_class"] = type(error).__name__
        values["error_message"] = str(error)[:4000]
    elif error:
        values["error_class"], _, values["error_message"] = error.partition(": ")
    with get_engine().begin() as conn:
        conn.execute(_insert_run, values)


_insert_run = insert(_runs)


def count_lost(task_id: str) -> int:
    """How many times this message's process died under it (poison detection)."""
    with get_engine().begin() as conn:
        return int(conn.execute(
            select(func.count()).select_from(_runs).where(_runs.c.task_id == task_id,
                                                          _runs.c.state == RunState.LOST)
        ).scalar_one())


def runs_for(task_id: str) -> list[JobRun]:
    with session() as s:
        return list(s.scalars(select(JobRun).where(JobRun.task_id == task_id).order_by(JobRun.id)))


def runs_by_business_key(key: str) -> list[JobRun]:
    with session() as s:
        return list(s.scalars(select(JobRun).where(JobRun.business_key == key).order_by(JobRun.id)))


# --- dead letters ------------------------------------------------------------------


def add_dead_letter(
    *,
    task_id: str,
    task_name: str,
    site: str | None,
    business_key: str | None,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    reason: str,
    error: BaseException | str,
    attempts: int,
    message: dict[str, Any] | None = None,
) -> int:
    """Store work that will not succeed by itself. `error` is an exception or "Class: text"."""
    if isinstance(error, BaseException):
        error_class, error_message = type(error).__name__, str(error)
    else:
        error_class, _, error_message = error.partition(": ")
    with get_engine().begin() as conn:
        result = conn.execute(
            insert(_dead).values(
                task_id=task_id[:64],
                task_name=task_name[:200],
                site=site[:8] if site else None,
                business_key=business_key[:200] if business_key else None,
                args=list(args),
                kwargs=dict(kwargs),
                reason=reason[:32],
                error_class=error_class[:200],
                error_message=error_message[:4000],
                attempts=attempts,
                created_at=utcnow(),
                message=message,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


def list_dead_letters(
    *, site: str | None = None, include_replayed: bool = False, limit: int = 500
) -> list[DeadLetter]:
    with session() as s:
        query = select(DeadLetter).order_by(DeadLetter.id)
        if site:
            query = query.where(DeadLetter.site == site)
        if not include_replayed:
            query = query.where(DeadLetter.replayed_at.is_(None))
        return list(s.scalars(query.limit(limit)))


def get_dead_letter(dead_id: int) -> DeadLetter | None:
    with session() as s:
        return s.get(DeadLetter, dead_id)


def mark_replayed(dead_id: int, new_task_id: str) -> bool:
    """Claim a dead letter for replay; False if somebody replayed it already."""
    with get_engine().begin() as conn:
        result = conn.execute(
            update(_dead)
            .where(_dead.c.id == dead_id, _dead.c.replayed_at.is_(None))
            .values(replayed_at=utcnow(), replayed_task_id=new_task_id)
        )
        return result.rowcount == 1


def count_dead_letters(site: str | None = None) -> int:
    with get_engine().begin() as conn:
        query = select(func.count()).select_from(_dead).where(_dead.c.replayed_at.is_(None))
        if site:
            query = query.where(_dead.c.site == site)
        return int(conn.execute(query).scalar_one())


def unmark_replayed(dead_id: int) -> None:
    with get_engine().begin() as conn:
        conn.execute(update(_dead).where(_dead.c.id == dead_id).values(replayed_at=None, replayed_task_id=None))
