"""The recoverer's evidence rules, against a real Redis and a real kombu channel, on a test clock.

A message is put back only when its tag was seen unclaimed on 3 consecutive passes over
at least 10 s of the recoverer's own clock; a never-claimed tag also waits for every live
worker serving its queue to speak again; a worker whose heartbeat connection vanished
counts as dead before its key expires.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from siteops.worker import recovery
from tests.conftest import REDIS_PORT

URL = f"redis://127.0.0.1:{REDIS_PORT}/5"  # not the broker's db: live recoverers never see it


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def broker(redis_server: Any) -> Iterator[tuple[redis.Redis, Any]]:
    from kombu import Connection, Exchange, Queue

    client = redis.Redis.from_url(URL)
    client.flushdb()
    with Connection(URL) as conn:
        channel = conn.default_channel
        Queue("site.NORTH", Exchange("siteops"), routing_key="site.NORTH").declare(channel=channel)
        yield client, channel
    client.flushdb()


def deliver(client: redis.Redis, tag: str, queue: str = "site.NORTH") -> None:
    """What kombu does when it hands a message out with late ack: it sits in `unacked`."""
    message = {"body": "[[], {}, {}]", "headers": {"id": tag, "task": "siteops.testing.noop"},
               "properties": {"delivery_tag": tag}, "content-type": "application/json"}
    client.hset(recovery.UNACKED, tag, json.dumps([message, "siteops", queue]))
    client.zadd(recovery.UNACKED_INDEX, {tag: 1.0})  # a silly score: it must not matter


def beat(client: redis.Redis, worker: str, tags: list[str], queues: tuple[str, ...] = ("site.NORTH",)) -> None:
    client.set(recovery.WORKER_KEY + worker, json.dumps({"ts": time.time(), "tags": tags, "queues": list(queues),
                                                         "pids": [1]}), ex=60)


def passes(r: recovery.Recoverer, clock: Clock, client: redis.Redis, channel: Any, n: int) -> list[str]:
    restored: list[str] = []
    for _ in range(n):
        clock.t += recovery.RECOVERY_EVERY
        restored += [x["tag"] for x in r.run(client, channel).restored]
    return restored


def test_a_claimed_tag_comes_back_only_after_its_worker_is_gone_for_three_passes(broker) -> None:
    client, channel = broker
    clock = Clock()
    r = recovery.Recoverer(clock=clock)
    deliver(client, "t1")
    beat(client, "NORTH@h:1-a", ["t1"])
    assert passes(r, clock, client, channel, 10) == []  # a live holder: never
    client.delete(recovery.WORKER_KEY + "NORTH@h:1-a")  # its heartbeat expired
    assert passes(r, clock, client, channel, 2) == []
    assert passes(r, clock, client, channel, 1) == ["t1"]
    assert client.llen("site.NORTH") == 1 and not client.hexists(recovery.UNACKED, "t1")


def test_a_never_claimed_tag_waits_for_a_silent_worker_to_speak(broker) -> None:
    client, channel = broker
    clock = Clock()
    r = recovery.Recoverer(clock=clock)
    beat(client, "NORTH@h:1-a", [])  # stalled just after receiving t2: its last beat predates it
    deliver(client, "t2")
    assert passes(r, clock, client, channel, 10) == []
    beat(client, "NORTH@h:1-a", [])  # it speaks again, and does not hold t2
    assert passes(r, clock, client, channel, 1) == ["t2"]


def test_a_worker_whose_heartbeat_connection_vanished_is_dead_before_its_key_expires(broker) -> None:
    client, channel = broker
    clock = Clock()
    r = recovery.Recoverer(clock=clock)
    worker = "NORTH@h:2-b"
    hb = redis.Redis.from_url(URL, client_name=recovery.connection_name(worker))
    hb.ping()
    deliver(client, "t3")
    beat(client, worker, ["t3"])
    assert passes(r, clock, client, channel, 5) == []  # connected: alive
    hb.close()  # the process died: the kernel closed its socket; the key lingers
    restored = passes(r, clock, client, channel, 6)
    assert restored == ["t3"]
