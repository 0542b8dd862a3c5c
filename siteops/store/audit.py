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


def start_run(
    *,
    task_id: str,
    task_name: str,
    site: str | None,
    business_key: str | None,
    attempt: int,
    redelivered: bool,
    worker: str | None,
    pid: int,
    started_at: dt.datetime,
) -> int:
    with get_engine().begin() as conn:
        result = conn.execute(
            insert(_runs).values(
                task_id=task_id,
                task_name=task_name,
                site=site,
                business_key=business_key,
                state=RunState.RUNNING,
                attempt=attempt,
                redelivered=redelivered,
                worker=worker,
                pid=pid,
                transitions=[[RunState.RUNNING, started_at.isoformat()]],
                started_at=started_at,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


def finish_run(
    run_id: int,
    *,
    state: str,
    started_at: dt.datetime,
    duration: float,
    error: BaseException | None = None,
    note: dict[str, Any] | None = None,
) -> None:
    now = utcnow()
    transition: list[Any] = [state, now.isoformat()]
    if note:
        transition.append(note)
    values: dict[str, Any] = {
        "state": state,
        "transitions": [[RunState.RUNNING, started_at.isoformat()], transition],
        "finished_at": now,
        "duration_seconds": duration,
    }
    if error is not None:
        values["error_class"] = type(error).__name__
        values["error_message"] = str(error)[:4000]
    with get_engine().begin() as conn:
        conn.execute(update(_runs).where(_runs.c.id == run_id).values(**values))


def mark_unfinished_lost(task_id: str, *, exclude_run: int | None = None) -> int:
    """Runs of this task that never finished (their process died): mark them lost.

    Returns how many there were, which tells how often this message has killed a worker.
    """
    now = utcnow()
    with get_engine().begin() as conn:
        query = select(_runs.c.id, _runs.c.transitions).where(
            _runs.c.task_id == task_id, _runs.c.state.in_([RunState.RUNNING, RunState.LOST])
        )
        if exclude_run is not None:
            query = query.where(_runs.c.id != exclude_run)
        rows = conn.execute(query).all()
        for row in rows:
            transitions = list(row.transitions or [])
            if not transitions or transitions[-1][0] != RunState.LOST:
                transitions.append([RunState.LOST, now.isoformat()])
                conn.execute(
                    update(_runs)
                    .where(_runs.c.id == row.id)
                    .values(state=RunState.LOST, transitions=transitions, finished_at=now,
                            error_class="WorkerLost",
                            error_message="the process running this attempt died")
                )
        return len(rows)


def mark_worker_runs_lost(worker: str) -> int:
    """Every run still 'running' on a worker that is gone becomes 'lost'."""
    with get_engine().begin() as conn:
        ids = conn.execute(
            select(_runs.c.task_id).where(_runs.c.worker == worker, _runs.c.state == RunState.RUNNING)
        ).scalars().all()
    return sum(mark_unfinished_lost(task_id) for task_id in set(ids))


def running_workers() -> list[str]:
    with get_engine().begin() as conn:
        return [
            w for w in conn.execute(
                select(_runs.c.worker).where(_runs.c.state == RunState.RUNNING).distinct()
            ).scalars().all() if w
        ]


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
    error: BaseException,
    attempts: int,
) -> int:
    with get_engine().begin() as conn:
        result = conn.execute(
            insert(_dead).values(
                task_id=task_id,
                task_name=task_name,
                site=site,
                business_key=business_key,
                args=list(args),
                kwargs=dict(kwargs),
                reason=reason,
                error_class=type(error).__name__,
                error_message=str(error)[:4000],
                attempts=attempts,
                created_at=utcnow(),
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
