"""Priority: one score for a triaged message or an open finding, so people look first at the
highest customer or financial impact. Pure (no I/O): the callers read Odoo and the store.

A score is a sum of named parts (returned with it, so `siteops triage show` says why):

    base by class       urgent_replenishment 40, shortage 30, delivery_issue 25, return 15, other 5
    urgency cues        +15 when the text says urgent/asap/emergency/today/... (once)
    customer tier       gold +20, silver +10, standard 0 (res.partner `x_tier` in Odoo)
    order value         +log10(value) * 5, capped at +20 (an order of 10 000 adds 20)
    promised date       +15 past due, +10 within a day, +5 within three days
    low confidence      no change: a message waiting for review keeps its score, so the review
                        queue itself is ordered by impact

For findings: severity (1-3) * 20, + 2 per day open (capped at 20), + the same value part.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

CLASS_BASE = {"urgent_replenishment": 40.0, "shortage": 30.0, "delivery_issue": 25.0, "return": 15.0, "other": 5.0}
TIER_BONUS = {"gold": 20.0, "silver": 10.0}
URGENCY = re.compile(r"\b(urgent\w*|asap|emergenc\w*|immediate\w*|critical|rush|today|tonight|dringend|"
                     r"stopp?ed|line down|stand idle|right away)\b|!!", re.IGNORECASE)


@dataclass(frozen=True)
class Score:
    value: float
    reasons: tuple[str, ...]


def urgency_cues(text: str) -> list[str]:
    return sorted({m.group(0).lower() for m in URGENCY.finditer(text)})


def _value_part(value: float | None) -> float:
    if not value or value <= 1:
        return 0.0
    return min(20.0, round(math.log10(value) * 5, 1))


def _date_part(promised: dt.datetime | None, now: dt.datetime) -> tuple[float, str]:
    if promised is None:
        return 0.0, ""
    left = (promised - now).total_seconds() / 86400
    if left < 0:
        return 15.0, "promised date passed"
    if left <= 1:
        return 10.0, "promised within a day"
    if left <= 3:
        return 5.0, "promised within three days"
    return 0.0, ""


def message_priority(label: str, text: str, *, tier: str | None = None, order_value: float | None = None,
                     promised: dt.datetime | None = None, now: dt.datetime) -> Score:
    parts: list[tuple[float, str]] = [(CLASS_BASE.get(label, 5.0), f"class {label}")]
    cues = urgency_cues(text)
    if cues:
        parts.append((15.0, f"urgency cues: {', '.join(cues[:4])}"))
    if tier and tier.lower() in TIER_BONUS:
        parts.append((TIER_BONUS[tier.lower()], f"{tier.lower()} customer"))
    v = _value_part(order_value)
    if v:
        parts.append((v, f"order value {order_value:.0f}"))
    d, why = _date_part(promised, now)
    if d:
        parts.append((d, why))
    return _score(parts)


def finding_priority(severity: int, opened_at: dt.datetime, *, value: float | None = None,
                     now: dt.datetime) -> Score:
    if opened_at.tzinfo is None:  # SQLite hands back naive UTC
        opened_at = opened_at.replace(tzinfo=dt.UTC)
    days = max(0.0, (now - opened_at).total_seconds() / 86400)
    parts: list[tuple[float, str]] = [(severity * 20.0, f"severity {severity}")]
    age = min(20.0, round(days * 2, 1))
    if age:
        parts.append((age, f"open {days:.1f} days"))
    v = _value_part(value)
    if v:
        parts.append((v, f"value {value:.0f}"))
    return _score(parts)


def finding_value(details: dict[str, object] | None) -> float | None:
    """The money a finding is about, where its scan recorded one."""
    for key in ("value", "amount_total", "variance_value", "amount"):
        v = (details or {}).get(key)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return abs(float(v))
    return None


def _score(parts: Sequence[tuple[float, str]]) -> Score:
    return Score(round(sum(p for p, _ in parts), 1), tuple(f"+{p:g} {why}" for p, why in parts))
