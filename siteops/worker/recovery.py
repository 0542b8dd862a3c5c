"""Lost-work recovery: siteops puts back the messages of workers that died whole.

Why: with late acks on Redis, a message being run sits in kombu's ``unacked`` hash. When
a pool process dies, Celery requeues it at once (``reject_on_worker_lost``). When the
*whole* worker dies (OOM killer, host lost) nobody does: Redis would only hand it out
again after the visibility timeout, which must stay longer than the longest task
(celery-here.md §5). So:

1. every worker's main process publishes a heartbeat every `HEARTBEAT_INTERVAL` seconds:
   a key ``siteops:worker:<nodename>:<pid>-<token>`` (expiring after `HEARTBEAT_TTL`) listing the
   delivery tags it holds: reserved, running, or waiting for an ETA;
2. `recover` (the task ``siteops.ops.recover_lost`` on the ``platform`` queue, run by beat
   every few seconds) remembers which worker held each unacked tag, and puts a message
   back on its queue when that worker's heartbeat is gone. A tag no live worker has ever
   claimed, older than a few heartbeats, is put back too (its worker died before telling).

Redelivered work is safe because these tasks keep the idempotency contract.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from celery import signals

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 2.0
HEARTBEAT_TTL = 10
# A tag must be at least this old before an unclaimed one counts as lost: long enough
# for a live holder to have published it in a heartbeat (with a margin for clock skew).
MIN_AGE = HEARTBEAT_TTL + 3 * HEARTBEAT_INTERVAL
WORKER_KEY = "siteops:worker:"
HOLDERS_KEY = "siteops:holders"
UNACKED = "unacked"
UNACKED_INDEX = "unacked_index"


def _held_tags(consumer: Any) -> list[str]:
    from celery.worker import state
    from celery.worker.request import Request

    requests: set[Any] = set()
    for group in (state.reserved_requests, state.active_requests, state.scheduled_requests):
        for _ in range(3):  # the main thread may change the set while we copy it
            try:
                requests.update(list(group))
                break
            except RuntimeError:
                continue
    # ETA/countdown requests wait in the consumer's timer (held unacked in memory).
    timer = getattr(consumer, "timer", None)
    schedule = getattr(timer, "schedule", None)
    for entry in list(getattr(schedule, "queue", []) or []):
        args = getattr(getattr(entry, "entry", None), "args", None) or ()
        if args and isinstance(args[0], Request):
            requests.add(args[0])
    tags = []
    for req in requests:
        message = getattr(req, "message", None)
        tag = getattr(message, "delivery_tag", None)
        if tag:
            tags.append(str(tag))
    return tags


class Heartbeat(threading.Thread):
    def __init__(self, consumer: Any, client: redis.Redis) -> None:
        super().__init__(name="siteops-heartbeat", daemon=True)
        self.consumer = consumer
        self.client = client
        # Keyed by node name, pid *and* a token of this start: a restarted worker keeps its
        # node name (and, in a container, often its pid) and must not vouch for the
        # messages its dead predecessor held.
        self.key = f"{WORKER_KEY}{consumer.hostname}:{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.stopping = threading.Event()

    def queues(self) -> list[str]:
        consumer = getattr(self.consumer, "task_consumer", None)
        return sorted(q.name for q in getattr(consumer, "queues", None) or [])

    def beat(self) -> None:
        ts = time.time()
        payload = json.dumps({"ts": ts, "pid": os.getpid(), "queues": self.queues(),
                              "tags": _held_tags(self.consumer)})
        self.client.set(self.key, payload, ex=HEARTBEAT_TTL)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.beat()
            except Exception as exc:  # a broker blip must not kill the heartbeat
                log.warning("heartbeat not published: %s", exc)
            self.stopping.wait(HEARTBEAT_INTERVAL)


_heartbeat: Heartbeat | None = None


def _is_redis(url: str) -> bool:
    return url.startswith(("redis://", "rediss://", "redis+socket://", "unix://"))


@signals.worker_ready.connect
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    global _heartbeat
    url = sender.app.conf.broker_url
    if not _is_redis(url):
        return  # AMQP brokers redeliver on connection loss themselves
    _heartbeat = Heartbeat(sender, redis.Redis.from_url(url))
    _heartbeat.start()


@signals.worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    # Only after the pool finished its last task: until then the worker still holds work.
    # A worker that stopped cleanly is gone at once (kombu put back what it had reserved).
    if _heartbeat is not None:
        _heartbeat.stopping.set()
        _heartbeat.join(5)
        with contextlib.suppress(redis.RedisError):  # else it expires by itself
            _heartbeat.client.delete(_heartbeat.key)


@dataclass
class RecoveryReport:
    live_workers: list[str] = field(default_factory=list)
    restored: list[dict[str, str]] = field(default_factory=list)
    dead_workers: list[str] = field(default_factory=list)


def node_of(worker: str) -> str:
    """``NORTH@host:1234-ab12cd34`` -> ``NORTH@host`` (the Celery node name)."""
    return worker.rsplit(":", 1)[0]


def live_workers(client: redis.Redis) -> dict[str, dict[str, Any]]:
    """Workers with a fresh heartbeat, as ``<nodename>:<pid>-<token>`` -> heartbeat."""
    workers: dict[str, dict[str, Any]] = {}
    for key in client.scan_iter(match=WORKER_KEY + "*", count=500):
        raw = client.get(key)
        if raw:
            name = key.decode()[len(WORKER_KEY):]
            workers[name] = json.loads(raw)
    return workers


def describe(message: dict[str, Any]) -> dict[str, Any]:
    """Task id, name, retries, args and kwargs of a kombu Redis message (Celery protocol 2)."""
    headers = message.get("headers") or {}
    info: dict[str, Any] = {"task_id": headers.get("id"), "task_name": headers.get("task"),
                            "retries": int(headers.get("retries") or 0), "args": [], "kwargs": {}}
    try:
        body = message.get("body", "")
        if (message.get("properties") or {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args, kwargs, _embed = json.loads(body)
        info["args"], info["kwargs"] = list(args), dict(kwargs)
    except (ValueError, TypeError):
        pass  # not ours to understand; it is put back all the same
    return info


LostCallback = Callable[[dict[str, Any], str | None, float], None]


def recover(client: redis.Redis, channel: Any, *, now: float | None = None,
            min_age: float = MIN_AGE, on_lost: LostCallback | None = None) -> RecoveryReport:
    """Put back the unacked messages whose worker is gone. `channel`: a kombu Redis channel.

    `on_lost(task info, worker, delivered_at)` is called before each message is put back
    (siteops records the lost run in the audit trail there).
    """
    now = time.time() if now is None else now
    workers = live_workers(client)
    report = RecoveryReport(live_workers=sorted(workers))
    claimed: dict[str, str] = {}
    for name, beat in workers.items():
        for tag in beat.get("tags", []):
            claimed[tag] = name
    if claimed:
        client.hset(HOLDERS_KEY, mapping=dict(claimed))  # type: ignore[arg-type]
    holders = {k.decode(): v.decode() for k, v in client.hgetall(HOLDERS_KEY).items()}
    unacked = {
        tag.decode(): score
        for tag, score in client.zrange(UNACKED_INDEX, 0, -1, withscores=True)
    }
    stale_holders = [tag for tag in holders if tag not in unacked]
    if stale_holders:
        client.hdel(HOLDERS_KEY, *stale_holders)
    dead: set[str] = set()
    for tag, delivered_at in unacked.items():
        if tag in claimed or now - delivered_at < min_age:
            continue
        holder = holders.get(tag)
        if holder is not None and holder in workers:
            continue  # its worker is alive (it may be acking it right now)
        raw = client.hget(UNACKED, tag)
        if raw is None:
            continue
        try:
            message, _exchange, routing_key = json.loads(raw)
        except (ValueError, TypeError):
            message, routing_key = {}, "?"
        if on_lost is not None:
            try:
                on_lost(describe(message), holder, delivered_at)
            except Exception:  # recording must never keep work from coming back
                log.exception("could not record the lost run of message %s", tag)
        channel.qos.restore_by_tag(tag)
        client.hdel(HOLDERS_KEY, tag)
        if holder:
            dead.add(holder)
        report.restored.append({"tag": tag, "queue": str(routing_key), "worker": holder or "?"})
        log.warning("put back message %s on %s (worker %s is gone)", tag, routing_key, holder or "unknown")
    report.dead_workers = sorted(dead)
    return report
