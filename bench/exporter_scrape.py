"""Exporter scrape time with many sites, against the raw broker reads it cannot avoid.

Builds a registry of N sites (default 100), fills every site queue with a few messages,
then times (a) the anchor: one pipelined LLEN + LINDEX per queue on the raw broker, and
(b) a full scrape of the siteops collector (queues, unacked, heartbeats, beat, dead
letters from SQLite), in one run. Prints both and their ratio; the issue's goal is a
scrape under 100 ms with 100 sites.

    python bench/exporter_scrape.py [--sites 100] [--scrapes 50]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--scrapes", type=int, default=50)
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="siteops-bench-"))
    os.environ.update(SITEOPS_VAR_DIR=str(tmp), SITEOPS_DATABASE_URL=f"sqlite:///{tmp / 'store.db'}")

    import redis
    from prometheus_client import generate_latest

    from siteops.config.queues import queue_names
    from siteops.config.sites import parse_registry
    from siteops.observability.exporter import build_registry
    from siteops.sim.embedded import RedisServer, free_port
    from siteops.store import upgrade

    upgrade()
    codes = [f"S{i:03d}" for i in range(opts.sites)]
    registry = parse_registry({
        "policy": {"defaults": {"x": 1}},
        "sites": {c: {"responsible": ["ops"]} for c in codes},
    }, tmp / "sites.toml")
    server = RedisServer(port=free_port(), data_dir=tmp / "redis").start()
    try:
        client = redis.Redis(port=server.port)
        message = json.dumps({"headers": {"siteops_published_at": time.time()}, "body": ""})
        for q in queue_names(codes):
            client.lpush(q, *[message] * 5)
        queues = queue_names(codes)

        def raw() -> None:
            pipe = client.pipeline(transaction=False)
            for q in queues:
                pipe.llen(q)
                pipe.lindex(q, -1)
            pipe.execute()

        reg = build_registry(registry, client)

        def scrape() -> None:
            generate_latest(reg)

        def timed(fn) -> float:
            samples = []
            for _ in range(opts.scrapes):
                t0 = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - t0)
            return statistics.median(samples)

        timed(scrape)  # warm up (engine, connection pool)
        anchor, full = timed(raw), timed(scrape)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{opts.sites} sites ({len(queues)} queues), median of {opts.scrapes}")
    print(f"  raw broker reads (anchor): {anchor * 1000:6.1f} ms")
    print(f"  full exporter scrape     : {full * 1000:6.1f} ms  (goal < 100 ms)")
    print(f"  ratio                    : {full / anchor:.1f}x the raw reads")


if __name__ == "__main__":
    main()
