"""The life of a finding: raised once, followed until gone, escalated once if it lingers.

`plan()` compares what a scan saw with what the store holds and says what to open, what
to touch, what to resolve and what to escalate. Rules of the game:

- a problem seen for the first time is opened (and alerted);
- a problem seen again is only touched (last seen, current severity): no new alert;
- an open problem not seen by a scan that *completed* is resolved; a scan that failed or
  read only part of the data resolves nothing;
- an open (not acknowledged) problem older than the policy's escalation time is
  escalated once: severity up and a second recipient (and alerted again).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = ("aging_transfers", "overdue_receipts", "stock_anomalies", "aging_backorders")
MAX_SEVERITY = 4
SEVERITY_NAMES = {1: "low", 2: "medium", 3: "high", 4: "critical"}


@dataclass(frozen=True)
class Observation:
    """One problem a rule saw in this scan, with what it was judged by."""

    site: str
    kind: str
    rule: str
    model: str
    record_id: int
    record_name: str
    severity: int
    title: str
    rule_version: str
    params: Mapping[str, Any]
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return f"{self.site}:{self.kind}:{self.rule}:{self.model}:{self.record_id}"


@dataclass(frozen=True)
class Known:
    """An active (open or acknowledged) finding from the store."""

    id: int
    fingerprint: str
    status: str
    severity: int
    first_seen: dt.datetime
    escalated_at: dt.datetime | None = None


@dataclass
class Plan:
    open: list[Observation] = field(default_factory=list)
    touch: list[tuple[Known, Observation]] = field(default_factory=list)
    resolve: list[Known] = field(default_factory=list)
    escalate: list[tuple[Known, Observation]] = field(default_factory=list)


def plan(known: Iterable[Known], seen: Iterable[Observation], *, complete: bool, now: dt.datetime,
         escalate_after: dt.timedelta) -> Plan:
    by_fp = {k.fingerprint: k for k in known}
    result = Plan()
    seen_fps: set[str] = set()
    for obs in seen:
        if obs.fingerprint in seen_fps:
            continue  # one record, one finding per rule, whatever the data repeats
        seen_fps.add(obs.fingerprint)
        existing = by_fp.get(obs.fingerprint)
        if existing is None:
            result.open.append(obs)
        elif (existing.status == "open" and existing.escalated_at is None
              and now - existing.first_seen >= escalate_after):
            result.escalate.append((existing, obs))
        else:
            result.touch.append((existing, obs))
    if complete:
        result.resolve = [k for fp, k in by_fp.items() if fp not in seen_fps]
    return result


def escalated_severity(severity: int) -> int:
    return min(MAX_SEVERITY, severity + 1)


def severity_by_multiple(value: float, threshold: float) -> int:
    """Severity grows with how many times over its threshold a value is: 1x, 2x, 4x, 8x."""
    if threshold <= 0:
        return MAX_SEVERITY
    ratio = value / threshold
    if ratio >= 8:
        return 4
    if ratio >= 4:
        return 3
    if ratio >= 2:
        return 2
    return 1
