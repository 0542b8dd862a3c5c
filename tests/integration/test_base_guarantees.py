"""The base class loses nothing: every abnormal end comes back or leaves a record.

Real workers, a real Redis (one that is SIGKILLed and restarted), SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import time
import uuid
from typing import Any

import pytest

from tests.conftest import TMP, _free_port, poll, postgres_database, run_siteops, use_store

pytestmark = pytest.mark.integration


def siteops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_siteops(*args, env=env)


@pytest.fixture(scope="module")
def north(stack):
    return stack.serving("NORTH", concurrency=2)


def dead_letters_of(task_id: str) -> list[Any]:
    from siteops.store import audit

    return [d for d in audit.list_dead_letters(include_replayed=True) if d.task_id == task_id]


# --- hostile and malformed messages -----------------------------------------------------


def test_malformed_messages_are_set_aside_and_the_worker_keeps_running(north, remote) -> None:
    from kombu import Connection

    from siteops.tasks.ops import ping
    from tests.conftest import BROKER_URL

    pid = north.process.pid
    ids = {kind: f"bad-{kind}-{uuid.uuid4().hex[:8]}" for kind in ("string", "list", "pickle", "garbage", "unknown")}
    with Connection(BROKER_URL) as conn:
        producer = conn.Producer()

        def publish(body: Any, kind: str, task: str = "siteops.testing.noop", **options: Any) -> None:
            producer.publish(body, exchange="siteops", routing_key="site.NORTH",
                             headers={"task": task, "id": ids[kind], "lang": "py"}, **options)

        publish("hello", "string", serializer="json")  # crash-looped the worker before
        publish([1, 2], "list", serializer="json")
        publish({"args": ["NORTH"]}, "pickle", serializer="pickle")  # refused content type
        publish(b"{not json" + b"x" * 10000, "garbage", content_type="application/json", content_encoding="utf-8")
        publish([["NORTH"], {}, {}], "unknown", task="siteops.nope.unknown_task", serializer="json")

    for kind, task_id in ids.items():
        [dead] = poll(lambda task_id=task_id: dead_letters_of(task_id), 30, f"the {kind} message's dead letter")
        assert dead.reason == "malformed", kind
        assert dead.site == "NORTH" and dead.args == [] and dead.kwargs == {}
        assert dead.message["headers"]["id"] == task_id
        assert dead.message["delivery_info"]["routing_key"] == "site.NORTH"
        assert len(dead.message["body"]) <= 4096
    garbage = dead_letters_of(ids["garbage"])[0].message
    assert garbage["body"].startswith("{not json") and garbage["body_truncated"] and garbage["body_bytes"] > 10000
    assert "pickle" in dead_letters_of(ids["pickle"])[0].error_message
    assert "siteops.nope.unknown_task" in dead_letters_of(ids["unknown"])[0].error_message

    # Same process, still serving, and nothing of them left on the queue.
    assert north.alive() and north.process.pid == pid
    assert ping.delay("NORTH").get(timeout=30)["site"] == "NORTH"
    assert north.process.pid == pid
    unacked = [json.loads(v) for v in north_unacked(north)]
    assert not any(m[0]["headers"].get("id") in ids.values() for m in unacked)

    # The operator sees them; replaying one is refused with the reason.
    listed = json.loads(siteops("dlq", "list", "--json", "--site", "NORTH").stdout)
    assert {d["task_id"] for d in listed if d["reason"] == "malformed"} >= set(ids.values())
    dead_id = dead_letters_of(ids["string"])[0].id
    refused = siteops("dlq", "replay", str(dead_id))
    assert refused.returncode == 1 and "malformed" in refused.stderr and "no task arguments" in refused.stderr


def _broker() -> Any:
    import redis

    from tests.conftest import REDIS_PORT

    return redis.Redis(port=REDIS_PORT)


def north_unacked(north) -> list[bytes]:
    return list(_broker().hvals("unacked"))


def queued(queue: str) -> list[bytes]:
    return list(_broker().lrange(queue, 0, -1))


def test_a_task_for_another_site_is_refused_not_run(north, remote) -> None:
    from siteops.store import audit
    from tests.integration.fixture_tasks import record

    key = uuid.uuid4().hex
    # A producer that routes by hand (or by mistake) past our router, which would refuse
    # it (WrongQueue): SOUTH's task published straight onto NORTH's queue.
    app = record.app
    task_id = str(uuid.uuid4())
    message = app.amqp.create_task_message(task_id, record.name, ["SOUTH", key], {})
    with app.producer_or_acquire() as producer:
        app.amqp.send_task_message(producer, record.name, message, queue=app.amqp.queues["site.NORTH"],
                                   routing_key="site.NORTH", exchange="siteops")
    result = app.AsyncResult(task_id)
    [dead] = poll(lambda: dead_letters_of(result.id), 30, "the wrong-site dead letter")
    assert dead.reason == "wrong_site" and dead.site == "SOUTH" and dead.args == ["SOUTH", key]
    assert "site.NORTH" in dead.error_message
    assert remote.llen(f"ran:{key}") == 0
    # The audit row is written just after the dead letter: wait for it rather than race it.
    runs = poll(lambda: audit.runs_for(result.id), 30, "the wrong-site audit row")
    assert [r.state for r in runs] == ["dead_lettered"]


# --- runs that end without the task's say -----------------------------------------------


def test_a_task_past_its_hard_time_limit_is_audited_and_dead_lettered(north, remote) -> None:
    from siteops.store import audit
    from tests.integration.fixture_base_tasks import hang

    key = uuid.uuid4().hex
    result = hang.delay("NORTH", key)
    [dead] = poll(lambda: dead_letters_of(result.id), 30, "the time-limit dead letter")
    assert dead.reason == "time_limit" and dead.args == ["NORTH", key]
    assert dead.error_class == "TimeLimitExceeded"
    runs = poll(lambda: audit.runs_for(result.id), 10, "the time-limit audit row")
    assert runs[0].state == "dead_lettered" and runs[0].error_class == "TimeLimitExceeded"
    # It is not run again by itself (the dead letter is the way back): the message is acked.
    poll(lambda: not any(result.id.encode() in v for v in north_unacked(north)), 15, "the message to be acked")
    assert remote.llen(f"started:{key}") == 1
    assert north.alive()


def test_revoked_and_expired_messages_leave_an_audit_row(north, remote) -> None:
    from siteops.celery_app import app
    from siteops.store import audit
    from tests.integration.fixture_tasks import record

    key = uuid.uuid4().hex
    expired = record.apply_async(args=["NORTH", key], expires=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))
    [run] = poll(lambda: audit.runs_for(expired.id), 30, "the expired message's audit row")
    assert run.state == "expired" and run.error_class == "Expired"

    revoked_id = uuid.uuid4().hex
    app.control.revoke(revoked_id)
    poll(lambda: any(revoked_id in ids for ids in (app.control.inspect(timeout=1).revoked() or {}).values()),
         20, "the worker to know the revoke")
    record.apply_async(args=["NORTH", key], task_id=revoked_id)
    [run] = poll(lambda: audit.runs_for(revoked_id), 30, "the revoked task's audit row")
    assert run.state == "revoked" and run.site == "NORTH"
    assert remote.llen(f"ran:{key}") == 0


def test_a_retry_after_beyond_the_cap_is_parked_in_the_database_and_swept_when_due(north, remote) -> None:
    from siteops.celery_app import app
    from siteops.store import audit, waits
    from siteops.worker.sweeper import enqueue_due_waits
    from tests.integration.fixture_base_tasks import wait_long

    key = uuid.uuid4().hex
    result = wait_long.delay("NORTH", key, retry_after=7200)
    [wait] = poll(lambda: waits.waits_for(result.id), 30, "the parked wait")
    assert wait.state == "waiting" and wait.reason == "rate_limited" and wait.retries == 1
    assert wait.args == ["NORTH", key] and wait.kwargs == {"retry_after": 7200}
    assert 7100 < (wait.due_at - dt.datetime.now(dt.UTC)).total_seconds() <= 7200
    poll(lambda: [r.state for r in audit.runs_for(result.id)] == ["parked"], 10, "the parked audit row")
    # Nothing of it is left in Redis to be handed out again: no queued copy, no unacked one, no ETA.
    poll(lambda: not any(result.id.encode() in v for v in north_unacked(north)), 10, "the message to be acked")
    assert not any(result.id.encode() in m for m in queued("site.NORTH"))
    assert enqueue_due_waits(app) == 0  # not due yet

    waits.reschedule(wait.id, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    assert enqueue_due_waits(app) == 1
    assert enqueue_due_waits(app) == 0  # claimed once
    assert result.get(timeout=30) == 2  # same task id, second attempt
    assert [r.state for r in audit.runs_for(result.id)] == ["parked", "succeeded"]
    assert waits.get_wait(wait.id).state == "enqueued"  # type: ignore[union-attr]


def test_a_task_parked_again_on_the_same_retry_count_is_swept_every_time(north, remote) -> None:
    """An open circuit parks without spending a retry, so each resumed run parks under the
    same (task id, retries) key: each time it must get a wait again, not be acked into
    nothing. A redelivery of one message, in contrast, still parks once (tests/unit/test_waits.py)."""
    from siteops.celery_app import app
    from siteops.store import audit, waits
    from siteops.worker.sweeper import enqueue_due_waits
    from tests.integration.fixture_base_tasks import park_again

    key = uuid.uuid4().hex
    result = park_again.delay("NORTH", key, parks=3)

    def swept() -> bool:
        enqueue_due_waits(app)
        return result.ready()

    poll(swept, 60, "the task to be swept through three parks and run")
    assert result.get(timeout=5) == 4
    [wait] = waits.waits_for(result.id)  # one wait, armed three times
    assert wait.state == "enqueued" and wait.retries == 0
    assert [r.state for r in audit.runs_for(result.id)] == ["parked"] * 3 + ["succeeded"]


# --- a broker restart under load ----------------------------------------------------------


def plant_unseen(broker: Any, broker_url: str, app: Any, task: str, args: list[Any]) -> str:
    """A task message for `args[0]`'s queue in kombu's `unacked` hash, delivered to nobody."""
    from kombu import Connection, Exchange, Producer, Queue

    task_id, side = str(uuid.uuid4()), f"side-{uuid.uuid4().hex[:8]}"
    message = app.amqp.create_task_message(task_id, task, args, {})
    queue = Queue(side, Exchange(side, type="direct"), routing_key=side)
    with Connection(broker_url) as conn:
        Producer(conn).publish(message.body, exchange=queue.exchange, routing_key=side, declare=[queue],
                               headers=message.headers, serializer="json", **message.properties)
    payload = json.loads(broker.rpop(side))
    tag = str(uuid.uuid4())
    site_queue = f"site.{args[0]}"
    payload["properties"].update(delivery_tag=tag, delivery_info={"exchange": "siteops", "routing_key": site_queue})
    broker.hset("unacked", tag, json.dumps([payload, "siteops", site_queue]))
    broker.zadd("unacked_index", {tag: time.time()})
    return task_id


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_redis_restart_under_load_loses_no_task(stack, remote, sig) -> None:
    """Broker and result backend on one Redis (AOF on), as in production; effects elsewhere."""
    import redis
    from kombu import Connection

    from siteops.sim.embedded import RedisServer
    from tests.conftest import REDIS_PORT
    from tests.integration.fixture_base_tasks import mark

    port = _free_port()
    data = TMP / f"redis-restart-{uuid.uuid4().hex[:6]}"
    server = RedisServer(port=port, data_dir=data, persistent=True).start()
    broker_url = f"redis://127.0.0.1:{port}/0"
    env = {"SITEOPS_BROKER_URL": broker_url, "SITEOPS_RESULT_BACKEND": "",
           "SITEOPS_TEST_REMOTE_URL": f"redis://127.0.0.1:{REDIS_PORT}/3"}
    broker = redis.Redis(port=port)
    try:
        worker = stack.worker("WEB", concurrency=2, wait=False, env=env)
        # As deployed: the platform worker's lost-work recovery runs too. It puts back what the
        # broker handed out in the instant it went down and no worker ever saw (in `unacked`,
        # held by nobody: the reply never came), which no consumer can know it should restore.
        platform = stack.worker(platform=True, wait=False, env=env)
        poll(lambda: worker.alive() and platform.alive() and
             len(list(broker.scan_iter(match="siteops:worker:*"))) >= 2, 60, "the workers")
        batch, total, held = uuid.uuid4().hex, 200, {40, 41}
        with Connection(broker_url) as conn:
            for n in range(total):
                # Two long tasks in the backlog: the restart surely finds both pool processes busy.
                mark.apply_async(args=["WEB", batch, n], kwargs={"hold": 2.0 if n in held else 0.02},
                                 connection=conn)
        poll(lambda: held <= {int(n) for n in remote.smembers(f"running:{batch}")}, 60, "the long tasks to run")

        server.stop(sig)  # mid-run: two tasks running, more reserved, the rest queued
        time.sleep(2)  # the outage itself (not synchronisation)
        server = RedisServer(port=port, data_dir=data, persistent=True).start()
        # And one such message for certain: task `total`, in `unacked` as kombu writes it on
        # delivery, whose worker never got it (seen on a loaded machine: its reply was lost).
        plant_unseen(broker, broker_url, mark.app, mark.name, ["WEB", batch, total])

        def missing() -> set[int]:
            done = {int(n) for n in remote.smembers(f"done:{batch}")}
            return set(range(total + 1)) - done

        try:
            poll(lambda: not missing(), 120, "every task's effect")
        except AssertionError:
            raise AssertionError(f"lost {sorted(missing())} after a {sig.name} restart:\n"
                                 f"{worker.log_text()[-4000:]}") from None
        assert worker.alive()
        print(f"{sig.name}: {total + 1} tasks, {int(remote.get(f'runs:{batch}') or 0)} runs (reruns are "
              "cancelled or unacked work put back)")
        worker.stop()
        platform.stop()
    finally:
        server.stop()


# --- the store goes away mid-task (PostgreSQL) -------------------------------------------


@pytest.fixture
def pg_store() -> Any:
    """A PostgreSQL store that the test can switch off and on (a failover, as workers see it)."""
    import sqlalchemy as sa

    with postgres_database("siteops_outage") as (url, admin):
        name = url.rsplit("/", 1)[1]

        def available(yes: bool) -> None:
            with admin.connect() as conn:
                conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if yes else "false"}'))
                if not yes:  # and cut every open connection
                    conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                         "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})

        with use_store(url):
            yield url, available


@pytest.mark.postgres
def test_the_store_unavailable_mid_task_is_retried_and_the_task_completes(stack, remote, pg_store) -> None:
    from siteops.store import audit
    from tests.integration.fixture_base_tasks import store_touch

    url, available = pg_store
    worker = stack.worker("EAST", concurrency=1, env={"SITEOPS_DATABASE_URL": url})
    key = uuid.uuid4().hex
    result = store_touch.delay("EAST", key)
    poll(lambda: remote.get(f"attempts:{key}") == "1", 30, "the task to start")

    available(False)  # the store goes away while the task runs
    remote.set(f"go:{key}", 1)
    poll(lambda: int(remote.get(f"attempts:{key}") or 0) >= 2, 30, "a retry while the store is down")
    assert remote.llen(f"effects:{key}") == 0
    available(True)

    attempts = result.get(timeout=60)
    assert attempts >= 2
    assert remote.lrange(f"effects:{key}", 0, -1) == [result.id]  # once, and only after the store was back
    runs = audit.runs_for(result.id)
    assert runs[-1].state == "succeeded" and runs[-1].attempt == attempts
    assert not dead_letters_of(result.id)
    assert "store_unavailable" in worker.log_text() or "OperationalError" in worker.log_text()
