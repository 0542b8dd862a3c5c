"""Lost-work recovery: siteops puts back the messages of workers that died whole.

Why: with late acks on Redis, a message being run sits in kombu's ``unacked`` hash. When
a pool process dies, Celery requeues it at once (``reject_on_worker_lost``). When the
*whole* worker dies (OOM killer, host lost) nobody does: Redis would only hand it out
again after the visibility timeout, which must stay longer than the longest task
(celery-here.md §5). So:

1. every worker's main process publishes a heartbeat every `HEARTBEAT_INTERVAL` seconds,
   on its OWN Redis connection with socket timeouts (a hung broker client cannot stall
   it): a key ``siteops:worker:<nodename>:<pid>-<token>`` expiring after `HEARTBEAT_TTL`,
   listing the delivery tags it holds (reserved, running, waiting for an ETA) and the
   pids of its pool processes (so `holder_alive` can tell an operation's holder is gone);
2. the platform worker's housekeeping runs a `Recoverer` pass every `RECOVERY_EVERY`
   seconds. It remembers which worker held each unacked tag, and puts a message back on
   its queue only once the tag has been seen unclaimed — no live heartbeat lists it and
   its last known holder has no live heartbeat — on `RECOVERY_PASSES` consecutive passes
   spanning at least `MIN_UNCLAIMED_SECONDS` of the recoverer's OWN monotonic clock. A tag
   no heartbeat ever listed (its worker died, or stalled, before its next heartbeat) also
   waits until every live worker serving its queue has published a new heartbeat without
   it: a stalled worker that has not spoken since could still be its holder.
   Nothing is judged from kombu's ``unacked_index`` score (the consuming host's clock).

A worker counts as gone when its heartbeat key expired, or — faster — when its heartbeat
*connection* (named ``siteops-hb:<worker>``, seen in CLIENT LIST) has disappeared on
`RECOVERY_PASSES` consecutive passes. The kernel closes a killed process's sockets, so a
process that died (OOM killer, SIGKILL, crash) is seen within seconds; a process that is
merely stalled (SIGSTOP, swap, GC, a frozen cgroup) keeps its socket open and is judged by
the key alone. The connection evidence is used only for workers whose connection this
recoverer has seen at least once (a proxy in front of Redis, or an ACL without CLIENT
LIST, leaves only the key).

The trade-off, in numbers (RECOVERY_EVERY = 5 s, RECOVERY_PASSES = 3, TTL = 60 s):
- a stalled main process is tolerated for `HEARTBEAT_TTL - HEARTBEAT_INTERVAL` = 58 s
  (plus the ~10 s of passes) before its messages count as lost: a 45 s SIGSTOP is safe;
- a worker process that died whole has its work put back 10-15 s after its death;
- a whole host that vanished (no FIN, the connection lingers) after at most
  ``HEARTBEAT_TTL + RECOVERY_PASSES * RECOVERY_EVERY`` = 75 s (plus one pass).
Should a stall outlast the TTL, the redelivered copy still cannot repeat an effect its
holder is running: the operation's lease (store.operations) is renewed by the pool process
itself, which a stalled main process does not stop.
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

from siteops.store import operations

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 2.0
#: Long enough that a main process stalled for 45 s is not taken for dead (58 s of
#: tolerance), short enough that a dead worker's work resumes within 90 s (<= 80 s).
HEARTBEAT_TTL = 60
#: The heartbeat's own connection gives up after this (connect and each command), so a
#: hung socket costs one missed beat, not the heartbeat.
HEARTBEAT_SOCKET_TIMEOUT = 3.0
RECOVERY_EVERY = 5.0
RECOVERY_PASSES = 3
MIN_UNCLAIMED_SECONDS = (RECOVERY_PASSES - 1) * RECOVERY_EVERY
WORKER_KEY = "siteops:worker:"
HOLDERS_KEY = "siteops:holders"
RECOVERY_STATUS_KEY = "siteops:recovery:status"
RESTORING_KEY = "siteops:recovery:restoring:"
UNACKED = "unacked"
UNACKED_INDEX = "unacked_index"

# This worker instance's heartbeat name, set in the main process before the pool forks
# (so pool processes inherit it and can name their worker as an operation's holder).
_instance: str | None = None


@signals.celeryd_init.connect
def _name_instance(sender: Any = None, **_: Any) -> None:
    global _instance
    # Node name, pid *and* a token of this start: a restarted worker keeps its node name
    # (and, in a container, often its pid) and must not vouch for its predecessor's work.
    _instance = f"{sender}:{os.getpid()}-{uuid.uuid4().hex[:8]}"


def current_instance() -> str | None:
    return _instance


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


def _pool_pids(consumer: Any) -> list[int]:
    """The processes that may run this worker's tasks (the main process for solo/threads)."""
    procs = getattr(getattr(getattr(consumer, "pool", None), "_pool", None), "_pool", None)
    pids = [os.getpid()]
    with contextlib.suppress(Exception):
        pids += [int(p.pid) for p in list(procs or []) if p.pid]
    return pids


