"""The store on SQLite and on PostgreSQL: migrations, audit rows, dead letters, operations."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa

from siteops.connectors.errors import PermanentError, RetryableError


def test_migration_matches_the_models(store_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from siteops.store.models import Base

    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        tables = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    assert {"job_runs", "dead_letters", "operations", "alembic_version"} <= tables
    # Types compare loosely across dialects; what matters is no missing table/column/index.
    assert [d for d in diff if d[0] in ("add_table", "add_column", "add_index", "remove_column")] == []


def test_audit_rows_record_the_run(store_url: str) -> None:
    from siteops.store import audit
    from siteops.store.models import utcnow

    started = utcnow()
    audit.record_run(task_id="t-1", task_name="siteops.ops.ping", site="NORTH", business_key="WH/IN/0042",
                     attempt=1, redelivered=False, worker="NORTH@h", pid=1, started_at=started, state="retrying",
                     duration=0.25, error=RetryableError("odoo down"), note={"retry_in": 1.5})
    [run] = audit.runs_by_business_key("WH/IN/0042")
    assert run.state == "retrying" and run.error_class == "RetryableError" and "odoo down" in run.error_message
    assert run.transitions[0] == ["running", started.isoformat()]
    assert run.transitions[1][0] == "retrying" and run.transitions[1][2] == {"retry_in": 1.5}
    assert run.started_at.tzinfo is not None and abs(run.started_at - started) < dt.timedelta(seconds=1)
    assert run.duration_seconds == 0.25
    # Runs whose process died are written by whoever noticed; they make a message poison.
    for pid in (2, 3):
        audit.record_run(task_id="t-1", task_name="siteops.ops.ping", site="NORTH", business_key="WH/IN/0042",
                         attempt=2, redelivered=True, worker="NORTH@h", pid=pid, started_at=None, state="lost",
                         error="WorkerLostError: signal 9")
    assert audit.count_lost("t-1") == 2
    assert [(r.state, r.error_class) for r in audit.runs_for("t-1")] == [
        ("retrying", "RetryableError"), ("lost", "WorkerLostError"), ("lost", "WorkerLostError")]


def test_dead_letters_are_listed_by_site_and_replayed_once(store_url: str) -> None:
    from siteops.store import audit

    ids = [audit.add_dead_letter(task_id=f"t-{i}", task_name="siteops.testing.x", site=site, business_key=None,
                                 args=[site, i], kwargs={"n": i}, reason="permanent",
                                 error=PermanentError("bad"), attempts=1)
           for i, site in enumerate(["NORTH", "SOUTH", "NORTH"])]
    assert [d.id for d in audit.list_dead_letters(site="NORTH")] == [ids[0], ids[2]]
    assert audit.count_dead_letters() == 3
    assert audit.get_dead_letter(ids[1]).args == ["SOUTH", 1]

    # Two operators replay the same dead letter at once: exactly one wins.
    wins = []
    barrier = threading.Barrier(4)

    def claim(n: int) -> None:
        barrier.wait()
        wins.append(audit.mark_replayed(ids[0], f"new-{n}"))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False, False, False, True]
    assert audit.count_dead_letters(site="NORTH") == 1
    assert audit.get_dead_letter(ids[0]).replayed_task_id.startswith("new-")


def test_idempotent_operation_runs_once_and_returns_the_stored_result(store_url: str) -> None:
    from siteops.store.operations import get_operation, run_once

    calls = []

    def effect() -> dict[str, int]:
        calls.append(1)
        return {"id": 42}

    assert run_once("odoo:NORTH:activity:7", effect, site="NORTH", on_unknown="repeat") == {"id": 42}
    assert run_once("odoo:NORTH:activity:7", effect, site="NORTH", on_unknown="repeat") == {"id": 42}
    assert len(calls) == 1
    op = get_operation("odoo:NORTH:activity:7")
    assert op["state"] == "succeeded" and op["attempts"] == 1


def test_unknown_outcome_is_reconciled_by_the_check(store_url: str) -> None:
    from siteops.store.operations import get_operation, run_once

    remote: list[str] = []

    def times_out_after_sending() -> str:
        remote.append("created")
        raise RetryableError("read timeout")

    with pytest.raises(RetryableError):
        run_once("carrier:CW:ship:1", times_out_after_sending, on_unknown="dead_letter")
    assert get_operation("carrier:CW:ship:1")["state"] == "unknown"
    # The retry asks the remote side first, finds the effect, and does not create it again.
    found = run_once("carrier:CW:ship:1", lambda: remote.append("again") or "dup",
                     check=lambda: "created" if remote else None)
    assert found == "created" and remote == ["created"]
    assert get_operation("carrier:CW:ship:1")["state"] == "succeeded"


def test_permanent_failure_is_recorded_and_may_be_tried_again(store_url: str) -> None:
    from siteops.store.operations import get_operation, run_once

    def refused() -> None:
        raise PermanentError("validation")

    with pytest.raises(PermanentError):
        run_once("edi:EAST:855:9", refused, on_unknown="repeat")
    assert get_operation("edi:EAST:855:9")["state"] == "failed"
    assert run_once("edi:EAST:855:9", lambda: "sent", on_unknown="repeat") == "sent"
    assert get_operation("edi:EAST:855:9")["attempts"] == 2


def test_concurrent_first_attempts_call_the_effect_once(store_url: str) -> None:
    from siteops.store.operations import run_once

    calls = []
    started = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def slow_effect() -> str:
        calls.append(1)
        started.set()
        release.wait(10)
        return "ok"

    def first() -> None:
        try:
            run_once("odoo:WEB:note:1", slow_effect, task_id="first", on_unknown="repeat")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=first)
    t.start()
    assert started.wait(10)
    # A duplicate delivery arrives while the first call is in flight: it must not call again.
    with pytest.raises(RetryableError, match="in flight"):
        run_once("odoo:WEB:note:1", slow_effect, task_id="duplicate", on_unknown="repeat",
                 wait_seconds=0.3)
    release.set()
    t.join(10)
    assert errors == [] and len(calls) == 1
