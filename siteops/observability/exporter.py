"""`siteops exporter`: the Prometheus endpoint an operator scrapes.

Computed on each scrape, from the sources of truth rather than from events (which can
be dropped): queue depth, the age of the oldest waiting message and the unacked count
straight from Redis, for every declared queue whether or not anything consumes it;
live workers from their heartbeats; dead letters and findings from the store; beat's
tick; and the task and connector metrics that pool processes write to
PROMETHEUS_MULTIPROC_DIR, summed across processes.

A scrape stays cheap at 50 sites (bench/exporter_scrape.py): unacked messages are read
once each (observability/unacked.py: a scrape asks for the new ones and counts the rest
by time ranges, instead of fetching 50,000 message bodies), freshness comes from the small
`scan_freshness` table, and the store's reads are on indexes. Flower's own `flower_*`
series are left to Flower's /metrics: they are never re-exported here.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from siteops.config.queues import PLATFORM_QUEUE, SITE_QUEUE_PREFIX, queue_names
from siteops.config.sites import Registry
from siteops.observability.unacked import UnackedTracker
from siteops.schedules.beat import BEAT_TICK_KEY
from siteops.worker.recovery import WORKER_KEY

log = logging.getLogger(__name__)


def site_of_queue(queue: str) -> str:
    """The `site` label of a queue: its site code, or "platform" (as in siteops_workers_alive)."""
    return queue[len(SITE_QUEUE_PREFIX):] if queue.startswith(SITE_QUEUE_PREFIX) else PLATFORM_QUEUE


def _published_at(raw: bytes | None) -> float | None:
    if not raw:
        return None
    try:
        stamp = json.loads(raw).get("headers", {}).get("siteops_published_at")
        return float(stamp) if stamp is not None else None
    except (ValueError, TypeError, AttributeError):
        return None


class SiteopsCollector(Collector):
    def __init__(self, registry: Registry, client: redis.Redis, store: bool = True) -> None:
        self.registry = registry
        self.client = client
        self.store = store
        self.queues = queue_names(registry.codes)
        self.unacked = UnackedTracker(client)

    def collect(self) -> Iterator[Metric]:
        yield from self._broker()
        if self.store:
            yield from self._store()

    def _broker(self) -> Iterator[Metric]:
        now = time.time()
        depth = GaugeMetricFamily("siteops_queue_messages", "Messages waiting in the queue.", labels=["queue", "site"])
        age = GaugeMetricFamily("siteops_queue_oldest_message_age_seconds",
                                "Age of the oldest waiting message (0 when empty).", labels=["queue", "site"])
        unacked = GaugeMetricFamily("siteops_queue_unacked_messages",
                                    "Messages handed to a worker and not yet acknowledged.", labels=["queue", "site"])
        alive = GaugeMetricFamily("siteops_workers_alive", "Workers with a fresh heartbeat serving the site.",
                                  labels=["site"])
        beat = GaugeMetricFamily("siteops_beat_last_tick_timestamp_seconds", "When beat last ticked (unix time).")
        up = GaugeMetricFamily("siteops_broker_up", "1 when the broker answered this scrape.")
        try:
            pipe = self.client.pipeline(transaction=False)
            for q in self.queues:
                pipe.llen(q)
                pipe.lindex(q, -1)  # kombu LPUSHes and BRPOPs: the oldest is at the right end
            pipe.get(BEAT_TICK_KEY)
            replies = pipe.execute()
            heartbeats = [self.client.get(k) for k in self.client.scan_iter(match=WORKER_KEY + "*", count=1000)]
        except redis.RedisError as exc:
            log.warning("broker not reachable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        try:
            held = self.unacked.by_queue()
        except redis.RedisError as exc:
            log.warning("broker not reachable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for i, q in enumerate(self.queues):
            n, oldest = replies[2 * i], _published_at(replies[2 * i + 1])
            labels = [q, site_of_queue(q)]
            depth.add_metric(labels, n)
            age.add_metric(labels, max(0.0, now - oldest) if n and oldest else 0.0)
            unacked.add_metric(labels, held.get(q, 0))
        serving: Counter[str] = Counter()
        for raw in heartbeats:
            if raw:
                for q in json.loads(raw).get("queues", []):
                    serving[site_of_queue(q)] += 1
        for site in [*self.registry.codes, PLATFORM_QUEUE]:
            alive.add_metric([site], serving.get(site, 0))
        tick = replies[-1]
        if tick:
            beat.add_metric([], float(tick))
            yield beat
        yield from (depth, age, unacked, alive, up)

    def _store(self) -> Iterator[Metric]:
        from sqlalchemy import func, select

        from siteops.store.db import get_engine
        from siteops.store.models import DeadLetter

        dead = GaugeMetricFamily("siteops_dead_letters", "Dead letters waiting for a decision (not replayed).",
                                 labels=["site", "task"])
        try:
            with get_engine().connect() as conn:
                rows = conn.execute(
                    select(DeadLetter.site, DeadLetter.task_name, func.count())
                    .where(DeadLetter.replayed_at.is_(None)).group_by(DeadLetter.site, DeadLetter.task_name)
                ).all()
        except Exception as exc:  # the store being down must not blank the broker metrics
            log.warning("store not reachable: %s", exc)
            return
        for site, task, n in rows:
            dead.add_metric([site or "", task], n)
        yield dead
        yield from self._findings()
        yield from self._approvals()

    def _findings(self) -> Iterator[Metric]:
        from siteops.rules.findings import KINDS
        from siteops.store import findings, upkeep

        open_ = GaugeMetricFamily("siteops_findings_open", "Open or acknowledged findings.", labels=["site", "kind"])
        fresh = GaugeMetricFamily("siteops_scan_last_success_timestamp_seconds",
                                  "When the last complete scan of this kind finished at this site (unix time).",
                                  labels=["site", "kind"])
        counts = {(site, kind): n for site, kind, n in findings.open_counts()}
        for code in self.registry.codes:
            for kind in KINDS:  # zeros too: "no findings" is a value, not an absence
                open_.add_metric([code, kind], counts.get((code, kind), 0))
        for site, kind, when in upkeep.last_success():
            fresh.add_metric([site, kind], when.timestamp())
        yield open_
        yield fresh


    def _approvals(self) -> Iterator[Metric]:
        from siteops.store import approvals

        numbers = approvals.stats()
        pending = GaugeMetricFamily("siteops_approvals_pending", "Approval tiers pending a decision.",
                                    labels=["site", "group"])
        oldest = GaugeMetricFamily("siteops_approvals_oldest_pending_age_seconds",
                                   "Age of the site's oldest pending approval request.", labels=["site"])
        escalations = GaugeMetricFamily("siteops_approvals_escalations", "Approval tiers escalated (all time).",
                                        labels=["site"])
        refusals = GaugeMetricFamily("siteops_approvals_sod_refusals",
                                     "Decisions refused by segregation of duties (all time).", labels=["site"])
        cycle = GaugeMetricFamily("siteops_approvals_cycle_seconds", "Mean time from request to decision.",
                                  labels=["site"])
        for row in numbers["pending"]:
            pending.add_metric([row["site"], row["group"]], row["count"])
        for code in self.registry.codes:  # zeros too: "nothing waiting" is a value
            oldest.add_metric([code], numbers["oldest_pending_seconds"].get(code, 0.0))
            escalations.add_metric([code], numbers["escalations"].get(code, 0))
            refusals.add_metric([code], numbers["sod_refusals"].get(code, 0))
            if code in numbers["cycle_seconds"]:
                cycle.add_metric([code], numbers["cycle_seconds"][code])
        yield from (pending, oldest, escalations, refusals, cycle)


def build_registry(registry: Registry, client: redis.Redis, *, store: bool = True) -> CollectorRegistry:
    reg = CollectorRegistry()
    reg.register(SiteopsCollector(registry, client, store=store))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        reg.register(WorkerFilesCollector(Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])))
    return reg


class WorkerFilesCollector(Collector):
    """The metrics pool processes wrote, summed: the folder and its sub-folders.

    prometheus_client names its files by pid, and pids repeat across containers, so in
    compose each worker writes below its own sub-folder of a shared volume. A Flower
    started with the folder set would write its `flower_*` series there too: they are
    dropped (Flower's own /metrics has them; twice would double every Flower panel).
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.multiprocess import MultiProcessCollector

        files = sorted(str(p) for p in self.root.rglob("*.db"))
        return (m for m in MultiProcessCollector.merge(files, accumulate=True) if not m.name.startswith("flower_"))


def serve(port: int, address: str = "127.0.0.1") -> None:
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client import make_wsgi_app

    from siteops.config.settings import get_settings
    from siteops.config.sites import get_registry

    client = redis.Redis.from_url(get_settings().broker_url, socket_timeout=2, socket_connect_timeout=2)
    app = make_wsgi_app(build_registry(get_registry(), client))

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            log.debug(format, *args)

    httpd = make_server(address, port, app, handler_class=Quiet)
    log.info("siteops exporter on http://%s:%d/metrics", address, port)
    httpd.serve_forever()
