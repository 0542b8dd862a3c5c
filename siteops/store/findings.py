"""Findings and scan runs in the store: applying a scan's plan in one transaction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update

from siteops.rules.findings import Known, Observation, Plan, escalated_severity
from siteops.store import upkeep
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


def _new(obs: Observation, now: dt.datetime) -> Finding:
    return Finding(fingerprint=obs.fingerprint, site=obs.site, kind=obs.kind, rule=obs.rule, model=obs.model,
                   record_id=obs.record_id, record_name=obs.record_name[:200], status=FindingStatus.OPEN,
                   severity=obs.severity, title=obs.title[:300], details=dict(obs.details),
                   rule_version=obs.rule_version, params=dict(obs.params), first_seen=now, last_seen=now)


def apply(plan: Plan, *, now: dt.datetime | None = None) -> Applied:
    now = now or utcnow()
    result = Applied()
    with session() as s:
        new_rows = [_new(obs, now) for obs in plan.open]
        s.add_all(new_rows)
        for known, obs in plan.touch:
            s.execute(update(Finding).where(Finding.id == known.id).values(
                last_seen=now, severity=max(known.severity, obs.severity), details=dict(obs.details)))
        for known, obs in plan.escalate:
            s.execute(update(Finding).where(Finding.id == known.id).values(
                last_seen=now, escalated_at=now, details=dict(obs.details),
                severity=escalated_severity(max(known.severity, obs.severity))))
            result.escalated.append(known.id)
        for known in plan.resolve:
            s.execute(update(Finding).where(Finding.id == known.id).values(
                status=FindingStatus.RESOLVED, resolved_at=now))
            result.resolved.append(known.id)
        s.flush()
        result.opened = [row.id for row in new_rows]
        result.touched = len(plan.touch)
    return result


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
    with session() as s:
        finding = s.get(Finding, finding_id)
        if finding is None:
            return None
        if finding.status == FindingStatus.OPEN:
            finding.status = FindingStatus.ACKNOWLEDGED
            finding.acknowledged_at = utcnow()
            finding.acknowledged_by = by
        return finding


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
