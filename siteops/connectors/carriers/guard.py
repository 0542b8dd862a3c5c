"""A rate limit and a circuit breaker per carrier account, shared by every worker (state in Redis).

Rate limit: GCRA with reservations (one Lua script, Redis's own clock, so hosts with
skewed clocks still share one schedule). A caller reserves the next free slot; when it
is at most `max_wait` away the caller sleeps until it and goes, so four workers at a
10 req/s account send one request every 100 ms between them instead of bursting into
429s; further away, nothing is reserved and the call raises `RateLimited` (retry later).

Circuit: counted per fixed window; it opens when at least `min_calls` calls in the
window were made and `failure_ratio` of them failed transiently (5xx, timeouts,
connection errors; not 4xx, not 429). While open, calls are refused without reaching
the carrier (`CircuitOpen`, a `RateLimited` with the time left). After the cool-down
one caller at a time probes (half-open): success closes it, failure reopens it.

Where parked waits land in the base class (issue 8), `CircuitOpen.retry_after` is the
wait to park; until then it is a retry with that countdown.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis

from siteops.connectors.carriers.config import CarrierAccount
from siteops.connectors.carriers.metrics import (
    CARRIER_CALLS,
    CARRIER_LATENCY,
    CIRCUIT_STATE,
    RATE_LIMIT_WAIT_SECONDS,
    RATE_LIMIT_WAITS,
)
from siteops.connectors.errors import (
    AuthError,
    ConnectorError,
    PermanentError,
    RateLimited,
    RetryableError,
)

T = TypeVar("T")
log = logging.getLogger(__name__)
PREFIX = "siteops:carrier:"
STATE_VALUE = {"closed": 0, "half_open": 1, "open": 2}

# KEYS[1] = theoretical arrival time; ARGV: emission interval T, burst tolerance, max wait (s).
# Returns the wait as a string: >= 0 reserved (sleep that long, then go), < 0 refused.
GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - tau - now
if wait < 0 then wait = 0 end
if wait > max_wait then return tostring(-wait) end
local new = tat + interval
redis.call('SET', KEYS[1], string.format('%.6f', new), 'PX', math.ceil((new - now) * 1000) + 1000)
return tostring(wait)
"""

# KEYS[1] = breaker hash; ARGV: probe timeout (s). Returns {decision, seconds}:
# closed (go), probe (go: you are the probe), open / half_open (refused; retry in seconds).
ALLOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'open' then
  local till = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
  if now < till then return {'open', tostring(till - now)} end
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_until', tostring(now + tonumber(ARGV[1])))
  return {'probe', '0'}
end
if state == 'half_open' then
  local pu = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
  if now < pu then return {'half_open', tostring(pu - now)} end
  redis.call('HSET', KEYS[1], 'probe_until', tostring(now + tonumber(ARGV[1])))
  return {'probe', '0'}
end
return {'closed', '0'}
"""

# KEYS[1] = breaker hash; ARGV: ok (1/0), window, min_calls, failure_ratio, cooldown. Returns the new state.
RECORD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ok = ARGV[1] == '1'
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local function open()
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', tostring(now + tonumber(ARGV[5])),
             'opened_at', tostring(now), 'calls', 0, 'fails', 0, 'win_start', tostring(now))
  redis.call('HINCRBY', KEYS[1], 'opened_total', 1)
  return 'open'
end
if state == 'half_open' then
  if ok then
    redis.call('HSET', KEYS[1], 'state', 'closed', 'calls', 0, 'fails', 0, 'win_start', tostring(now))
    return 'closed'
  end
  return open()
end
if state == 'open' then return 'open' end
local ws = tonumber(redis.call('HGET', KEYS[1], 'win_start') or '0')
if now - ws > tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'win_start', tostring(now), 'calls', 0, 'fails', 0)
end
local calls = redis.call('HINCRBY', KEYS[1], 'calls', 1)
local fails = tonumber(redis.call('HGET', KEYS[1], 'fails') or '0')
if not ok then fails = redis.call('HINCRBY', KEYS[1], 'fails', 1) end
if calls >= tonumber(ARGV[3]) and fails / calls >= tonumber(ARGV[4]) then return open() end
return 'closed'
"""


class CircuitOpen(RateLimited):
    """The account's circuit is open: the carrier is not called; retry after `retry_after`."""


_lock = threading.Lock()
_clients: dict[int, redis.Redis] = {}


def shared_redis() -> redis.Redis:
    """This process's connection to the broker's Redis, with socket timeouts (never hang a task)."""
    pid = os.getpid()
    with _lock:
        client = _clients.get(pid)
        if client is None:
            from siteops.config.settings import get_settings

            _clients.clear()
            client = _clients[pid] = redis.Redis.from_url(
                get_settings().broker_url, socket_timeout=2.0, socket_connect_timeout=2.0)
        return client


