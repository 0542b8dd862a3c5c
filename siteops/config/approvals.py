"""`[policy.approvals]` of sites.toml -> a validated approval matrix (import-light, no I/O).

    [policy.approvals.groups.finance]
    members = ["finance.controller", "finance.analyst"]   # Odoo logins
    escalate_to = "cfo"                                    # one Odoo login
    deadline_hours = 48

    [[policy.approvals.rules]]                             # first match wins
    name = "purchase-above-limit"
    kind = "purchase"                                      # transfer | purchase | adjustment
    min_amount = "approval_limit"                          # a number, or a [policy.defaults] name
    categories = ["Strategic"]                             # optional filters
    vendor_classes = ["new"]
    sites = ["NORTH"]
    tiers = ["category_management", "finance"]             # in order

A threshold given as a parameter name is read from the site's parameters, so it is
site-tunable exactly when `policy.site_tunable` lists that parameter: the matrix stays
the enterprise's, the numbers may be local. The member `site:responsible` stands for the
request's site's `responsible` users (the receiving site's manager).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KINDS = ("transfer", "purchase", "adjustment")
SITE_RESPONSIBLE = "site:responsible"
GROUP_KEYS = frozenset({"members", "escalate_to", "deadline_hours"})
RULE_KEYS = frozenset({"name", "kind", "min_amount", "min_quantity", "categories", "vendor_classes", "sites",
                       "tiers"})


@dataclass(frozen=True)
class Group:
    name: str
    members: tuple[str, ...]
    escalate_to: str
    deadline_hours: float


@dataclass(frozen=True)
class Threshold:
    """A number, or the name of a site parameter holding it."""

    value: float | None = None
    param: str | None = None

    def resolve(self, params: Mapping[str, Any]) -> float:
        return float(params[self.param]) if self.param else float(self.value or 0.0)

    def describe(self) -> str:
        return self.param or f"{self.value:g}"


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    tiers: tuple[str, ...]
    min_amount: Threshold | None = None
    min_quantity: Threshold | None = None
    categories: tuple[str, ...] = ()
    vendor_classes: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApprovalPolicy:
    groups: Mapping[str, Group]
    rules: tuple[Rule, ...]


EMPTY = ApprovalPolicy(groups={}, rules=())


def _strings(where: str, value: Any, *, allow_empty: bool = True) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _error(f"{where}: expected a list of non-empty strings, got {value!r}")
    if not value and not allow_empty:
        raise _error(f"{where}: must not be empty")
    return tuple(value)


def _error(message: str) -> Exception:
    from siteops.config.sites import PolicyError

    return PolicyError(message)


def _threshold(where: str, value: Any, defaults: Mapping[str, Any]) -> Threshold:
    if isinstance(value, str):
        default = defaults.get(value)
        if isinstance(default, bool) or not isinstance(default, int | float):
            raise _error(f"{where}: {value!r} is not a number in [policy.defaults] "
                         "(give a number, or the name of a numeric parameter)")
        return Threshold(param=value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _error(f"{where}: expected a non-negative number or a parameter name, got {value!r}")
    return Threshold(value=float(value))


def parse_approvals(f: str, raw: Any, defaults: Mapping[str, Any], site_codes: tuple[str, ...]) -> ApprovalPolicy:
    """Validate `[policy.approvals]` of file `f`; every error names the file, table and key."""
    where = f"{f}: [policy.approvals]"
    if raw is None:
        return EMPTY
    if not isinstance(raw, Mapping):
        raise _error(f"{where}: expected a table")
    for key in set(raw) - {"groups", "rules"}:
        raise _error(f"{where} {key}: unknown key (known: groups, rules)")
    groups: dict[str, Group] = {}
    groups_raw = raw.get("groups", {})
    if not isinstance(groups_raw, Mapping):
        raise _error(f"{where}.groups: expected a table of groups")
    for name, body in groups_raw.items():
        gw = f"{where}.groups.{name}"
        if not isinstance(body, Mapping):
            raise _error(f"{gw}: expected a table")
        for key in set(body) - GROUP_KEYS:
            raise _error(f"{gw} {key}: unknown key (known: {', '.join(sorted(GROUP_KEYS))})")
        members = _strings(f"{gw} members", body.get("members", []), allow_empty=False)
        escalate = body.get("escalate_to")
        if not isinstance(escalate, str) or not escalate:
            raise _error(f"{gw} escalate_to: expected the Odoo login to escalate to, got {escalate!r}")
        hours = body.get("deadline_hours", 24)
        if isinstance(hours, bool) or not isinstance(hours, int | float) or hours <= 0:
            raise _error(f"{gw} deadline_hours: expected a positive number of hours, got {hours!r}")
        groups[name] = Group(name, members, escalate, float(hours))
    rules_raw = raw.get("rules", [])
    if not isinstance(rules_raw, list):
        raise _error(f"{where}.rules: expected an array of tables ([[policy.approvals.rules]])")
    rules: list[Rule] = []
    names: set[str] = set()
    for i, body in enumerate(rules_raw):
        rw = f"{where}.rules[{i}]"
        if not isinstance(body, Mapping):
            raise _error(f"{rw}: expected a table")
        for key in set(body) - RULE_KEYS:
            raise _error(f"{rw} {key}: unknown key (known: {', '.join(sorted(RULE_KEYS))})")
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise _error(f"{rw} name: expected a non-empty string")
        if name in names:
            raise _error(f"{rw} name: {name!r} is used by an earlier rule")
        names.add(name)
        rw = f"{where}.rules[{i}] ({name})"
        kind = body.get("kind")
        if kind not in KINDS:
            raise _error(f"{rw} kind: expected one of {', '.join(KINDS)}, got {kind!r}")
        tiers = _strings(f"{rw} tiers", body.get("tiers", []))
        for tier in tiers:
            if tier not in groups:
                raise _error(f"{rw} tiers: unknown group {tier!r} (groups: {', '.join(groups) or 'none'})")
        if len(set(tiers)) != len(tiers):
            raise _error(f"{rw} tiers: a group appears twice")
        sites = _strings(f"{rw} sites", body.get("sites", []))
        for code in sites:
            if code not in site_codes:
                raise _error(f"{rw} sites: unknown site {code!r} (sites: {', '.join(site_codes)})")
        rules.append(Rule(
            name=name, kind=kind, tiers=tiers,
            min_amount=_threshold(f"{rw} min_amount", body["min_amount"], defaults) if "min_amount" in body
            else None,
            min_quantity=_threshold(f"{rw} min_quantity", body["min_quantity"], defaults)
            if "min_quantity" in body else None,
            categories=_strings(f"{rw} categories", body.get("categories", [])),
            vendor_classes=_strings(f"{rw} vendor_classes", body.get("vendor_classes", [])),
            sites=sites,
        ))
    return ApprovalPolicy(groups=groups, rules=tuple(rules))
