"""Which errors mean "the store or the broker is unavailable right now" (and so are retried).

A PostgreSQL failover, "too many connections", SQLite busy past its timeout, a Redis
restart or a refused publish say nothing about the work itself: the same call succeeds
when the service is back. They are retried (bounded, with backoff) instead of being
treated as bugs and dead-lettered. Programming errors that SQLAlchemy also reports as
`OperationalError` on SQLite (a missing table or column) are not transient.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import kombu.exceptions
import redis.exceptions
import sqlalchemy.exc

log = logging.getLogger(__name__)
T = TypeVar("T")

_STORE_ERRORS: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,  # connection refused/lost, database is locked, too many connections
    sqlalchemy.exc.InterfaceError,  # the DBAPI connection is unusable
    sqlalchemy.exc.DisconnectionError,
    sqlalchemy.exc.TimeoutError,  # the connection pool had nothing to give within its timeout
)
_BROKER_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,  # includes BusyLoadingError (Redis replaying its AOF)
    redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,  # a publish that kombu gave up on
    ConnectionError,  # a raw socket refusal/reset
)
# SQLite reports these as OperationalError too, but they are bugs or a missing migration.
_NOT_TRANSIENT = ("no such table", "no such column", "syntax error", "has no column")


def transient_kind(exc: BaseException) -> str | None:
    """'store' or 'broker' when `exc` means that service is unavailable for now, else None."""
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return "store"
    if isinstance(exc, _STORE_ERRORS):
        text = str(exc).lower()
        return None if any(marker in text for marker in _NOT_TRANSIENT) else "store"
    if isinstance(exc, _BROKER_ERRORS):
        return "broker"
    return None


def is_transient(exc: BaseException) -> bool:
    return transient_kind(exc) is not None


def retry_transient(fn: Callable[[], T], *, what: str, attempts: int = 5, base: float = 0.25,
                    cap: float = 2.0) -> T:
    """Call `fn`, retrying transient errors in place (bounded; exponential backoff, full jitter).

    For the base class's own bookkeeping (audit rows, dead letters, parked waits): a blip
    of a few seconds must not cost a record. Other errors, and the last transient one,
    are raised to the caller, which decides what "cannot record" means.
    """
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc) or attempt == attempts - 1:
                raise
            delay = random.uniform(0, min(cap, base * 2**attempt))  # jitter, not crypto
            log.warning("%s: %s (%s); trying again in %.2fs (%d/%d)", what, type(exc).__name__,
                        str(exc).splitlines()[0][:200], delay, attempt + 1, attempts - 1)
            time.sleep(delay)
    raise AssertionError("unreachable")