def _redis_call(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except redis.RedisError as exc:
        raise RetryableError(f"shared carrier state unavailable ({what}): {type(exc).__name__}: {exc}",
                             system="carrier", operation=what) from None


def _is_failure(exc: BaseException) -> bool:
    """Does this error say the carrier is unhealthy? 5xx, timeouts, connection errors do; 4xx and 429 don't."""
    return isinstance(exc, RetryableError) and not isinstance(exc, RateLimited)


def _outcome(exc: BaseException) -> str:
    if isinstance(exc, CircuitOpen):
        return "circuit_open"
    if isinstance(exc, AuthError):
        return "auth"
    if isinstance(exc, RateLimited):
        return "rate_limited"
    if isinstance(exc, RetryableError):
        return "retryable"
    if getattr(exc, "not_found", False):
        return "not_found"
    if isinstance(exc, PermanentError):
        return "permanent"
    return "error"


class Guard:
    """The shared limiter and circuit of one carrier account."""

    def __init__(self, account: CarrierAccount, client: redis.Redis | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.account = account
        self.redis = client or shared_redis()
        self.sleep = sleep
        self._gcra = self.redis.register_script(GCRA)
        self._allow = self.redis.register_script(ALLOW)
        self._record = self.redis.register_script(RECORD)
        self.rate_key = f"{PREFIX}{account.name}:gcra"
        self.breaker_key = f"{PREFIX}{account.name}:breaker"

    # -- rate limit -------------------------------------------------------------------------

    def acquire(self, site: str) -> float:
        """Wait for a slot of the account's rate; returns the seconds slept. Raises RateLimited."""
        rate = self.account.rate_per_second
        if rate <= 0:
            return 0.0
        interval = 1.0 / rate
        wait = float(_redis_call("rate_limit", lambda: self._gcra(
            keys=[self.rate_key], args=[f"{interval:.6f}", "0", f"{self.account.max_wait:.3f}"])))
        if wait < 0:
            RATE_LIMIT_WAITS.labels(self.account.name, site, "deferred").inc()
            raise RateLimited(f"carrier account {self.account.name} is at its rate limit "
                              f"({rate:g}/s); next slot in {-wait:.1f}s", retry_after=-wait,
                              system="carrier", operation="rate_limit")
        if wait > 0:
            RATE_LIMIT_WAITS.labels(self.account.name, site, "waited").inc()
            RATE_LIMIT_WAIT_SECONDS.labels(self.account.name, site).inc(wait)
            self.sleep(wait)
        return wait

    # -- circuit ----------------------------------------------------------------------------

    def state(self) -> dict[str, str]:
        raw = _redis_call("circuit", lambda: self.redis.hgetall(self.breaker_key))
        return {k.decode(): v.decode() for k, v in raw.items()}

    def _admit(self) -> None:
        probe_timeout = max(5.0, self.account.timeout * 2)
        decision, seconds = _redis_call("circuit", lambda: self._allow(
            keys=[self.breaker_key], args=[f"{probe_timeout:.3f}"]))
        decision = decision.decode() if isinstance(decision, bytes) else str(decision)
        if decision in ("open", "half_open"):
            CIRCUIT_STATE.labels(self.account.name).set(STATE_VALUE[decision])
            raise CircuitOpen(f"circuit of carrier account {self.account.name} is {decision.replace('_', '-')}; "
                              f"not calling the carrier", retry_after=max(1.0, float(seconds)),
                              system="carrier", operation="circuit")
        if decision == "probe":
            CIRCUIT_STATE.labels(self.account.name).set(STATE_VALUE["half_open"])

    def _result(self, ok: bool) -> None:
        b = self.account.breaker
        try:
            state = _redis_call("circuit", lambda: self._record(
                keys=[self.breaker_key],
                args=["1" if ok else "0", f"{b.window_seconds}", str(b.min_calls), f"{b.failure_ratio}",
                      f"{b.cooldown_seconds}"]))
        except RetryableError as exc:
            # The call itself is done (a label may have been bought): its outcome, not the
            # bookkeeping's, is what the caller must see.
            log.warning("could not record a carrier call in the shared circuit: %s", exc)
            return
        state = state.decode() if isinstance(state, bytes) else str(state)
        CIRCUIT_STATE.labels(self.account.name).set(STATE_VALUE.get(state, 0))

    # -- one guarded call -------------------------------------------------------------------

    def call(self, site: str, operation: str, fn: Callable[[], T]) -> T:
        """Admit (circuit), pace (rate limit), call, and record the outcome for everyone."""
        name = self.account.name
        try:
            self._admit()
            self.acquire(site)
        except ConnectorError as exc:
            CARRIER_CALLS.labels(name, site, operation, _outcome(exc)).inc()
            raise
        start = time.perf_counter()
        try:
            result = fn()
        except ConnectorError as exc:
            CARRIER_CALLS.labels(name, site, operation, _outcome(exc)).inc()
            CARRIER_LATENCY.labels(name, site, operation).observe(time.perf_counter() - start)
            self._result(ok=not _is_failure(exc))
            raise
        CARRIER_CALLS.labels(name, site, operation, "ok").inc()
        CARRIER_LATENCY.labels(name, site, operation).observe(time.perf_counter() - start)
        self._result(ok=True)
        return result

    def reset(self) -> None:
        """Forget the account's shared state (tests, or an operator after fixing the account)."""
        _redis_call("reset", lambda: self.redis.delete(self.rate_key, self.breaker_key))
