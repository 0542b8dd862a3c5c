"""Fault injection for the carrier simulator: what a real carrier API does on a bad day.

- `error_rate`: answer 5xx (one of `error_statuses`) without doing anything;
- `timeout_rate`: hold the request `timeout_seconds`, *then* do it and answer: a client
  that gave up does not know whether the label was bought (the worst case, on purpose);
- `unknown_rate`: on a buy, buy the label and answer 500 anyway (the unknown outcome);
- `rate_limit_per_second`: a token bucket per API key (capacity = the rate): above it,
  429 with `Retry-After`; `rate_limit_rate` adds random 429s;
- an outage window (`outage_seconds`, `outage_in`): every API request fails (503 or a
  dropped connection); `latency` slows every request.

`operations` limits the random faults to some operations (`shipment.create`,
`shipment.buy`, `shipment.retrieve`, `shipment.list`, `tracker.retrieve`, ...). Random
draws come from a seeded generator, so a run is reproducible.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from siteops.sim.common import FaultSwitch


@dataclass
class FaultConfig:
    latency: float = 0.0
    operations: list[str] = field(default_factory=list)
    error_rate: float = 0.0
    error_statuses: list[int] = field(default_factory=lambda: [500, 502, 503])
    timeout_rate: float = 0.0
    timeout_seconds: float = 5.0
    unknown_rate: float = 0.0
    rate_limit_per_second: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after: float = 1.0
    outage_start: float = 0.0
    outage_end: float = 0.0
    outage_mode: str = "503"  # "503" | "drop"
    seed: int = 0


@dataclass
class Decision:
    latency: float = 0.0
    status: int | None = None
    drop: bool = False
    retry_after: float | None = None
    hold: float = 0.0  # timeout: wait this long, then do the work
    fail_after: bool = False  # do the work, then answer 500
    name: str = ""


class Faults(FaultSwitch[FaultConfig]):
    def __init__(self) -> None:
        super().__init__(FaultConfig)
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)
        self.limited = 0  # 429s answered by the rate limit

    def _changed(self, changes: dict[str, Any]) -> None:
        if "rate_limit_per_second" in changes:
            self._buckets.clear()

    def _cleared(self) -> None:
        self._buckets.clear()
        self.limited = 0

    def _counters(self) -> dict[str, Any]:
        return {"limited": self.limited}

    def _take_token(self, key: str, now: float) -> float | None:
        """None when a token was available; otherwise seconds until the next one."""
        rate = self.config.rate_limit_per_second
        tokens, last = self._buckets.get(key, (rate, now))
        tokens = min(rate, tokens + (now - last) * rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return None
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / rate

    def decide(self, operation: str, key: str) -> Decision:
        with self._lock:
            c = self.config
            d = Decision(latency=c.latency)
            now = time.time()
            if outage := self.outage(now):
                d.name = "outage"
                if outage == "drop":
                    d.drop = True
                else:
                    d.status = 503
                return d
            if c.rate_limit_per_second > 0:
                wait = self._take_token(key, now)
                if wait is not None:
                    self.limited += 1
                    d.status, d.retry_after, d.name = 429, max(1.0, wait), "rate_limit"
                    return d
            if c.operations and operation not in c.operations:
                return d
            r = self._rng.random()
            if r < c.error_rate:
                d.status, d.name = self._rng.choice(c.error_statuses or [500]), "error"
            elif r < c.error_rate + c.timeout_rate:
                d.hold, d.name = c.timeout_seconds, "timeout"
            elif r < c.error_rate + c.timeout_rate + c.rate_limit_rate:
                d.status, d.retry_after, d.name = 429, c.retry_after, "rate_limit"
            elif operation == "shipment.buy" and r < c.error_rate + c.timeout_rate + c.rate_limit_rate \
                    + c.unknown_rate:
                d.fail_after, d.name = True, "unknown_outcome"
            return d
