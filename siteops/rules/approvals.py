"""Approval routing and segregation of duties: pure rules, no I/O.

`route` reads the approval matrix (`siteops.config.approvals`) for one document and says
which rule routed it and which tiers it needs, in order. `authorize` says whether a person
may decide a tier, and as whom: siteops enforces segregation of duties itself, because
neither Odoo (a Purchase Manager confirms their own order) nor OCA's tier validation
(it stores `requested_by` but lets the requester approve) does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from siteops.config.approvals import SITE_RESPONSIBLE, ApprovalPolicy, Rule

NO_RULE = "no-rule-matched"


@dataclass(frozen=True)
class Document:
    """What routing looks at: the request's kind, site, amount and what it is about."""

    kind: str  # transfer | purchase | adjustment
    site: str
    amount: float
    quantity: float = 0.0
    category: str = ""  # product category (complete name or name)
    vendor_class: str = ""


@dataclass(frozen=True)
class TierPlan:
    group: str
    approvers: tuple[str, ...]  # Odoo logins
    escalate_to: str
    deadline_hours: float


@dataclass(frozen=True)
class Routing:
    rule: str
    why: str
    tiers: tuple[TierPlan, ...]


def _category_matches(wanted: Sequence[str], category: str) -> bool:
    if not wanted:
        return True
    last = category.rsplit("/", 1)[-1].strip()
    return any(w in (category, last) for w in wanted)


def matches(rule: Rule, doc: Document, params: Mapping[str, Any]) -> bool:
    if rule.kind != doc.kind or (rule.sites and doc.site not in rule.sites):
        return False
    if rule.min_amount is not None and not abs(doc.amount) > rule.min_amount.resolve(params):
        return False
    if rule.min_quantity is not None and not abs(doc.quantity) > rule.min_quantity.resolve(params):
        return False
    if rule.vendor_classes and doc.vendor_class not in rule.vendor_classes:
        return False
    return _category_matches(rule.categories, doc.category)


def _describe(rule: Rule, params: Mapping[str, Any]) -> str:
    parts = [f"kind={rule.kind}"]
    if rule.min_amount is not None:
        parts.append(f"amount > {rule.min_amount.describe()} ({rule.min_amount.resolve(params):g})")
    if rule.min_quantity is not None:
        parts.append(f"quantity > {rule.min_quantity.describe()} ({rule.min_quantity.resolve(params):g})")
    for name, values in (("category", rule.categories), ("vendor class", rule.vendor_classes),
                         ("site", rule.sites)):
        if values:
            parts.append(f"{name} in {', '.join(values)}")
    return "; ".join(parts)


def route(policy: ApprovalPolicy, doc: Document, *, params: Mapping[str, Any],
          responsible: Iterable[str]) -> Routing:
    """The first rule of the matrix matching `doc` (rules are ordered most specific first).

    `params` are the site's parameters (thresholds named by parameter are site-tunable);
    `responsible` the site's responsible logins (the `site:responsible` member). A document
    no rule matches needs no approval, and says so (rule `no-rule-matched`).
    """
    site_people = tuple(responsible)
    for rule in policy.rules:
        if not matches(rule, doc, params):
            continue
        tiers = []
        for name in rule.tiers:
            group = policy.groups[name]
            approvers: list[str] = []
            for member in group.members:
                for login in (site_people if member == SITE_RESPONSIBLE else (member,)):
                    if login not in approvers:
                        approvers.append(login)
            tiers.append(TierPlan(name, tuple(approvers), group.escalate_to, group.deadline_hours))
        return Routing(rule.name, _describe(rule, params), tuple(tiers))
    return Routing(NO_RULE, "no rule of [policy.approvals] matches: no approval needed", ())


# --- segregation of duties -------------------------------------------------------------


class Refused(Exception):
    """A decision siteops will not accept; `code` is the metric label, `reason` for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def authorize(person: str, *, approvers: Iterable[str], delegations: Mapping[str, str],
              requested_by: str | None, created_by: str | None, earlier_deciders: Iterable[str]) -> str | None:
    """May `person` decide this tier? Returns whose authority they use (None: their own;
    a login: they decide as that approver's delegate). Raises `Refused`.

    `delegations` maps an approver to the substitute whose delegation is active now. The
    person and the approver they stand for are both checked: a requester cannot approve
    their own request through a substitute either.
    """
    members = list(approvers)
    earlier = set(earlier_deciders)

    def check(who: str) -> None:
        if who == requested_by:
            raise Refused("requester", f"{who} requested this approval and cannot decide it")
        if who == created_by:
            raise Refused("record_creator", f"{who} created the Odoo record and cannot decide its approval")
        if who in earlier:
            raise Refused("earlier_tier", f"{who} already decided an earlier tier of this request")

    check(person)
    if person in members:
        return None
    principals = [m for m in members if delegations.get(m) == person]
    if not principals:
        raise Refused("not_an_approver", f"{person} is not an approver of this tier "
                                         f"(approvers: {', '.join(members) or 'none'}) and holds no "
                                         "active delegation from one")
    as_delegate_of = principals[0]
    check(as_delegate_of)
    return as_delegate_of


def parse_feedback(feedback: str) -> str | None:
    """An activity marked done in Odoo: "approve"/"approved" or "reject"/"rejected" as its
    first word (Odoo wraps feedback in HTML; tags are stripped by the caller)."""
    words = feedback.strip().lower().split()
    first = words[0].strip(".,:;!") if words else ""
    if first in ("approve", "approved", "ok"):
        return "approve"
    if first in ("reject", "rejected", "refuse", "refused"):
        return "reject"
    return None
