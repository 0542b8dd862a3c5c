"""Parked waits and the transient-error classification, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest


def _park(task_id: str, due_in: float, retries: int = 1) -> int:
    from siteops.store import waits

    return waits.park(task_id=task_id, task_name="siteops.testing.wait_long", site="NORTH", business_key="k",
                      args=["NORTH", "k"], kwargs={}, retries=retries, reason="rate_limited",
                      due_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=due_in), error="RateLimited: 429")


def test_a_due_wait_is_claimed_by_exactly_one_sweeper(store_url: str) -> None:
    from siteops.store import waits

    due, later = uuid.uuid4().hex, uuid.uuid4().hex
    wait_id = _park(due, -1)
    _park(later, 3600)
    # The same message parking twice (a redelivery) is one wait.
    assert _park(due, -1) == wait_id

    first = waits.claim_due(claimer="a")
    second = waits.claim_due(claimer="b")
    assert [w.task_id for w in first] == [due] and second == []
    # Only the claimer finishes it; a stale claim is taken over by the next sweeper.
    assert not waits.mark_enqueued(wait_id, "b")
    assert waits.claim_due(claimer="c", now=dt.datetime.now(dt.UTC) + waits.STALE_CLAIM * 2)[0].id == wait_id
    assert waits.mark_enqueued(wait_id, "c")
    assert waits.claim_due(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=1), claimer="d")[0].task_id == later
    assert [w.task_id for w in waits.list_waits()] == [later]


def test_a_resumed_run_parking_again_rearms_its_wait_and_a_stale_redelivery_does_not(store_url: str) -> None:
    from siteops.store import waits

    task_id = uuid.uuid4().hex
    wait_id = _park(task_id, -1, retries=0)
    [claimed] = waits.claim_due(claimer="a")
    # The resumed run parks again before its sweeper marked the wait enqueued: armed again.
    assert waits.park(task_id=task_id, task_name="siteops.testing.wait_long", site="NORTH", business_key="k",
                      args=["NORTH", "k"], kwargs={}, retries=0, reason="circuit_open",
                      due_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1), resumed_from=wait_id) == wait_id
    assert not waits.mark_enqueued(claimed.id, "a")  # the sweeper's late mark does not undo it
    [again] = waits.claim_due(claimer="b")
    assert again.id == wait_id and again.reason == "circuit_open"
    assert waits.mark_enqueued(wait_id, "b")
    # A redelivery of the original message (no resumed header) finds the wait and parks nothing.
    assert _park(task_id, -1, retries=0) == wait_id
    assert waits.claim_due(claimer="c") == []
    # Nor does a message resumed from another wait.
    assert waits.park(task_id=task_id, task_name="siteops.testing.wait_long", site="NORTH", business_key="k",
                      args=["NORTH", "k"], kwargs={}, retries=0, reason="circuit_open",
                      due_at=dt.datetime.now(dt.UTC), resumed_from=wait_id + 1000) == wait_id
    assert waits.claim_due(claimer="d") == []


def test_a_released_claim_is_swept_again(store_url: str) -> None:
    from siteops.store import waits

    wait_id = _park(uuid.uuid4().hex, -1)
    [claimed] = waits.claim_due(claimer="a")
    assert waits.release(claimed.id, "a")
    assert [w.id for w in waits.claim_due(claimer="b")] == [wait_id]


def test_a_naive_due_time_is_refused(store_url: str) -> None:
    from siteops.store import waits

    with pytest.raises(ValueError, match="UTC-aware"):
        waits.park(task_id="t", task_name="n", site=None, business_key=None, args=[], kwargs={}, retries=0,
                   reason="x", due_at=dt.datetime.now())


def test_store_and_broker_outages_are_transient_and_bugs_are_not() -> None:
    import kombu.exceptions
    import redis.exceptions
    import sqlalchemy.exc

    from siteops.store.transient import transient_kind

    def op_error(text: str) -> Exception:
        return sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception(text))

    assert transient_kind(op_error("database is locked")) == "store"
    assert transient_kind(op_error('database "x" is not currently accepting connections')) == "store"
    assert transient_kind(op_error("no such table: job_runs")) is None
    assert transient_kind(redis.exceptions.ConnectionError("Connection refused")) == "broker"
    assert transient_kind(kombu.exceptions.OperationalError("publish failed")) == "broker"
    assert transient_kind(ValueError("bug")) is None
    assert transient_kind(sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("dup"))) is None


def test_park_until_needs_one_aware_time() -> None:
    from siteops.tasks.base import ParkUntil

    with pytest.raises(ValueError, match="exactly one"):
        ParkUntil(reason="x")
    with pytest.raises(ValueError, match="UTC-aware"):
        ParkUntil(until=dt.datetime.now(), reason="x")
    parked = ParkUntil(after=60, reason="circuit_open")
    assert 59 < (parked.until - dt.datetime.now(dt.UTC)).total_seconds() <= 60


def test_a_resumed_header_of_the_wrong_shape_counts_as_no_header() -> None:
    """A message published by hand or by another producer with a junk header: treated as an
    original delivery (parks once), never as a licence to re-arm some other wait."""
    from celery.app.task import Context

    from siteops.store import waits
    from siteops.tasks.base import _resumed_from

    assert _resumed_from(Context({waits.RESUMED_HEADER: 17})) == 17
    assert _resumed_from(Context({waits.RESUMED_HEADER: "17"})) == 17
    for junk in ("seventeen", [1], {"id": 1}, None):
        assert _resumed_from(Context({waits.RESUMED_HEADER: junk})) is None
    assert _resumed_from(Context({})) is None
