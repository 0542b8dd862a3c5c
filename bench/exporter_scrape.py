"""Exporter scrape time at 50 sites, against the raw broker reads it cannot avoid.

Builds a registry of N sites (default 50), fills every site queue with a few messages,
holds `--unacked` messages (default 50,000) in kombu's `unacked` hash and puts
`--scan-runs` rows (default 3.5 M: about 6 months at 50 sites) in the SQLite store, with
their `scan_freshness` rows. Then times, in one run:

- the anchor: one pipelined LLEN + LINDEX per queue on the raw broker;
- a full scrape of the siteops collector (queues, unacked, heartbeats, beat, dead
  letters, findings, freshness), after a first scrape that learns the unacked tags;
- for comparison, what the exporter used to do: HVALS + parse every unacked message, and a
  GROUP BY over all of `scan_runs` for freshness.

Prints the medians and the full scrape's ratio to the anchor; the goal is under 100 ms.

    python bench/exporter_scrape.py [--sites 50] [--unacked 50000] [--scan-runs 3500000] [--scrapes 30]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
KINDS = ("aging_transfers", "overdue_receipts", "stock_anomalies", "aging_backorders")


def fill_scan_runs(db: Path, codes: list[str], n: int) -> None:
    start = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)

    def rows() -> Iterator[tuple[object, ...]]:
        for i in range(n):
            when = (start + dt.timedelta(seconds=4 * i)).isoformat(sep=" ")
            yield (codes[i % len(codes)], KINDS[(i // len(codes)) % 4], "complete" if i % 50 else "failed",
                   when, when)

    with sqlite3.connect(db) as conn:
        # Faster without the indexes; they are rebuilt once at the end, as the migration made them.
        indexes = conn.execute("select name, sql from sqlite_master where type = 'index' and tbl_name = 'scan_runs' "
                               "and sql is not null").fetchall()
        for name, _sql in indexes:
            conn.execute(f"drop index {name}")
        conn.executemany("insert into scan_runs (site, kind, status, records_read, found, opened, resolved, "
                         "escalated, started_at, finished_at, duration_seconds) values (?, ?, ?, 100, 0, 0, 0, 0, "
                         "?, ?, 3.0)", rows())
        for _name, sql in indexes:
            conn.execute(sql)
        conn.execute("insert into scan_freshness (site, kind, finished_at) select site, kind, max(finished_at) "
                     "from scan_runs where status = 'complete' group by site, kind")


def timed(fn: Callable[[], object], n: int) -> float:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--unacked", type=int, default=50_000)
    parser.add_argument("--scan-runs", type=int, default=3_500_000)
    parser.add_argument("--scrapes", type=int, default=30)
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="siteops-bench-"))
    db = tmp / "store.db"
    os.environ.update(SITEOPS_VAR_DIR=str(tmp), SITEOPS_DATABASE_URL=f"sqlite:///{db}")

    import redis
    from prometheus_client import generate_latest

    from siteops.config.queues import queue_names
    from siteops.config.sites import parse_registry
    from siteops.observability.exporter import build_registry
    from siteops.sim.embedded import RedisServer, free_port
    from siteops.store import upgrade

    upgrade()
    codes = [f"S{i:03d}" for i in range(opts.sites)]
    t0 = time.perf_counter()
    fill_scan_runs(db, codes, opts.scan_runs)
    fill_s = time.perf_counter() - t0
    registry = parse_registry({
        "policy": {"defaults": {"x": 1}},
        "sites": {c: {"responsible": ["ops"]} for c in codes},
    }, tmp / "sites.toml")
    server = RedisServer(port=free_port(), data_dir=tmp / "redis").start()
    try:
        client = redis.Redis(port=server.port)
        message = json.dumps({"headers": {"siteops_published_at": time.time()}, "body": ""})
        queues = queue_names(codes)
        for q in queues:
            client.lpush(q, *[message] * 5)
        # kombu keeps [message, exchange, routing_key] per delivery tag; a real message is ~1.2 KB.
        body = {"body": "x" * 800, "headers": {"id": "0" * 36, "task": "siteops.scan.aging_transfers"},
                "properties": {"delivery_tag": "0" * 36}}
        pipe = client.pipeline(transaction=False)
        delivered = time.time() - opts.unacked / 100
        for i in range(opts.unacked):
            pipe.zadd("unacked_index", {f"{i:036d}": delivered + i / 100})
            pipe.hset("unacked", f"{i:036d}", json.dumps([body, "", queues[i % len(queues)]]))
            if i % 5000 == 4999:
                pipe.execute()
        pipe.execute()

        def raw() -> None:
            pipe = client.pipeline(transaction=False)
            for q in queues:
                pipe.llen(q)
                pipe.lindex(q, -1)
            pipe.execute()

        reg = build_registry(registry, client)
        t0 = time.perf_counter()
        generate_latest(reg)  # the first scrape learns every unacked tag's queue
        first = time.perf_counter() - t0

        def old_unacked() -> None:
            for raw_msg in client.hvals("unacked"):
                json.loads(raw_msg)[2]

        def old_freshness() -> None:
            with sqlite3.connect(db) as conn:
                conn.execute("select site, kind, max(finished_at) from scan_runs where status = 'complete' "
                             "group by site, kind").fetchall()

        anchor = timed(raw, opts.scrapes)
        full = timed(lambda: generate_latest(reg), opts.scrapes)
        tags = iter(range(opts.unacked, 10 * opts.unacked))

        def churn_then_scrape() -> None:
            """Between two scrapes, 100 messages are acked and 100 new ones delivered."""
            pipe = client.pipeline(transaction=False)
            for _ in range(100):
                old, new = f"{next(tags) - opts.unacked:036d}", f"{next(tags):036d}"
                pipe.zrem("unacked_index", old).hdel("unacked", old)
                pipe.zadd("unacked_index", {new: time.time()})
                pipe.hset("unacked", new, json.dumps([body, "", queues[0]]))
            pipe.execute()
            generate_latest(reg)

        churn = timed(churn_then_scrape, opts.scrapes)
        old_u = timed(old_unacked, max(3, opts.scrapes // 10))
        old_f = timed(old_freshness, max(3, opts.scrapes // 10))
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{opts.sites} sites ({len(queues)} queues), {opts.unacked:,} unacked messages, "
          f"{opts.scan_runs:,} scan runs (filled in {fill_s:.0f} s); median of {opts.scrapes}")
    print(f"  raw broker reads (anchor)      : {anchor * 1000:7.1f} ms")
    print(f"  full exporter scrape           : {full * 1000:7.1f} ms  (goal < 100 ms; "
          f"{full / anchor:.1f}x the anchor)")
    print(f"  scrape after 100 acks + 100 new: {churn * 1000:7.1f} ms  (includes writing them)")
    print(f"  first scrape (learns the tags) : {first * 1000:7.1f} ms")
    print(f"  before: parse every unacked    : {old_u * 1000:7.1f} ms")
    print(f"  before: GROUP BY scan_runs     : {old_f * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
