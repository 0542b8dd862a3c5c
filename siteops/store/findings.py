"""Findings and scan runs in the store: applying a scan's plan in one transaction.

One active finding per problem is the database's promise (a partial unique index on the
fingerprint, migration 0005), not only the scan lock's: overlapping scans, a retry that
overlaps the next slot, or a one-off `siteops scan` during beat's cannot duplicate it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from siteops.rules.findings import Known, Observation, Plan, escalated_severity
from siteops.store import alert_debts, upkeep
from siteops.store.db import session
from siteops.store.models import Finding, FindingStatus, ScanRun, utcnow


def active(site: str, kind: str) -> list[Known]:
    with session() as s:
        rows = s.execute(
            select(Finding.id, Finding.fingerprint, Finding.status, Finding.severity, Finding.first_seen,
                   Finding.escalated_at)
            .where(Finding.site == site, Finding.kind == kind, Finding.status.in_(FindingStatus.ACTIVE))
        ).all()
    return [Known(id=r.id, fingerprint=r.fingerprint, status=r.status, severity=r.severity,
                  first_seen=r.first_seen, escalated_at=r.escalated_at) for r in rows]


@dataclass
class Applied:
    opened: list[int] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    touched: int = 0
    #: Changes another scan made first (a duplicate it opened, a status it changed): skipped.
    raced: int = 0


def _new(obs: Observation, now: dt.datetime) -> dict[str, Any]:
    return dict(fingerprint=obs.fingerprint, site=obs.site, kind=obs.kind, rule=obs.rule, model=obs.model,
                record_id=obs.record_id, record_name=obs.record_name[:200], status=FindingStatus.OPEN,
                severity=obs.severity, title=obs.title[:300], details=dict(obs.details),
                rule_version=obs.rule_version, params=dict(obs.params), first_seen=now, last_seen=now)


def _insert_active(s: Session, values: dict[str, Any]) -> int | None:
    """Insert an open finding unless its fingerprint is already active; its id, or None.

    ON CONFLICT DO NOTHING (PostgreSQL and SQLite alike) against the partial unique index:
    when an overlapping scan opened the same problem first, this one simply does not.
    """
    dialect = s.get_bind().dialect.name
    insert_: Any = pg_insert if dialect == "postgresql" else sqlite_insert
    row = s.execute(insert_(Finding).values(**values).on_conflict_do_nothing().returning(Finding.id)).first()
    return None if row is None else int(row[0])


def apply(plan: Plan, *, now: dt.datetime | None = None, channels: Sequence[str] = ()) -> Applied:
    """Apply a scan's plan in one transaction; `channels`: the alerts each opening and escalation owes.

    Every change is guarded by the state the plan saw (UPDATE ... WHERE status = expected,
    rowcount checked): a change another scan or an operator made in between wins, and this
    scan skips it rather than undo it or alert it a second time. The alert debts are written
    in the same transaction as their finding, so no finding can exist without its debt.
    """
    now = now or utcnow()
    result = Applied()
    with session() as s:
        for obs in plan.open:
            finding_id = _insert_active(s, _new(obs, now))
            if finding_id is None:
                result.raced += 1
                continue
            result.opened.append(finding_id)
            alert_debts.owe(s, finding_id, obs.site, "opened", channels, now)
        for known, obs in plan.touch:
            done = s.execute(update(Finding).where(Finding.id == known.id, Finding.status == known.status).values(
                last_seen=now, severity=max(known.severity, obs.severity), details=dict(obs.details)))
            result.touched += _changed(done)
        for known, obs in plan.escalate:
            done = s.execute(update(Finding).where(
                Finding.id == known.id, Finding.status == FindingStatus.OPEN, Finding.escalated_at.is_(None)).values(
                last_seen=now, escalated_at=now, details=dict(obs.details),
                severity=escalated_severity(max(known.severity, obs.severity))))
            if _changed(done):
                result.escalated.append(known.id)
                alert_debts.owe(s, known.id, obs.site, "escalated", channels, now)
            else:
                result.raced += 1
        for known in plan.resolve:
            done = s.execute(update(Finding).where(Finding.id == known.id, Finding.status == known.status).values(
                status=FindingStatus.RESOLVED, resolved_at=now))
            if _changed(done):
                result.resolved.append(known.id)
            else:
                result.raced += 1
    return result


def _changed(result: Any) -> int:
    return 1 if result.rowcount == 1 else 0


def record_scan(**values: Any) -> None:
    with session() as s:
        s.add(run := ScanRun(**values))
        upkeep.record_success(s, run)  # freshness per site and kind, in the same transaction


def get(finding_id: int) -> Finding | None:
    with session() as s:
        return s.get(Finding, finding_id)


def set_activity(finding_id: int, activity_id: int) -> None:
    with session() as s:
        s.execute(update(Finding).where(Finding.id == finding_id).values(odoo_activity_id=activity_id))


def acknowledge(finding_id: int, by: str) -> Finding | None:
    """Open -> acknowledged, guarded: a finding resolved or acknowledged meanwhile is left as it is."""
    with session() as s:
        s.execute(update(Finding).where(Finding.id == finding_id, Finding.status == FindingStatus.OPEN)
                  .values(status=FindingStatus.ACKNOWLEDGED, acknowledged_at=utcnow(), acknowledged_by=by))
        return s.get(Finding, finding_id)


def search(*, site: str | None = None, kind: str | None = None, status: str | None = None,
           limit: int = 1000) -> list[Finding]:
    with session() as s:
        query = select(Finding).order_by(Finding.id)
        if site:
            query = query.where(Finding.site == site)
        if kind:
            query = query.where(Finding.kind == kind)
        if status:
            query = query.where(Finding.status == status)
        return list(s.scalars(query.limit(limit)))


def open_counts() -> list[tuple[str, str, int]]:
    with session() as s:
        rows = s.execute(select(Finding.site, Finding.kind, func.count())
                         .where(Finding.status.in_(FindingStatus.ACTIVE)).group_by(Finding.site, Finding.kind))
        return [(r[0], r[1], int(r[2])) for r in rows]


def last_success() -> list[tuple[str, str, dt.datetime]]:
    with session() as s:
        rows = s.execute(select(ScanRun.site, ScanRun.kind, func.max(ScanRun.finished_at))
                         .where(ScanRun.status == "complete").group_by(ScanRun.site, ScanRun.kind))
        out = []
        for site, kind, when in rows:
            if isinstance(when, str):  # SQLite returns the aggregate as text
                when = dt.datetime.fromisoformat(when)
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
            out.append((site, kind, when))
        return out


def as_dict(f: Finding) -> dict[str, Any]:
    return {
        "id": f.id, "site": f.site, "kind": f.kind, "rule": f.rule, "model": f.model, "record_id": f.record_id,
        "record_name": f.record_name, "status": f.status, "severity": f.severity, "title": f.title,
        "first_seen": f.first_seen.isoformat(), "last_seen": f.last_seen.isoformat(),
        "escalated_at": f.escalated_at.isoformat() if f.escalated_at else None,
        "resolved_at": f.resolved_at.isoformat() if f.resolved_at else None,
        "acknowledged_by": f.acknowledged_by, "rule_version": f.rule_version, "params": f.params,
        "details": f.details, "odoo_activity_id": f.odoo_activity_id,
    }
