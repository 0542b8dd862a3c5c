"""Fault injection, for tests that assert what a client suffered (the request log, of what it
did, is siteops.sim.common.RequestLog).

Faults are set in-process (`server.faults.set(...)`) or over HTTP on `/__sim__/faults`,
a path real Odoo doesn't have, so a test driving a subprocess can use it too.
Random faults draw from a seeded generator, so a run is reproducible.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from siteops.sim.common import FaultSwitch


@dataclass
class FaultConfig:
    latency: float = 0.0  # seconds added to every matching request
    methods: list[str] = field(default_factory=list)  # limit latency/errors to these methods ("" = all)
    error_rate: float = 0.0  # fraction of requests answered with `error_status`
    error_status: int = 503
    # With `error_name` the error is Odoo's own (an envelope naming that exception: JSON-RPC
    # `error.data.name`, JSON-2 a JSON body), sent with `error_status` (200 = as Odoo does
    # over JSON-RPC). Without it, an HTML page as a reverse proxy sends.
    error_name: str = ""
    error_message: str = "Simulated failure"
    error_retry_after: float | None = None  # a Retry-After header on those errors (e.g. a 503)
    drop_rate: float = 0.0  # fraction of requests whose connection is closed without a response
    rate_limit_rate: float = 0.0  # fraction answered 429 with Retry-After
    retry_after: float = 1.0
    outage_start: float = 0.0  # time.time() window during which every request fails
    outage_end: float = 0.0
    outage_mode: str = "503"  # "503" | "drop"
    slow_page_min: int = 0  # a search_read/read returning at least this many records...
    slow_page_seconds: float = 0.0  # ...waits this long first
    auth_revoked: bool = False  # every credential check fails (AccessDenied / 401)
    # Seconds a successful answer is held AFTER the call took effect (limited by `methods`):
    # the client times out although Odoo did the work, the case a `check` exists for.
    reply_latency: float = 0.0
    seed: int = 0


@dataclass
class Decision:
    latency: float = 0.0
    status: int | None = None  # answer with this HTTP status (an HTML page unless error_name)
    error_name: str = ""  # ...or with Odoo's error envelope naming this exception
    error_message: str = ""
    drop: bool = False
    retry_after: float | None = None


class Faults(FaultSwitch[FaultConfig]):
    def __init__(self) -> None:
        super().__init__(FaultConfig)

    def decide(self, method: str) -> Decision:
        """What happens to one request for `method` (e.g. "search_read", "login")."""
        with self._lock:
            c = self.config
            d = Decision()
            now = time.time()
            if outage := self.outage(now):
                if outage == "drop":
                    d.drop = True
                else:
                    d.status = 503
                return d
            if c.methods and method not in c.methods:
                return d
            d.latency = c.latency
            if c.drop_rate and self._rng.random() < c.drop_rate:
                d.drop = True
            elif c.rate_limit_rate and self._rng.random() < c.rate_limit_rate:
                d.status = 429
                d.retry_after = c.retry_after
            elif c.error_rate and self._rng.random() < c.error_rate:
                d.status = c.error_status
                d.error_name, d.error_message = c.error_name, c.error_message
                d.retry_after = c.error_retry_after
            return d

    def reply_delay(self, method: str) -> float:
        c = self.config
        if not c.reply_latency or (c.methods and method not in c.methods):
            return 0.0
        return c.reply_latency

    def slow_page(self, records: int) -> float:
        c = self.config
        return c.slow_page_seconds if c.slow_page_min and records >= c.slow_page_min else 0.0

    @property
    def auth_revoked(self) -> bool:
        return self.config.auth_revoked
