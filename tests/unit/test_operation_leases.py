"""Operation holders and leases (store.operations), on SQLite and PostgreSQL.

An in-flight operation is never started again while its holder may be running it,
whatever the task id; only a holder known to be gone (lease expired, or its worker's
heartbeat says so) lets the next delivery decide, and then `check` or the declared
`on_unknown` does.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from siteops.connectors.errors import RetryableError
from tests.conftest import ROOT, poll


def _row(key: str) -> dict[str, Any]:
    from siteops.store.operations import get_operation

    row = get_operation(key)
    assert row is not None
    return row


def _expire_lease(key: str) -> None:
    from siteops.store.db import get_engine

    with get_engine().begin() as conn:
        conn.execute(sa.text("UPDATE operations SET lease_expires_at = :t WHERE key = :k"),
                     {"t": dt.datetime(2000, 1, 1, tzinfo=dt.UTC), "k": key})


@pytest.fixture
def probe() -> Iterator[dict[str, Any]]:
    """Stand in for the heartbeat registry: the test says what it answers."""
    from siteops.store import operations

    saved = (operations._identity, operations._probe)
    answer: dict[str, Any] = {"alive": None, "asked": []}

    def ask(holder: operations.Holder) -> bool | None:
        answer["asked"].append(holder)
        return answer["alive"]  # type: ignore[no-any-return]

    operations.configure_holders(identity=lambda: "NORTH@test:1-abc", probe=ask)
    yield answer
    operations._identity, operations._probe = saved


def test_an_effect_without_check_must_declare_what_unknown_means(store_url: str) -> None:
    from siteops.store.operations import get_operation, run_once

    with pytest.raises(ValueError, match="on_unknown"):
        run_once("odoo:NORTH:note:1", lambda: 1)
    with pytest.raises(ValueError, match="on_unknown must be one of"):
        run_once("odoo:NORTH:note:1", lambda: 1, on_unknown="maybe")  # type: ignore[arg-type]
    assert get_operation("odoo:NORTH:note:1") is None  # refused before anything was recorded


def test_the_same_task_redelivered_does_not_start_an_effect_still_running(store_url: str) -> None:
    from siteops.store.operations import run_once

    calls: list[int] = []
    started, release = threading.Event(), threading.Event()

    def effect() -> str:
        calls.append(1)
        started.set()
        release.wait(20)
        return "ok"

    first = threading.Thread(target=run_once, args=("odoo:WEB:activity:1", effect),
                             kwargs={"task_id": "t-1", "on_unknown": "repeat"})
    first.start()
    assert started.wait(10)
    row = _row("odoo:WEB:activity:1")
    assert row["state"] == "in_flight" and row["holder_pid"] == os.getpid() and row["holder_token"]
    assert row["lease_expires_at"] > row["db_now"]
    # The very same task id comes again (a redelivery): it must wait, not call.
    with pytest.raises(RetryableError, match="in flight"):
        run_once("odoo:WEB:activity:1", effect, task_id="t-1", on_unknown="repeat", wait_seconds=0.3)
    release.set()
    first.join(10)
    assert calls == [1]
    assert run_once("odoo:WEB:activity:1", effect, task_id="t-1", on_unknown="repeat") == "ok"
    assert _row("odoo:WEB:activity:1")["holder_token"] is None  # released when done


def test_the_holder_renews_its_lease_while_the_effect_runs(store_url: str) -> None:
    from siteops.store.operations import get_operation, run_once

    release = threading.Event()
    t = threading.Thread(target=run_once, args=("edi:EAST:856:1", lambda: release.wait(20)),
                         kwargs={"on_unknown": "repeat", "lease_seconds": 1.2})
    t.start()
    try:
        first = poll(lambda: (get_operation("edi:EAST:856:1") or {}).get("lease_expires_at"), 10, "the lease")
        # Longer than the lease itself: still held, because it was renewed.
        poll(lambda: _row("edi:EAST:856:1")["lease_expires_at"] > first + dt.timedelta(seconds=1.5), 10,
             "the lease to be renewed")
        assert _row("edi:EAST:856:1")["state"] == "in_flight"
    finally:
        release.set()
        t.join(10)
    assert _row("edi:EAST:856:1")["state"] == "succeeded"


def _foreign_holder(key: str) -> None:
    """Leave `key` in flight, held by 'another process' of our worker (as a crash would)."""
    from siteops.store import operations

    operations._claim(key, site=None, task_name="x", task_id="t-1")
    own = operations._token
    operations._token = "other-process"
    try:
        assert operations._take(key, expect_state="pending", expect_attempts=0, task_id="t-1", lease_seconds=60)
    finally:
        operations._token = own


def test_a_live_or_unexpired_holder_in_another_process_makes_the_delivery_wait(store_url: str,
                                                                               probe: dict[str, Any]) -> None:
    from siteops.store.operations import run_once

    calls: list[int] = []
    _foreign_holder("odoo:SOUTH:activity:3")
    for alive in (True, None):  # alive, or nobody can tell (heartbeat silent): the lease decides
        probe["alive"] = alive
        with pytest.raises(RetryableError, match="in flight"):
            run_once("odoo:SOUTH:activity:3", lambda: calls.append(1), task_id="t-1", on_unknown="repeat",
                     wait_seconds=0.3)
    assert calls == []
    asked = probe["asked"][-1]
    assert asked.worker == "NORTH@test:1-abc" and asked.pid == os.getpid() and asked.token == "other-process"


def test_a_holder_known_gone_lets_check_decide(store_url: str, probe: dict[str, Any]) -> None:
    from siteops.store.operations import run_once

    remote: list[str] = ["created"]  # the dead holder's call did reach the remote side
    _foreign_holder("carrier:CW:ship:7")
    probe["alive"] = False  # its worker's heartbeat no longer lists its process
    found = run_once("carrier:CW:ship:7", lambda: remote.append("again") or "dup",
                     check=lambda: "created" if remote else None, task_id="t-1")
    assert found == "created" and remote == ["created"]
    assert _row("carrier:CW:ship:7")["state"] == "succeeded"


def test_an_expired_lease_without_check_dead_letters_or_repeats_as_declared(store_url: str,
                                                                            probe: dict[str, Any]) -> None:
    from siteops.store.operations import UnknownOutcome, resolve, run_once

    calls: list[str] = []
    for key in ("odoo:CW:post:1", "webhook:CW:1:opened"):
        _foreign_holder(key)
        _expire_lease(key)
    probe["alive"] = True  # a stale heartbeat cannot outvote an expired lease

    with pytest.raises(UnknownOutcome, match="resolve"):
        run_once("odoo:CW:post:1", lambda: calls.append("post"), task_id="t-1", on_unknown="dead_letter")
    assert calls == [] and _row("odoo:CW:post:1")["state"] == "unknown"
    with pytest.raises(UnknownOutcome):  # a replay before an operator decided: still not repeated
        run_once("odoo:CW:post:1", lambda: calls.append("post"), task_id="t-2", on_unknown="dead_letter")
    resolve("odoo:CW:post:1", happened=False)
    run_once("odoo:CW:post:1", lambda: calls.append("post"), task_id="t-3", on_unknown="dead_letter")
    assert calls == ["post"]

    assert run_once("webhook:CW:1:opened", lambda: calls.append("hook") or 204, on_unknown="repeat") == 204
    assert calls == ["post", "hook"]


HOLDER_SCRIPT = """
import sys, time
from siteops.store.operations import run_once
run_once(sys.argv[1], lambda: (print("holding", flush=True), time.sleep(120)), on_unknown="dead_letter",
         lease_seconds=float(sys.argv[2]))
"""


def test_a_holder_process_killed_mid_call_blocks_until_its_lease_runs_out(store_url: str) -> None:
    """A real second process holds the operation; SIGKILL it inside the call."""
    from siteops.store.operations import UnknownOutcome, run_once

    key = "odoo:NORTH:activity:99"
    env = {**os.environ, "SITEOPS_DATABASE_URL": store_url}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER_SCRIPT, key, "3"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        calls: list[int] = []
        with pytest.raises(RetryableError, match="in flight"):
            run_once(key, lambda: calls.append(1), on_unknown="dead_letter", wait_seconds=0.3)
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)

        def decided() -> bool:
            try:
                run_once(key, lambda: calls.append(1), on_unknown="dead_letter", wait_seconds=0.2)
            except RetryableError:
                return False  # the lease has not run out yet
            except UnknownOutcome:
                return True
            raise AssertionError("the effect was called again")

        poll(decided, 20, "the dead holder's lease to run out")
        assert calls == []
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
