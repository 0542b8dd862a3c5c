"""Idempotent side effects: record the operation before the call, remember the result.

The key names the effect in business terms (``odoo:NORTH:activity:stock.picking:42``), so
a redelivered message, a retry after a timeout or a replayed dead letter all find the
same row:

- ``succeeded``: the effect happened; return the stored result, do not call again.
- ``pending``: recorded, never started (the process died before the call): safe to call.
- ``in_flight`` / ``unknown``: an attempt died during the call, or the call failed in a
  way that may have reached the remote side. If the caller gave a ``check`` (look the
  effect up remotely, e.g. by external reference) it decides; otherwise the effect is
  called again, which is only safe when the remote side dedupes on its own key.
- ``failed``: the remote side refused it (permanent error); a replay may try again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from siteops.connectors.errors import PermanentError, RetryableError
from siteops.store.db import get_engine
from siteops.store.models import Operation, OpState, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")
_ops: Table = Operation.__table__  # type: ignore[assignment]


def _set(key: str, **values: Any) -> None:
    values["updated_at"] = utcnow()
    with get_engine().begin() as conn:
        conn.execute(update(_ops).where(_ops.c.key == key).values(**values))


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
        with get_engine().begin() as conn:
            row = conn.execute(select(_ops).where(_ops.c.key == key)).mappings().one()
            return dict(row)


def get_operation(key: str) -> dict[str, Any] | None:
    with get_engine().begin() as conn:
        row = conn.execute(select(_ops).where(_ops.c.key == key)).mappings().one_or_none()
        return dict(row) if row else None


def _take(key: str, *, expect_state: str, expect_attempts: int, task_id: str | None) -> bool:
    """Move the operation to in_flight only if nobody else did since we looked."""
    with get_engine().begin() as conn:
        result = conn.execute(
            update(_ops)
            .where(_ops.c.key == key, _ops.c.state == expect_state, _ops.c.attempts == expect_attempts)
            .values(state=OpState.IN_FLIGHT, attempts=expect_attempts + 1, task_id=task_id, updated_at=utcnow())
        )
        return result.rowcount == 1


def run_once(
    key: str,
    effect: Callable[[], T],
    *,
    check: Callable[[], T | None] | None = None,
    site: str | None = None,
    task_name: str | None = None,
    task_id: str | None = None,
    lease_seconds: float = 15 * 60,
) -> T:
    """Perform `effect` at most once per `key` (see the module docstring).

    `lease_seconds`: how long another task's in-flight call is presumed alive (the task
    time limit). A redelivery of the *same* task means its earlier attempt is dead: Celery
    only hands a message out again once the process that held it is gone.
    """
    existing = _claim(key, site=site, task_name=task_name, task_id=task_id)
    state, attempts = OpState.PENDING, 0
    if existing is not None:
        state = existing["state"]
        attempts = int(existing["attempts"] or 0)
        if state == OpState.SUCCEEDED:
            log.info("operation %s already done; returning the stored result", key)
            return existing["result"]  # type: ignore[no-any-return]
        if state == OpState.IN_FLIGHT and existing["task_id"] != task_id:
            age = (utcnow() - existing["updated_at"]).total_seconds()
            if age < lease_seconds:
                raise RetryableError(f"operation {key} is in flight in task {existing['task_id']}")
        if state in (OpState.IN_FLIGHT, OpState.UNKNOWN):
            if check is not None:
                found = check()
                if found is not None:
                    log.warning("operation %s: outcome was unknown; the remote side has it", key)
                    _set(key, state=OpState.SUCCEEDED, result=_jsonable(found), error=None)
                    return found
                log.warning("operation %s: outcome was unknown; the remote side does not have it", key)
            else:
                log.warning("operation %s: outcome unknown and no check given; calling again", key)
    if not _take(key, expect_state=state, expect_attempts=attempts, task_id=task_id):
        raise RetryableError(f"operation {key} was taken by a concurrent attempt")
    try:
        result = effect()
    except PermanentError as exc:
        _set(key, state=OpState.FAILED, error=f"{type(exc).__name__}: {exc}"[:4000])
        raise
    except BaseException as exc:
        # A timeout may have reached the remote side: we do not know what happened.
        _set(key, state=OpState.UNKNOWN, error=f"{type(exc).__name__}: {exc}"[:4000])
        raise
    _set(key, state=OpState.SUCCEEDED, result=_jsonable(result), error=None)
    return result


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise PermanentError(
            f"the result of an idempotent operation must be JSON, got {type(value).__name__}"
        ) from None
    return value