def heartbeat_client(url: str, name: str | None = None) -> redis.Redis:
    """A client of its own (not the broker's pool), with timeouts. `name`: the connection's
    CLIENT SETNAME, by which the recoverer sees that the worker's process still exists."""
    return redis.Redis.from_url(url, socket_timeout=HEARTBEAT_SOCKET_TIMEOUT,
                                socket_connect_timeout=HEARTBEAT_SOCKET_TIMEOUT, socket_keepalive=True,
                                client_name=name)


def connection_name(worker: str) -> str:
    return f"siteops-hb:{worker}"


class Heartbeat(threading.Thread):
    def __init__(self, consumer: Any, url: str) -> None:
        super().__init__(name="siteops-heartbeat", daemon=True)
        self.consumer = consumer
        name = _instance or f"{consumer.hostname}:{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.key = f"{WORKER_KEY}{name}"
        self.client = heartbeat_client(url, connection_name(name))
        self.stopping = threading.Event()

    def queues(self) -> list[str]:
        consumer = getattr(self.consumer, "task_consumer", None)
        return sorted(q.name for q in getattr(consumer, "queues", None) or [])

    def beat(self) -> None:
        ts = time.time()
        payload = json.dumps({"ts": ts, "pid": os.getpid(), "queues": self.queues(),
                              "tags": _held_tags(self.consumer), "pids": _pool_pids(self.consumer)})
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
    _heartbeat = Heartbeat(sender, url)
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


# --- is an operation's holder alive? (asked by store.operations) ----------------------

_probe_client: redis.Redis | None = None
_probe_pid = 0


def holder_alive(client: redis.Redis, holder: operations.Holder) -> bool | None:
    """True: its worker's heartbeat lists its process. False: a heartbeat published after
    the holder took the operation does not (the process is gone). None: no heartbeat (the
    main process may be stalled, or the worker dead): the operation's lease decides."""
    if not holder.worker:
        return None
    raw = client.get(WORKER_KEY + holder.worker)
    if raw is None:
        return None
    beat = json.loads(raw)
    if holder.pid in beat.get("pids", []):
        return True
    # Same host, same clock: the heartbeat was written after the holder started.
    return False if float(beat.get("ts", 0)) > holder.since else None


def _probe(holder: operations.Holder) -> bool | None:
    global _probe_client, _probe_pid
    if _probe_client is None or _probe_pid != os.getpid():
        from siteops.config.settings import get_settings

        url = get_settings().broker_url
        if not _is_redis(url):
            return None
        _probe_client, _probe_pid = heartbeat_client(url), os.getpid()
    return holder_alive(_probe_client, holder)


operations.configure_holders(identity=current_instance, probe=_probe)


# --- the recoverer --------------------------------------------------------------------


@dataclass
class RecoveryReport:
    live_workers: list[str] = field(default_factory=list)
    restored: list[dict[str, str]] = field(default_factory=list)
    dead_workers: list[str] = field(default_factory=list)
    watching: int = 0  # unclaimed tags not (yet) put back


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


