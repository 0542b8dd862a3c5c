"""Idempotent side effects: at most once per key, with a named holder and a lease.

The key names the effect in business terms (``odoo:NORTH:activity:stock.picking:42``), so
a redelivered message, a retry after a timeout or a replayed dead letter all find the
same row. What a delivery does depends on the row it finds:

- ``succeeded``: the effect happened; return the stored result, do not call again.
- ``pending``: recorded, never started (the process died before the call): safe to call.
- ``in_flight``: an attempt took it and may still be running the call. Its HOLDER is on
  the row (worker instance, pool process pid, a per-process start token) with a LEASE
  that the holder renews while the effect runs. While the holder may be alive — lease
  not expired, and no positive sign that it is gone — the effect is NOT started again,
  whatever the task id (the same task id redelivered included): the delivery waits a
  few seconds for a verdict, then raises `RetryableError` (retry later, not a dead
  letter). The holder is known to be gone when its lease expired, or when its worker's
  heartbeat, published after the holder took the operation, no longer lists its process
  (a pool process killed under a live worker). Then it is treated as ``unknown``.
- ``unknown``: an attempt died during the call, or the call failed in a way that may have
  reached the remote side. The caller's `check` (look the effect up remotely, e.g. by
  external reference) decides. Without a check, the caller must have declared what an
  unknown outcome means (`on_unknown`):

  * ``"repeat"``: call the effect again. Only right when the remote side dedupes on its
    own (a webhook receiver keyed by the delivery id) or a duplicate is harmless.
  * ``"dead_letter"``: do not call again; raise `UnknownOutcome` (a `PermanentError`,
    so the task is dead-lettered) and leave the row ``unknown`` until an operator says
    what happened (`resolve`). A replay before that dead-letters again.

- ``failed``: the remote side refused it (permanent error); a replay may try again.

Clocks: the lease is written and compared on the store's clock (PostgreSQL's ``now()``;
SQLite lives on one host). The holder's start time is only compared with its own
worker's heartbeat, written on the same host.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, Table, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from siteops.connectors.errors import PermanentError, RetryableError
from siteops.store.db import get_engine
from siteops.store.models import Operation, OpState, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")
_ops: Table = Operation.__table__  # type: ignore[assignment]

OnUnknown = Literal["repeat", "dead_letter"]
ON_UNKNOWN: tuple[str, ...] = ("repeat", "dead_letter")

#: A holder that stops renewing (its process died or froze) loses the operation after
#: this long. About the lost-message recovery time of a dead worker (10-15 s, see
#: siteops.worker.recovery), so a message put back after a whole-worker death finds the
#: lease expired, or expiring within the few seconds the delivery waits.
LEASE_SECONDS = 15.0
RENEW_EVERY = 3.0
#: How long a second delivery waits for a verdict on a holder that looks alive before it
#: gives up and retries later: three heartbeats, so a pool process killed under a live
#: worker is recognised as gone within the wait.
HOLDER_WAIT_SECONDS = 7.0
#: Rows written before leases existed: presumed alive for the task time limit.
LEGACY_LEASE_SECONDS = 15 * 60


class UnknownOutcome(PermanentError):
    """The effect may or may not have happened, there is no check, and repeating it was
    not declared safe: an operator must verify and `resolve` the operation."""


@dataclass(frozen=True)
class Holder:
    worker: str | None  # the worker instance (its heartbeat name); None outside a worker
    pid: int
    token: str  # per process start: a reused pid is not the same holder
    since: float  # when it took the operation, on its own host's clock


#: The probe answers "is this holder alive?": True, False (known gone) or None (cannot
#: tell; the lease decides). siteops.worker.recovery installs one backed by heartbeats.
Probe = Callable[[Holder], bool | None]
_probe: Probe | None = None
_identity: Callable[[], str | None] = lambda: None  # noqa: E731


def configure_holders(*, identity: Callable[[], str | None], probe: Probe) -> None:
    """Set how this process names its worker instance and asks about other holders."""
    global _probe, _identity
    _identity, _probe = identity, probe


_token = uuid.uuid4().hex[:16]
_active: set[str] = set()
_active_lock = threading.Lock()


def _after_fork() -> None:
    # A forked pool process is a new holder: it must not inherit its parent's token.
    global _token
    _token = uuid.uuid4().hex[:16]
    _active.clear()


os.register_at_fork(after_in_child=_after_fork)


def _db_now(conn: Connection) -> dt.datetime:
    if conn.dialect.name == "postgresql":
        return conn.execute(select(func.now())).scalar_one()  # type: ignore[no-any-return]
    return utcnow()


def _claim(key: str, *, site: str | None, task_name: str | None, task_id: str | None) -> dict[str, Any] | None:
    """Insert the operation as pending; on a repeat, return the existing row instead."""
    try:
        with get_engine().begin() as conn:
            conn.execute(
                insert(_ops).values(
                    key=key, site=site, task_name=task_name, task_id=task_id,
                    state=OpState.PENDING, attempts=0, created_at=utcnow(), updated_at=utcnow(),
                )
            )
        return None
    except IntegrityError:
        return get_operation(key)


def get_operation(key: str) -> dict[str, Any] | None:
    with get_engine().begin() as conn:
        row = conn.execute(select(_ops).where(_ops.c.key == key)).mappings().one_or_none()
        if row is None:
            return None
        out = dict(row)
        out["db_now"] = _db_now(conn)
        return out


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def holder_gone(row: dict[str, Any]) -> bool:
    """True when the in-flight holder of `row` is known to be gone (see the module doc)."""
    now = _aware(row.get("db_now") or utcnow())
    lease = row.get("lease_expires_at")
    if lease is None:
        lease = _aware(row["updated_at"]) + dt.timedelta(seconds=LEGACY_LEASE_SECONDS)
    if now >= _aware(lease):
        return True
    token = row.get("holder_token")
    if token is None:
        return False  # an old row with an unexpired lease: only time can tell
    if token == _token:
        with _active_lock:  # our own process: we know exactly what we are running
            return row["key"] not in _active
    if _probe is None:
        return False
    holder = Holder(row.get("holder_worker"), int(row.get("holder_pid") or 0), token,
                    float(row.get("holder_since") or 0.0))
    try:
        return _probe(holder) is False
    except Exception as exc:  # no verdict: the lease decides
        log.warning("could not ask whether holder %s is alive: %s", holder, exc)
        return False


def _take(key: str, *, expect_state: str, expect_attempts: int, task_id: str | None,
          lease_seconds: float) -> bool:
    """Move the operation to in_flight, with us as holder, only if nobody else did since we looked."""
    with get_engine().begin() as conn:
        now = _db_now(conn)
        result = conn.execute(
            update(_ops)
            .where(_ops.c.key == key, _ops.c.state == expect_state, _ops.c.attempts == expect_attempts)
            .values(state=OpState.IN_FLIGHT, attempts=expect_attempts + 1, task_id=task_id, updated_at=utcnow(),
                    holder_worker=_identity(), holder_pid=os.getpid(), holder_token=_token,
                    holder_since=time.time(), lease_expires_at=now + dt.timedelta(seconds=lease_seconds))
        )
        return result.rowcount == 1


_RELEASED = {"holder_worker": None, "holder_pid": None, "holder_token": None, "holder_since": None,
             "lease_expires_at": None}


def _finish(key: str, token: str, **values: Any) -> None:
    """Record the outcome of our attempt, only if we still hold the operation."""
    values.update(_RELEASED, updated_at=utcnow())
    with get_engine().begin() as conn:
        done = conn.execute(update(_ops).where(_ops.c.key == key, _ops.c.holder_token == token).values(**values))
    if done.rowcount != 1:
        log.error("operation %s: our lease was lost while the effect ran (outcome %s not recorded)",
                  key, values.get("state"))


def _set_if(key: str, expect_state: str, expect_attempts: int, /, **values: Any) -> bool:
    values.update(_RELEASED, updated_at=utcnow())
    with get_engine().begin() as conn:
        done = conn.execute(update(_ops).where(_ops.c.key == key, _ops.c.state == expect_state,
                                               _ops.c.attempts == expect_attempts).values(**values))
        return done.rowcount == 1


@contextmanager
def _holding(key: str, lease_seconds: float) -> Iterator[None]:
    """Mark the key as running here and renew its lease until the effect returns."""
    token = _token
    stop = threading.Event()

    def renew() -> None:
        every = min(RENEW_EVERY, lease_seconds / 3)
        while not stop.wait(every):
            try:
                with get_engine().begin() as conn:
                    now = _db_now(conn)
                    conn.execute(update(_ops).where(_ops.c.key == key, _ops.c.holder_token == token)
                                 .values(lease_expires_at=now + dt.timedelta(seconds=lease_seconds)))
            except Exception as exc:  # the lease runs out by itself; say so
                log.warning("operation %s: lease not renewed: %s", key, exc)

    with _active_lock:
        _active.add(key)
    renewer = threading.Thread(target=renew, name=f"lease:{key}"[:60], daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join(5)
        with _active_lock:
            _active.discard(key)


def run_once(
    key: str,
    effect: Callable[[], T],
    *,
    check: Callable[[], T | None] | None = None,
    on_unknown: OnUnknown | None = None,
    site: str | None = None,
    task_name: str | None = None,
    task_id: str | None = None,
    lease_seconds: float = LEASE_SECONDS,
    wait_seconds: float = HOLDER_WAIT_SECONDS,
) -> T:
    """Perform `effect` at most once per `key` (the contract is in the module docstring).

    `check`: looks the effect up at the remote side after an unknown outcome; returns its
    result, or None when it did not happen. Without a check, `on_unknown` must say what
    an unknown outcome means: ``"repeat"`` or ``"dead_letter"`` (a `ValueError` otherwise,
    before anything is recorded). `lease_seconds`: how long the holder stays presumed
    alive without renewing; the lease is renewed every few seconds while `effect` runs.
    """
    if on_unknown is not None and on_unknown not in ON_UNKNOWN:
        raise ValueError(f"operation {key}: on_unknown must be one of {ON_UNKNOWN}, got {on_unknown!r}")
    if check is None and on_unknown is None:
        raise ValueError(f"operation {key}: an effect without a check must declare on_unknown "
                         f"('repeat' if the remote side dedupes, else 'dead_letter')")
    row = _claim(key, site=site, task_name=task_name, task_id=task_id)
    state, attempts = OpState.PENDING, 0
    deadline = time.monotonic() + wait_seconds
    while row is not None:
        state, attempts = row["state"], int(row["attempts"] or 0)
        if state == OpState.SUCCEEDED:
            log.info("operation %s already done; returning the stored result", key)
            return row["result"]  # type: ignore[no-any-return]
        if state == OpState.IN_FLIGHT and not holder_gone(row):
            if time.monotonic() >= deadline:
                raise RetryableError(
                    f"operation {key} is in flight in process {row.get('holder_pid')} of "
                    f"{row.get('holder_worker') or 'another process'} (task {row.get('task_id')}); "
                    f"not starting it again while that holder may be running it")
            time.sleep(0.25)
            row = get_operation(key)
            continue
        if state in (OpState.IN_FLIGHT, OpState.UNKNOWN):
            if check is not None:
                found = check()
                if found is not None:
                    log.warning("operation %s: outcome was unknown; the remote side has it", key)
                    _set_if(key, state, attempts, state=OpState.SUCCEEDED, result=_jsonable(found), error=None)
                    return found
                log.warning("operation %s: outcome was unknown; the remote side does not have it", key)
            elif on_unknown == "dead_letter":
                _set_if(key, state, attempts, state=OpState.UNKNOWN)
                raise UnknownOutcome(
                    f"operation {key}: an earlier attempt died during the call, so the effect may or may not "
                    f"have happened; it has no check and is not repeated. Verify at the remote side, then "
                    f"resolve it (siteops.store.operations.resolve) and replay the dead letter")
            else:
                log.warning("operation %s: outcome unknown, no check; repeating as declared", key)
        break
    if not _take(key, expect_state=state, expect_attempts=attempts, task_id=task_id, lease_seconds=lease_seconds):
        raise RetryableError(f"operation {key} was taken by a concurrent attempt")
    token = _token
    try:
        with _holding(key, lease_seconds):
            result = effect()
    except PermanentError as exc:
        _finish(key, token, state=OpState.FAILED, error=f"{type(exc).__name__}: {exc}"[:4000])
        raise
    except BaseException as exc:
        # A timeout may have reached the remote side: we do not know what happened.
        _finish(key, token, state=OpState.UNKNOWN, error=f"{type(exc).__name__}: {exc}"[:4000])
        raise
    _finish(key, token, state=OpState.SUCCEEDED, result=_jsonable(result), error=None)
    return result


def resolve(key: str, *, happened: bool, result: Any = None) -> None:
    """An operator's verdict on an ``unknown`` operation: it happened (with `result`, which
    later deliveries return) or it did not (the next delivery calls the effect)."""
    row = get_operation(key)
    if row is None:
        raise KeyError(f"no operation {key!r}")
    if row["state"] not in (OpState.UNKNOWN, OpState.IN_FLIGHT) or (
            row["state"] == OpState.IN_FLIGHT and not holder_gone(row)):
        raise ValueError(f"operation {key} is {row['state']}; only an unknown outcome can be resolved")
    new = {"state": OpState.SUCCEEDED, "result": _jsonable(result)} if happened else {"state": OpState.PENDING}
    if not _set_if(key, row["state"], int(row["attempts"] or 0), error=None, **new):
        raise ValueError(f"operation {key} changed while being resolved; look again")


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise PermanentError(
            f"the result of an idempotent operation must be JSON, got {type(value).__name__}"
        ) from None
    return value
