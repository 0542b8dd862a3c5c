"""Reconciliation jobs in the store: the job (its checkpoint, progress and report) and the
audit of every change a job made.

A job is identified by its job id (chosen by whoever starts it, printed by the CLI). Its
row is the checkpoint: `checkpoint` holds the cursor of the next batch and, between the
planning of a batch and its end, the batch's planned changes (`pending`). A job that is
run again with the same id (a redelivery after a crash, a replay, an operator) resumes
from there: a pending batch is applied again (each change is an operation keyed by job
and record, so what was already done is not done twice), then the next batch follows.

`reconcile_changes` is the audit: one row per change a real run made, unique per (job,
change key), searchable by record name (the business key: picking, PO, product).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, String, Text, UniqueConstraint, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from siteops.store.db import session
from siteops.store.models import Base, UTCDateTime, utcnow


class JobStatus:
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ALL = (QUEUED, RUNNING, SUCCEEDED, FAILED)


class ReconcileJob(Base):
    __tablename__ = "reconcile_jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    site: Mapped[str] = mapped_column(String(8))
    dry_run: Mapped[bool] = mapped_column(Boolean)
    since: Mapped[str | None] = mapped_column(String(32))
    until: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    task_id: Mapped[str | None] = mapped_column(String(64))
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    batches: Mapped[int] = mapped_column(Integer, default=0)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    checkpoint: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_reconcile_jobs_site_kind", "site", "kind", "created_at"),)


class ReconcileChange(Base):
    __tablename__ = "reconcile_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(64), index=True)
    key: Mapped[str] = mapped_column(String(200))
    site: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[int | None] = mapped_column(Integer)
    record: Mapped[str] = mapped_column(String(200), index=True)
    change: Mapped[str] = mapped_column(String(48))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[Any] = mapped_column(JSON, nullable=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("job_id", "key", name="uq_reconcile_changes_job_key"),)


class JobMismatch(ValueError):
    """A job id given again with other parameters: it names a different job."""


def start(*, job_id: str, kind: str, site: str, dry_run: bool, since: str | None, until: str | None,
          task_id: str | None) -> ReconcileJob:
    """Create the job, or take up the one with this id (same parameters only). Marks it running."""
    now = utcnow()
    with session() as s:
        job = s.get(ReconcileJob, job_id, with_for_update=True)
        if job is None:
            job = ReconcileJob(id=job_id, kind=kind, site=site, dry_run=dry_run, since=since, until=until,
                               status=JobStatus.QUEUED, done=0, total=0, batches=0, runs=0, checkpoint={},
                               report={}, created_at=now)
            s.add(job)
            try:
                s.flush()
            except IntegrityError:  # created at the same moment by another delivery
                s.rollback()
                job = s.get(ReconcileJob, job_id, with_for_update=True)
                assert job is not None
        given = (kind, site, dry_run, since, until)
        held = (job.kind, job.site, job.dry_run, job.since, job.until)
        if given != held:
            raise JobMismatch(f"job {job_id} is {_describe(*held)}; it cannot be resumed as {_describe(*given)}")
        if job.status != JobStatus.SUCCEEDED:
            job.status, job.task_id, job.error = JobStatus.RUNNING, task_id, None
            job.started_at = job.started_at or now
            job.runs = (job.runs or 0) + 1
        s.flush()
        s.expunge(job)
        return job


def _describe(kind: str, site: str, dry_run: bool, since: str | None, until: str | None) -> str:
    window = f" {since or '…'}..{until or '…'}" if since or until else ""
    return f"{kind} on {site} ({'dry run' if dry_run else 'real run'}{window})"


def register(*, job_id: str, kind: str, site: str, dry_run: bool, since: str | None, until: str | None,
             task_id: str) -> None:
    """The CLI's record of an enqueued job (so `siteops jobs` lists it before a worker takes it)."""
    try:
        with session() as s:
            if s.get(ReconcileJob, job_id) is None:
                s.add(ReconcileJob(id=job_id, kind=kind, site=site, dry_run=dry_run, since=since, until=until,
                                   status=JobStatus.QUEUED, task_id=task_id, done=0, total=0, batches=0, runs=0,
                                   checkpoint={}, report={}, created_at=utcnow()))
    except IntegrityError:
        pass  # a worker took the job up first: its row stands


def set_total(job_id: str, total: int) -> None:
    with session() as s:
        s.execute(update(ReconcileJob).where(ReconcileJob.id == job_id).values(total=total))


