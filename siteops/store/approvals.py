"""Approval requests, their tiers, delegations, and an audit row for every step.

The store remembers and never decides: who may decide is `siteops.rules.approvals`; this
module applies a decision with guarded updates (a tier moves from `pending` only once,
whoever races for it), and keeps what is owed (a pending tier's deadline, an approved
request not yet applied in Odoo) where a sweeper finds it.

A request's `open_key` is set until its outcome is in Odoo (one open request per product
and site, or per Odoo record), cleared when it is applied or cancelled: a unique index makes a replayed event or
two racing tasks find the existing request instead of making a second one.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import DateTime, Float, ForeignKey, Index, Integer, String, Text, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from siteops.rules.approvals import Refused, Routing
from siteops.store.db import get_engine
from siteops.store.models import Base, utcnow

OPEN = "pending"
CLOSED = ("approved", "rejected", "cancelled")


class ApprovalRequest(Base):
    __tablename__ = "approval_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))  # transfer | purchase | adjustment
    status: Mapped[str] = mapped_column(String(16), default=OPEN)  # pending approved rejected cancelled
    requested_by: Mapped[str] = mapped_column(String(64))  # an Odoo login (siteops's own, or a person)
    created_by: Mapped[str | None] = mapped_column(String(64))  # the Odoo record's creator login
    record_model: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[int | None] = mapped_column(Integer)
    product_id: Mapped[int | None] = mapped_column(Integer)
    amount: Mapped[float] = mapped_column(Float, default=0.0)
    rule: Mapped[str] = mapped_column(String(64))
    rule_why: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")  # JSON: the proposal / document
    open_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    applied_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    applied: Mapped[str | None] = mapped_column(Text)  # what was done in Odoo

    __table_args__ = (Index("ix_approval_requests_site_status", "site", "status"),
                      Index("ix_approval_requests_record", "record_model", "record_id"))


class ApprovalTier(Base):
    __tablename__ = "approval_tiers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("approval_requests.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    group: Mapped[str] = mapped_column(String(64))
    approvers: Mapped[str] = mapped_column(Text)  # JSON list of logins
    escalate_to: Mapped[str] = mapped_column(String(64))
    deadline_hours: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))  # waiting pending approved rejected
    deadline: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    activity_id: Mapped[int | None] = mapped_column(Integer)
    activity_round: Mapped[int] = mapped_column(Integer, default=0)  # activities opened before this one
    decided_by: Mapped[str | None] = mapped_column(String(64))
    as_delegate_of: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    escalated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_approval_tiers_status_deadline", "status", "deadline"),)


class ApprovalDelegation(Base):
    __tablename__ = "approval_delegations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    from_login: Mapped[str] = mapped_column(String(64), index=True)
    to_login: Mapped[str] = mapped_column(String(64))
    until: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ApprovalAudit(Base):
    __tablename__ = "approval_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int | None] = mapped_column(Integer, index=True)
    site: Mapped[str | None] = mapped_column(String(16))
    record_model: Mapped[str | None] = mapped_column(String(64))
    record_id: Mapped[int | None] = mapped_column(Integer)
    person: Mapped[str | None] = mapped_column(String(64), index=True)
    as_delegate_of: Mapped[str | None] = mapped_column(String(64))
    #: requested, tier_pending, approved, rejected, refused, escalated, delegated, applied, cancelled
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_approval_audit_record", "record_model", "record_id"),)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands back naive datetimes; everything stored here is UTC.
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


def _iso(value: dt.datetime | None) -> str | None:
    v = _aware(value)
    return v.isoformat() if v is not None else None


def _audit(s: Session, req: ApprovalRequest | None, action: str, person: str | None, detail: str = "",
           as_delegate_of: str | None = None, now: dt.datetime | None = None) -> None:
    s.add(ApprovalAudit(request_id=req.id if req else None, site=req.site if req else None,
                        record_model=req.record_model if req else None, record_id=req.record_id if req else None,
                        person=person, as_delegate_of=as_delegate_of, action=action, detail=detail[:2000],
                        at=now or utcnow()))


# --- requests --------------------------------------------------------------------------


def create_request(*, site: str, kind: str, requested_by: str, record_model: str, routing: Routing,
                   amount: float, open_key: str, record_id: int | None = None, created_by: str | None = None,
                   product_id: int | None = None, detail: Mapping[str, Any] | None = None,
                   now: dt.datetime | None = None) -> tuple[int, bool]:
    """A new pending request with its tiers (the first one pending), or the open request that
    already holds `open_key`: (id, created). A request routed to no tier is approved at once."""
    now = now or utcnow()
    with Session(get_engine()) as s:
        existing = s.scalar(select(ApprovalRequest.id).where(ApprovalRequest.open_key == open_key))
        if existing is not None:
            return int(existing), False
        approved = not routing.tiers
        req = ApprovalRequest(site=site, kind=kind, status="approved" if approved else OPEN,
                              requested_by=requested_by, created_by=created_by, record_model=record_model,
                              record_id=record_id, product_id=product_id, amount=amount, rule=routing.rule,
                              rule_why=routing.why, detail=json.dumps(dict(detail or {}), default=str),
                              open_key=open_key, created_at=now,
                              closed_at=now if approved else None)
        s.add(req)
        try:
            s.flush()
        except IntegrityError:
            s.rollback()  # a racing task made it first: theirs is the one
            found = s.scalar(select(ApprovalRequest.id).where(ApprovalRequest.open_key == open_key))
            if found is None:
                raise
            return int(found), False
        for i, plan in enumerate(routing.tiers):
            s.add(ApprovalTier(request_id=req.id, seq=i, group=plan.group, approvers=json.dumps(plan.approvers),
                               escalate_to=plan.escalate_to, deadline_hours=plan.deadline_hours,
                               status="pending" if i == 0 else "waiting",
                               deadline=now + dt.timedelta(hours=plan.deadline_hours) if i == 0 else None))
        _audit(s, req, "requested", requested_by, f"rule {routing.rule}: {routing.why}", now=now)
        if approved:
            _audit(s, req, "approved", None, "no approval needed", now=now)
        s.commit()
        return int(req.id), True


def set_record(request_id: int, record_model: str, record_id: int, created_by: str | None = None) -> None:
    with Session(get_engine()) as s, s.begin():
        req = s.get(ApprovalRequest, request_id)
        if req is None:
            raise KeyError(request_id)
        req.record_model, req.record_id = record_model, record_id
        if created_by and not req.created_by:
            req.created_by = created_by
        # The request's earlier steps become searchable by the record too.
        s.execute(update(ApprovalAudit).where(ApprovalAudit.request_id == request_id)
                  .values(record_model=record_model, record_id=record_id))


def set_activity(tier_id: int, activity_id: int) -> None:
    with Session(get_engine()) as s, s.begin():
        s.execute(update(ApprovalTier).where(ApprovalTier.id == tier_id).values(activity_id=activity_id))


def _chatter(req: ApprovalRequest) -> dict[str, Any]:
    """Where activities and notes go: the record, or (for a record without a chatter, such
    as stock.quant) the record the detail names."""
    chatter = json.loads(req.detail or "{}").get("chatter")
    if chatter:
        return {"model": chatter[0], "id": chatter[1]}
    return {"model": req.record_model, "id": req.record_id}


def _tier_dict(t: ApprovalTier) -> dict[str, Any]:
    return {"id": t.id, "seq": t.seq, "group": t.group, "status": t.status, "approvers": json.loads(t.approvers),
            "escalate_to": t.escalate_to, "deadline": _iso(t.deadline), "activity_id": t.activity_id,
            "activity_round": t.activity_round,
            "decided_by": t.decided_by, "as_delegate_of": t.as_delegate_of, "decided_at": _iso(t.decided_at),
            "escalated_at": _iso(t.escalated_at)}


def _as_dict(req: ApprovalRequest, tiers: Iterable[ApprovalTier]) -> dict[str, Any]:
    return {"id": req.id, "site": req.site, "kind": req.kind, "status": req.status,
            "requested_by": req.requested_by, "created_by": req.created_by,
            "record": {"model": req.record_model, "id": req.record_id}, "chatter": _chatter(req),
            "product_id": req.product_id,
            "amount": req.amount, "rule": req.rule, "rule_why": req.rule_why, "detail": json.loads(req.detail),
            "created_at": _iso(req.created_at), "closed_at": _iso(req.closed_at),
            "applied_at": _iso(req.applied_at), "applied": req.applied,
            "tiers": [_tier_dict(t) for t in sorted(tiers, key=lambda t: t.seq)]}


def get(request_id: int) -> dict[str, Any] | None:
    with Session(get_engine()) as s:
        req = s.get(ApprovalRequest, request_id)
        if req is None:
            return None
        tiers = s.scalars(select(ApprovalTier).where(ApprovalTier.request_id == request_id)).all()
        return _as_dict(req, tiers)


def search(*, site: str | None = None, status: str | None = None, record_model: str | None = None,
           record_id: int | None = None) -> list[dict[str, Any]]:
    with Session(get_engine()) as s:
        q = select(ApprovalRequest).order_by(ApprovalRequest.id)
        if site:
            q = q.where(ApprovalRequest.site == site)
        if status:
            q = q.where(ApprovalRequest.status == status)
        if record_model:
            q = q.where(ApprovalRequest.record_model == record_model)
        if record_id is not None:
            q = q.where(ApprovalRequest.record_id == record_id)
        reqs = s.scalars(q).all()
        ids = [r.id for r in reqs]
        tiers: dict[int, list[ApprovalTier]] = {i: [] for i in ids}
        if ids:
            for t in s.scalars(select(ApprovalTier).where(ApprovalTier.request_id.in_(ids))):
                tiers[t.request_id].append(t)
        return [_as_dict(r, tiers[r.id]) for r in reqs]


def open_keys(site: str, prefix: str) -> set[str]:
    with Session(get_engine()) as s:
        rows = s.scalars(select(ApprovalRequest.open_key).where(
            ApprovalRequest.site == site, ApprovalRequest.open_key.like(f"{prefix}%")))
        return {str(k) for k in rows if k}


# --- decisions -------------------------------------------------------------------------


Authorize = Callable[..., "str | None"]


def decide(request_id: int, person: str, approve: bool, *, delegations: Mapping[str, str],
           authorize: Authorize, via: str = "cli", comment: str = "",
           now: dt.datetime | None = None) -> dict[str, Any]:
    """Apply one decision on the request's pending tier. Raises `Refused` (audited) when
    `authorize` refuses it or the request is not pending. Returns the outcome:
    `tier_approved` (the next tier is pending), `approved` (the last tier), `rejected`."""
    now = now or utcnow()
    with Session(get_engine()) as s:
        req = s.get(ApprovalRequest, request_id)
        if req is None:
            raise Refused("unknown_request", f"no approval request {request_id}")
        tiers = sorted(s.scalars(select(ApprovalTier).where(ApprovalTier.request_id == request_id)).all(),
                       key=lambda t: t.seq)
        pending = next((t for t in tiers if t.status == "pending"), None)
        try:
            if req.status != OPEN or pending is None:
                raise Refused("not_pending", f"request {request_id} is {req.status}: nothing to decide")
            as_delegate_of = authorize(person, approvers=json.loads(pending.approvers), delegations=delegations,
                                       requested_by=req.requested_by, created_by=req.created_by,
                                       earlier_deciders=[t.decided_by for t in tiers if t.decided_by]
                                       + [t.as_delegate_of for t in tiers if t.as_delegate_of])
        except Refused as refused:
            _audit(s, req if req is not None else None, "refused", person, f"{refused.code}: {refused.reason} ({via})",
                   now=now)
            s.commit()
            raise
        status = "approved" if approve else "rejected"
        # Guarded: only the first of two racing decisions moves the tier.
        moved = s.execute(update(ApprovalTier).where(ApprovalTier.id == pending.id, ApprovalTier.status == "pending")
                          .values(status=status, decided_by=person, as_delegate_of=as_delegate_of, decided_at=now))
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            s.rollback()
            raise Refused("not_pending", f"tier {pending.group} of request {request_id} was decided meanwhile")
        _audit(s, req, status, person, f"tier {pending.seq + 1} {pending.group} ({via}) {comment}".strip(),
               as_delegate_of=as_delegate_of, now=now)
        later = [t for t in tiers if t.seq > pending.seq]
        if approve and later:
            nxt = later[0]
            nxt.status, nxt.deadline = "pending", now + dt.timedelta(hours=nxt.deadline_hours)
            _audit(s, req, "tier_pending", None, f"tier {nxt.seq + 1} {nxt.group}", now=now)
            outcome, next_tier = "tier_approved", nxt.id
        else:
            # The key stays until the outcome is in Odoo (mark_applied): until then the
            # shortage is still this request's, not a new one's.
            req.status, req.closed_at = status, now
            outcome, next_tier = status, None
        s.commit()
        return {"request_id": request_id, "outcome": outcome, "tier": pending.group, "decided_by": person,
                "as_delegate_of": as_delegate_of, "next_tier_id": next_tier}


def cancel(request_id: int, person: str | None, reason: str) -> bool:
    with Session(get_engine()) as s, s.begin():
        req = s.get(ApprovalRequest, request_id)
        if req is None or req.status != OPEN:
            return False
        req.status, req.closed_at, req.open_key = "cancelled", utcnow(), None
        _audit(s, req, "cancelled", person, reason)
        return True


def mark_applied(request_id: int, what: str) -> None:
    with Session(get_engine()) as s, s.begin():
        req = s.get(ApprovalRequest, request_id)
        if req is not None and req.applied_at is None:
            req.applied_at, req.applied, req.open_key = utcnow(), what, None
            _audit(s, req, "applied", None, what)


def rejected_replenishment(site: str, product_ids: Iterable[int], since: dt.datetime) -> dict[int, dict[str, Any]]:
    """product -> the latest replenishment request for it at `site` rejected at or after
    `since` (id, who rejected, when). Replenishment requests are the ones with a product
    (a person's own record has none): a rejection is held against the next proposals for
    the product, so an approver is not asked again at every sync."""
    wanted = sorted(set(product_ids))
    if not wanted:
        return {}
    with Session(get_engine()) as s:
        rows = s.execute(select(ApprovalRequest.product_id, ApprovalRequest.id, ApprovalRequest.closed_at,
                                ApprovalTier.decided_by).join(
            ApprovalTier, (ApprovalTier.request_id == ApprovalRequest.id) & (ApprovalTier.status == "rejected"))
            .where(ApprovalRequest.site == site, ApprovalRequest.status == "rejected",
                   ApprovalRequest.product_id.in_(wanted), ApprovalRequest.closed_at >= since)
            .order_by(ApprovalRequest.closed_at)).all()
    # SQLite hands timestamps back naive; they were written in UTC.
    return {int(pid): {"request_id": int(rid), "rejected_by": who,
                       "rejected_at": closed if closed.tzinfo else closed.replace(tzinfo=dt.UTC)}
            for pid, rid, closed, who in rows if pid is not None and closed is not None}


def unapplied(site: str) -> list[int]:
    """Closed requests whose outcome siteops still owes Odoo (confirm, or cancel with a note)."""
    with Session(get_engine()) as s:
        return [int(i) for i in s.scalars(select(ApprovalRequest.id).where(
            ApprovalRequest.site == site, ApprovalRequest.status.in_(("approved", "rejected")),
            ApprovalRequest.applied_at.is_(None), ApprovalRequest.record_id.is_not(None)))]


def pending_tiers(site: str) -> list[dict[str, Any]]:
    with Session(get_engine()) as s:
        rows = s.execute(select(ApprovalTier, ApprovalRequest).join(
            ApprovalRequest, ApprovalRequest.id == ApprovalTier.request_id).where(
            ApprovalRequest.site == site, ApprovalRequest.status == OPEN, ApprovalTier.status == "pending")).all()
        return [{**_tier_dict(t), "request_id": r.id, "record": {"model": r.record_model, "id": r.record_id},
                 "chatter": _chatter(r)} for t, r in rows]


# --- escalation ------------------------------------------------------------------------


def overdue(now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Pending tiers past their deadline and not escalated yet (what the sweeper owes)."""
    now = now or utcnow()
    with Session(get_engine()) as s:
        rows = s.execute(select(ApprovalTier.id, ApprovalRequest.site).join(
            ApprovalRequest, ApprovalRequest.id == ApprovalTier.request_id).where(
            ApprovalRequest.status == OPEN, ApprovalTier.status == "pending", ApprovalTier.escalated_at.is_(None),
            ApprovalTier.deadline < now)).all()
        return [{"tier_id": int(t), "site": site} for t, site in rows]


def tier(tier_id: int) -> dict[str, Any] | None:
    with Session(get_engine()) as s:
        t = s.get(ApprovalTier, tier_id)
        if t is None:
            return None
        req = s.get(ApprovalRequest, t.request_id)
        assert req is not None
        return {**_tier_dict(t), "request_id": req.id, "site": req.site,
                "record": {"model": req.record_model, "id": req.record_id}, "chatter": _chatter(req)}


def mark_escalated(tier_id: int, now: dt.datetime | None = None) -> bool:
    """Once per tier (guarded update): True for the one caller that marked it."""
    now = now or utcnow()
    with Session(get_engine()) as s:
        moved = s.execute(update(ApprovalTier).where(ApprovalTier.id == tier_id, ApprovalTier.escalated_at.is_(None))
                          .values(escalated_at=now))
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            s.rollback()
            return False
        t = s.get(ApprovalTier, tier_id)
        assert t is not None
        _audit(s, s.get(ApprovalRequest, t.request_id), "escalated", t.escalate_to,
               f"tier {t.seq + 1} {t.group} past its deadline {_iso(t.deadline)}", now=now)
        s.commit()
        return True


def reopen_tier(tier_id: int) -> None:
    """The tier's activity was marked done without an accepted decision: a new one is owed."""
    with Session(get_engine()) as s, s.begin():
        s.execute(update(ApprovalTier).where(ApprovalTier.id == tier_id).values(
            activity_id=None, activity_round=ApprovalTier.activity_round + 1))


# --- delegations -----------------------------------------------------------------------


def add_delegation(from_login: str, to_login: str, until: dt.datetime) -> int:
    with Session(get_engine()) as s, s.begin():
        row = ApprovalDelegation(from_login=from_login, to_login=to_login, until=until, created_at=utcnow())
        s.add(row)
        s.flush()
        _audit(s, None, "delegated", from_login, f"to {to_login} until {until.isoformat()}")
        return int(row.id)


def active_delegations(now: dt.datetime | None = None) -> dict[str, str]:
    """Approver -> substitute, for delegations still running (the newest wins)."""
    now = now or utcnow()
    with Session(get_engine()) as s:
        rows = s.scalars(select(ApprovalDelegation).where(ApprovalDelegation.until > now)
                         .order_by(ApprovalDelegation.id)).all()
        return {r.from_login: r.to_login for r in rows}


# --- audit and numbers -----------------------------------------------------------------


def audit(*, request_id: int | None = None, record_model: str | None = None, record_id: int | None = None,
          person: str | None = None) -> list[dict[str, Any]]:
    with Session(get_engine()) as s:
        q = select(ApprovalAudit).order_by(ApprovalAudit.id)
        if request_id is not None:
            q = q.where(ApprovalAudit.request_id == request_id)
        if record_model:
            q = q.where(ApprovalAudit.record_model == record_model)
        if record_id is not None:
            q = q.where(ApprovalAudit.record_id == record_id)
        if person:
            q = q.where((ApprovalAudit.person == person) | (ApprovalAudit.as_delegate_of == person))
        return [{"id": a.id, "request_id": a.request_id, "site": a.site,
                 "record": {"model": a.record_model, "id": a.record_id}, "person": a.person,
                 "as_delegate_of": a.as_delegate_of, "action": a.action, "detail": a.detail, "at": _iso(a.at)}
                for a in s.scalars(q)]


def stats(now: dt.datetime | None = None) -> dict[str, Any]:
    """Pending tiers by site and group, the oldest pending request's age, escalations and
    SoD refusals by site, and the mean cycle time (created -> closed) per site."""
    now = now or utcnow()
    with Session(get_engine()) as s:
        pending = s.execute(select(ApprovalRequest.site, ApprovalTier.group, func.count()).join(
            ApprovalTier, ApprovalTier.request_id == ApprovalRequest.id).where(
            ApprovalRequest.status == OPEN, ApprovalTier.status == "pending").group_by(
            ApprovalRequest.site, ApprovalTier.group)).all()
        oldest = s.execute(select(ApprovalRequest.site, func.min(ApprovalRequest.created_at)).where(
            ApprovalRequest.status == OPEN).group_by(ApprovalRequest.site)).all()
        actions = s.execute(select(ApprovalAudit.site, ApprovalAudit.action, func.count()).where(
            ApprovalAudit.action.in_(("escalated", "refused"))).group_by(ApprovalAudit.site,
                                                                        ApprovalAudit.action)).all()
        closed = s.execute(select(ApprovalRequest.site, ApprovalRequest.created_at, ApprovalRequest.closed_at).where(
            ApprovalRequest.closed_at.is_not(None))).all()
    cycle: dict[str, list[float]] = {}
    for site, created, closed_at in closed:
        c, e = _aware(created), _aware(closed_at)
        if c is not None and e is not None:
            cycle.setdefault(site, []).append((e - c).total_seconds())
    return {
        "pending": [{"site": site, "group": group, "count": int(n)} for site, group, n in pending],
        "oldest_pending_seconds": {site: max(0.0, (now - (_aware(t) or now)).total_seconds()) for site, t in oldest},
        "escalations": {site or "": int(n) for site, action, n in actions if action == "escalated"},
        "sod_refusals": {site or "": int(n) for site, action, n in actions if action == "refused"},
        "cycle_seconds": {site: sum(v) / len(v) for site, v in cycle.items()},
    }