class Recoverer:
    """Puts back unacked messages whose worker is gone; keeps its evidence between passes.

    One lives in each platform worker's housekeeping (two platform workers each judge on
    their own clock; the put-back itself is claimed, so a message comes back once).
    """

    def __init__(self, *, passes: int = RECOVERY_PASSES, min_unclaimed: float = MIN_UNCLAIMED_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.passes = passes
        self.min_unclaimed = min_unclaimed
        self.clock = clock
        # tag -> (consecutive passes seen unclaimed, when first seen so on our clock, and
        # for a never-claimed tag the heartbeat (its ts, as a version) of each live worker
        # serving its queue at that moment)
        self.unclaimed: dict[str, tuple[int, float, dict[str, Any]]] = {}
        # worker -> (consecutive passes its heartbeat connection was missing, since when)
        self.disconnected: dict[str, tuple[int, float]] = {}
        self.connected_once: set[str] = set()
        self.client_list_works = True

    def _gone_by_connection(self, client: redis.Redis, workers: dict[str, Any], now: float) -> set[str]:
        """Workers with a heartbeat key whose process is nevertheless gone (its connection is)."""
        if not self.client_list_works:
            return set()
        try:
            names = {str(c.get("name") or "") for c in client.client_list()}
        except redis.ResponseError as exc:  # ACL or a proxy: rely on the key's TTL
            log.warning("CLIENT LIST refused (%s); dead workers are seen when their heartbeat expires", exc)
            self.client_list_works = False
            return set()
        gone: set[str] = set()
        for name in workers:
            if connection_name(name) in names:
                self.connected_once.add(name)
                self.disconnected.pop(name, None)
                continue
            if name not in self.connected_once:
                continue
            seen, since = self.disconnected.get(name, (0, now))
            self.disconnected[name] = (seen + 1, since)
            if seen + 1 >= self.passes and now - since >= self.min_unclaimed:
                gone.add(name)
        for name in [n for n in self.disconnected if n not in workers]:
            del self.disconnected[name]
        self.connected_once &= set(workers)
        return gone

    def run(self, client: redis.Redis, channel: Any, *, on_lost: LostCallback | None = None) -> RecoveryReport:
        """One pass. `channel`: a kombu Redis channel. `on_lost(task info, worker, delivered_at)`
        is called for each message put back (siteops records the lost run there)."""
        now = self.clock()
        workers = live_workers(client)
        for name in self._gone_by_connection(client, workers, now):
            log.warning("worker %s: heartbeat connection gone for %d passes; counting it dead", name, self.passes)
            del workers[name]
        report = RecoveryReport(live_workers=sorted(workers))
        claimed: dict[str, str] = {}
        for name, beat in workers.items():
            for tag in beat.get("tags", []):
                claimed[tag] = name
        if claimed:
            client.hset(HOLDERS_KEY, mapping=dict(claimed))  # type: ignore[arg-type]
        holders = {k.decode(): v.decode() for k, v in client.hgetall(HOLDERS_KEY).items()}
        unacked = {t.decode() for t in client.hkeys(UNACKED)}
        stale_holders = [tag for tag in holders if tag not in unacked]
        if stale_holders:
            client.hdel(HOLDERS_KEY, *stale_holders)
        for tag in [t for t in self.unclaimed if t not in unacked]:
            del self.unclaimed[tag]  # acked or put back meanwhile
        dead: set[str] = set()
        for tag in unacked:
            holder = holders.get(tag)
            if tag in claimed or (holder is not None and holder in workers):
                self.unclaimed.pop(tag, None)  # its worker is alive (it may be acking it right now)
                continue
            entry = self.unclaimed.get(tag)
            if entry is None:
                # Never claimed: its holder may be a live worker that received it just
                # before it stalled, and has not published it since. Remember the
                # heartbeat of every worker serving its queue as it is now.
                entry = (0, now, {} if holder else self._serving(client, tag, workers))
            seen, since, silent_since = entry
            seen += 1
            self.unclaimed[tag] = (seen, since, silent_since)
            # A worker that has not published a heartbeat since may still claim it.
            silent = [w for w, ts in silent_since.items() if w in workers and workers[w].get("ts") == ts]
            if seen < self.passes or now - since < self.min_unclaimed or silent:
                report.watching += 1
                continue
            if self._restore(client, channel, tag, holder, on_lost, report) and holder:
                dead.add(holder)
            del self.unclaimed[tag]
        report.dead_workers = sorted(dead)
        with contextlib.suppress(redis.RedisError):  # for operators (and tests): passes happen
            client.hset(RECOVERY_STATUS_KEY, mapping={"last_pass": time.time(), "watching": report.watching})
            client.hincrby(RECOVERY_STATUS_KEY, "passes", 1)
        return report

    @staticmethod
    def _serving(client: redis.Redis, tag: str, workers: dict[str, dict[str, Any]]) -> dict[str, Any]:
        queue = None
        with contextlib.suppress(Exception):
            queue = json.loads(client.hget(UNACKED, tag) or b"null")[2]
        return {name: beat.get("ts") for name, beat in workers.items()
                if queue is None or queue in beat.get("queues", [])}

    def _restore(self, client: redis.Redis, channel: Any, tag: str, holder: str | None,
                 on_lost: LostCallback | None, report: RecoveryReport) -> bool:
        # Two recoverers may decide at once: only one records and puts back.
        if not client.set(RESTORING_KEY + tag, holder or "?", nx=True, ex=60):
            return False
        raw = client.hget(UNACKED, tag)
        if raw is None:
            return False  # acked after all
        try:
            message, _exchange, routing_key = json.loads(raw)
        except (ValueError, TypeError):
            message, routing_key = {}, "?"
        delivered_at = client.zscore(UNACKED_INDEX, tag) or 0.0
        if on_lost is not None:
            try:
                on_lost(describe(message), holder, float(delivered_at))
            except Exception:  # recording must never keep work from coming back
                log.exception("could not record the lost run of message %s", tag)
        channel.qos.restore_by_tag(tag)
        client.hdel(HOLDERS_KEY, tag)
        report.restored.append({"tag": tag, "queue": str(routing_key), "worker": holder or "?"})
        log.warning("put back message %s on %s (worker %s is gone)", tag, routing_key, holder or "unknown")
        return True


def recover(client: redis.Redis, channel: Any, *, on_lost: LostCallback | None = None,
            passes: int = RECOVERY_PASSES, every: float = RECOVERY_EVERY) -> RecoveryReport:
    """Recovery on demand: `passes` passes `every` seconds apart (the evidence needs time)."""
    recoverer = Recoverer(passes=passes, min_unclaimed=(passes - 1) * every)
    report = RecoveryReport()
    for i in range(passes):
        if i:
            time.sleep(every)
        one = recoverer.run(client, channel, on_lost=on_lost)
        report.restored += one.restored
        report.dead_workers = sorted(set(report.dead_workers) | set(one.dead_workers))
        report.live_workers, report.watching = one.live_workers, one.watching
    return report
