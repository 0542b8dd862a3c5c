"""The store's tables: the audit trail, the dead letters, idempotent operations.

Typed SQLAlchemy 2 models. Timestamps are UTC everywhere (SQLite forgets the zone, so
`UTCDateTime` puts it back on the way out). Args, kwargs and results are JSON: tasks take
ids and small JSON values only, so what is stored is what was sent.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Index, Integer, String, Text, TypeDecorator, text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class RunState:
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    RETRYING = "retrying"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"
    LOST = "lost"  # its worker died with it; recover_lost put the message back
    CANCELLED = "cancelled"  # the broker connection was lost; the message is put back on reconnect
    REVOKED = "revoked"  # an operator revoked (or terminated) it; not run again
    EXPIRED = "expired"  # its message expired before it ran; not run
    PARKED = "parked"  # waiting in the database (store.waits) until it falls due
    FINAL = frozenset({SUCCEEDED, FAILED, DEAD_LETTERED, LOST})


class JobRun(Base):
    """One execution attempt of a task: the audit trail, searchable by business key."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[str] = mapped_column(String(64), index=True)
    task_name: Mapped[str] = mapped_column(String(200), index=True)
    site: Mapped[str | None] = mapped_column(String(8))
    business_key: Mapped[str | None] = mapped_column(String(200), index=True)
    state: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    redelivered: Mapped[bool] = mapped_column(default=False)
    worker: Mapped[str | None] = mapped_column(String(200))
    pid: Mapped[int | None] = mapped_column(Integer)
    # [[state, iso timestamp], ...] in order: running -> retrying/succeeded/...
    transitions: Mapped[list[Any]] = mapped_column(default=list)
    error_class: Mapped[str | None] = mapped_column(String(200))
    error_message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime] = mapped_column()
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    duration_seconds: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        Index("ix_job_runs_site_state", "site", "state"),
        Index("ix_job_runs_worker_state", "worker", "state"),
        # The report's runs of the last days by site and state, and retention's cutoff.
        Index("ix_job_runs_started_site_state", "started_at", "site", "state"),
    )


class DeadLetter(Base):
    """Work that will not succeed by itself: kept with its arguments, replayable."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[str] = mapped_column(String(64), index=True)
    task_name: Mapped[str] = mapped_column(String(200), index=True)
    site: Mapped[str | None] = mapped_column(String(8), index=True)
    business_key: Mapped[str | None] = mapped_column(String(200), index=True)
    args: Mapped[list[Any]] = mapped_column(default=list)
    kwargs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reason: Mapped[str] = mapped_column(String(32))  # permanent, retries_exhausted, poison, ...
    error_class: Mapped[str] = mapped_column(String(200))
    error_message: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    replayed_at: Mapped[dt.datetime | None] = mapped_column()
    replayed_task_id: Mapped[str | None] = mapped_column(String(64))
    # A message set aside by the worker (reason malformed): its raw headers, delivery info
    # and a bounded copy of its body, because there are no usable args to keep.
    message: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    # The exporter's and the report's dead letters waiting, by site and task.
    __table_args__ = (Index("ix_dead_letters_waiting", "replayed_at", "site", "task_name"),)


class OpState:
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"  # an attempt died mid-call: the effect may or may not exist


class Operation(Base):
    """An external side effect, recorded before it is attempted (idempotency key)."""

    __tablename__ = "operations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    site: Mapped[str | None] = mapped_column(String(8))
    task_name: Mapped[str | None] = mapped_column(String(200))
    task_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[Any | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Who runs the effect while it is in flight (store.operations): the worker instance
    # (heartbeat name), the pool process and its start token, when it took the operation
    # (on the holder's own clock, compared only with its own worker's heartbeat) and the
    # lease, on the store's clock, which the holder renews while the effect runs.
    holder_worker: Mapped[str | None] = mapped_column(String(200))
    holder_pid: Mapped[int | None] = mapped_column(Integer)
    holder_token: Mapped[str | None] = mapped_column(String(64))
    holder_since: Mapped[float | None] = mapped_column(Float)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column()


class FindingStatus:
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    ACTIVE = (OPEN, ACKNOWLEDGED)


class Finding(Base):
    """A problem a scan saw: raised once, followed until gone, escalated if it lingers."""

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # site:kind:rule:model:record_id. Unique among active findings only: a problem that
    # comes back after it was resolved is a new finding (with its own alert), the old one
    # stays as history.
    fingerprint: Mapped[str] = mapped_column(String(300), index=True)
    site: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(32))
    rule: Mapped[str] = mapped_column(String(48))
    model: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[int] = mapped_column(Integer)
    record_name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    severity: Mapped[int] = mapped_column(Integer)  # 1 low .. 4 critical
    title: Mapped[str] = mapped_column(String(300))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rule_version: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    first_seen: Mapped[dt.datetime] = mapped_column()
    last_seen: Mapped[dt.datetime] = mapped_column()
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column()
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    escalated_at: Mapped[dt.datetime | None] = mapped_column()
    resolved_at: Mapped[dt.datetime | None] = mapped_column()
    odoo_activity_id: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_findings_site_kind_status", "site", "kind", "status"),
        Index("ix_findings_status_site_kind", "status", "site", "kind"),  # open findings by site and kind
        # One ACTIVE finding per problem, whatever scans overlap (history may repeat it).
        Index("ux_findings_active_fingerprint", "fingerprint", unique=True,
              postgresql_where=text("status IN ('open', 'acknowledged')"),
              sqlite_where=text("status IN ('open', 'acknowledged')")),
    )


class ScanRun(Base):
    """One scan of one kind at one site: what it read and whether it read everything."""

    __tablename__ = "scan_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[str | None] = mapped_column(String(64))
    site: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # complete, failed
    records_read: Mapped[int] = mapped_column(Integer, default=0)
    found: Mapped[int] = mapped_column(Integer, default=0)
    opened: Mapped[int] = mapped_column(Integer, default=0)
    resolved: Mapped[int] = mapped_column(Integer, default=0)
    escalated: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime] = mapped_column()
    finished_at: Mapped[dt.datetime] = mapped_column()
    duration_seconds: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        Index("ix_scan_runs_site_kind_status", "site", "kind", "status", "finished_at"),
        Index("ix_scan_runs_finished_at", "finished_at"),  # retention's cutoff
    )


# Tables that live with their API, in their own modules (imported here so that every
# process that loads the models knows the whole schema).
import siteops.store.alert_debts  # noqa: E402  (the alert ledger: findings owe alerts)
import siteops.store.approvals  # noqa: E402  (approval requests, tiers, delegations, audit)
import siteops.store.events  # noqa: E402  (odoo events seen, catch-up watermarks)
import siteops.store.exchanges  # noqa: E402  (EDI exchanges and control numbers)
import siteops.store.messages  # noqa: E402  (triage: inbound customer messages, corrections)
import siteops.store.reconcile  # noqa: E402  (reconciliation jobs and the audit of their changes)
import siteops.store.shipments  # noqa: E402  (shipments and their tracking)
import siteops.store.upkeep  # noqa: E402  (scan freshness)
import siteops.store.waits  # noqa: E402, F401  (parked waits)
