"""The exporter at scale: unacked messages read once each, and no Flower series re-exported."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import redis

from siteops.config.sites import load_registry
from siteops.observability.exporter import SiteopsCollector, WorkerFilesCollector
from tests.conftest import REDIS_PORT, ROOT

pytestmark = pytest.mark.integration


def unacked_by_queue(collector: SiteopsCollector) -> dict[str, float]:
    family = next(m for m in collector.collect() if m.name == "siteops_queue_unacked_messages")
    return {s.labels["queue"]: s.value for s in family.samples if s.value}


def test_unacked_counts_follow_the_broker_and_each_message_is_read_once(redis_server: object,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from siteops.observability import unacked

    monkeypatch.setattr(unacked, "CHUNK", 8)  # several chunks of remembered messages
    client = redis.Redis(port=REDIS_PORT, db=5)
    client.flushdb()
    collector = SiteopsCollector(load_registry(ROOT / "sites.toml"), client, store=False)
    clock = iter(range(1, 10_000))

    def hold(tag: str, queue: str) -> None:  # what kombu's Redis transport writes when it delivers
        client.zadd("unacked_index", {tag: 1_700_000_000 + next(clock) / 10})
        client.hset("unacked", tag, json.dumps([{"body": "x" * 500, "headers": {}}, "", queue]))

    def ack(*tags: str) -> None:
        client.zrem("unacked_index", *tags)
        client.hdel("unacked", *tags)

    for i in range(30):
        hold(f"n{i}", "site.NORTH")
    hold("c0", "site.CW")
    assert unacked_by_queue(collector) == {"site.NORTH": 30, "site.CW": 1}
    fetched: list[int] = []
    real_hmget = client.hmget
    monkeypatch.setattr(client, "hmget", lambda key, tags: fetched.append(len(tags)) or real_hmget(key, tags))
    # Some acked (in two chunks), new ones arrive: only the 2 new messages are read.
    ack(*[f"n{i}" for i in (0, 1, 2, 20, 21)])
    hold("p0", "platform")
    hold("c1", "site.CW")
    assert unacked_by_queue(collector) == {"site.NORTH": 25, "site.CW": 2, "platform": 1}
    assert fetched == [2]
    assert unacked_by_queue(collector) == {"site.NORTH": 25, "site.CW": 2, "platform": 1}
    assert fetched == [2]  # nothing new: nothing read
    # A message the index holds at an older time than any known (a clock stepped back) is
    # found by the count check within two scrapes.
    client.zadd("unacked_index", {"late": 1_600_000_000})
    client.hset("unacked", "late", json.dumps([{}, "", "site.WEB"]))
    unacked_by_queue(collector)
    assert unacked_by_queue(collector) == {"site.NORTH": 25, "site.CW": 2, "platform": 1, "site.WEB": 1}
    ack(*[f"n{i}" for i in range(30)], "c0", "c1", "p0", "late")
    assert unacked_by_queue(collector) == {}
    client.flushdb()


def test_flower_series_are_not_re_exported(tmp_path: Path) -> None:
    """A Flower that writes to the multiprocess folder would otherwise appear twice in Prometheus."""
    script = textwrap.dedent("""
        from prometheus_client import Counter
        Counter("flower_events_total", "flower's", ["type"]).labels("task-succeeded").inc(3)
        Counter("siteops_tasks_total", "ours", ["task"]).labels("ping").inc(2)
    """)
    subprocess.run([sys.executable, "-c", script], env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}, check=True)
    names = {m.name for m in WorkerFilesCollector(tmp_path).collect()}
    assert "siteops_tasks" in names and not any(n.startswith("flower_") for n in names), names