def save_checkpoint(job_id: str, checkpoint: dict[str, Any], *, done: int | None = None,
                    report: dict[str, Any] | None = None, batch_finished: bool = False) -> None:
    """One transaction: the checkpoint, and (at the end of a batch) progress and the report so far."""
    values: dict[str, Any] = {"checkpoint": checkpoint}
    if done is not None:
        values["done"] = done
    if report is not None:
        values["report"] = report
    with session() as s:
        if batch_finished:
            values["batches"] = ReconcileJob.batches + 1
        s.execute(update(ReconcileJob).where(ReconcileJob.id == job_id).values(**values))


def finish(job_id: str, *, status: str, report: dict[str, Any] | None = None, error: str | None = None) -> None:
    values: dict[str, Any] = {"status": status, "finished_at": utcnow(), "error": error}
    if report is not None:
        values["report"] = report
        values["checkpoint"] = {}
    with session() as s:
        s.execute(update(ReconcileJob).where(ReconcileJob.id == job_id).values(**values))


def get(job_id: str) -> ReconcileJob | None:
    with session() as s:
        return s.get(ReconcileJob, job_id)


def search(*, site: str | None = None, kind: str | None = None, limit: int = 50) -> list[ReconcileJob]:
    with session() as s:
        q = select(ReconcileJob).order_by(ReconcileJob.created_at.desc(), ReconcileJob.id)
        if site:
            q = q.where(ReconcileJob.site == site)
        if kind:
            q = q.where(ReconcileJob.kind == kind)
        return list(s.scalars(q.limit(limit)))


def record_change(*, job_id: str, key: str, site: str, kind: str, model: str, record_id: int | None, record: str,
                  change: str, detail: dict[str, Any], result: Any = None) -> bool:
    """Audit one applied change; False when this job had recorded it already (a resumed batch)."""
    try:
        with session() as s:
            s.add(ReconcileChange(job_id=job_id, key=key[:200], site=site, kind=kind, model=model,
                                  record_id=record_id, record=record[:200], change=change, detail=detail,
                                  result=result, at=utcnow()))
        return True
    except IntegrityError:
        return False


def changes(job_id: str) -> list[ReconcileChange]:
    with session() as s:
        return list(s.scalars(select(ReconcileChange).where(ReconcileChange.job_id == job_id)
                              .order_by(ReconcileChange.id)))


def changes_by_record(record: str) -> list[ReconcileChange]:
    with session() as s:
        return list(s.scalars(select(ReconcileChange).where(ReconcileChange.record == record)
                              .order_by(ReconcileChange.id)))


def as_dict(job: ReconcileJob) -> dict[str, Any]:
    return {"job_id": job.id, "kind": job.kind, "site": job.site, "dry_run": job.dry_run, "since": job.since,
            "until": job.until, "status": job.status, "task_id": job.task_id, "done": job.done, "total": job.total,
            "batches": job.batches, "runs": job.runs, "error": job.error,
            "created_at": job.created_at.isoformat() if job.created_at else None,
            "started_at": job.started_at.isoformat() if job.started_at else None,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
            "counts": (job.report or {}).get("counts", {})}


def keys_recorded(job_id: str, keys: Sequence[str]) -> set[str]:
    if not keys:
        return set()
    with session() as s:
        return set(s.scalars(select(ReconcileChange.key).where(ReconcileChange.job_id == job_id,
                                                               ReconcileChange.key.in_(list(keys)))))


def active_findings(site: str, *, after: int = 0, limit: int | None = None, since: str | None = None,
                    until: str | None = None) -> list[dict[str, Any]]:
    """The site's active (open or acknowledged) findings after id `after`, in id order
    (`since`/`until`: first seen in that window, 'YYYY-MM-DD HH:MM:SS' UTC)."""
    from siteops.store.models import Finding, FindingStatus

    q = (select(Finding.id, Finding.kind, Finding.rule, Finding.fingerprint, Finding.record_id, Finding.record_name,
                Finding.status)
         .where(Finding.site == site, Finding.status.in_(FindingStatus.ACTIVE), Finding.id > after)
         .order_by(Finding.id))
    if since:
        q = q.where(Finding.first_seen >= dt.datetime.fromisoformat(since).replace(tzinfo=dt.UTC))
    if until:
        q = q.where(Finding.first_seen < dt.datetime.fromisoformat(until).replace(tzinfo=dt.UTC))
    if limit:
        q = q.limit(limit)
    with session() as s:
        return [dict(r._mapping) for r in s.execute(q)]
