"""Per-site queues: a site's tasks run only on that site's worker; unknown sites are refused."""

from __future__ import annotations

import pickle
import subprocess
import sys
import uuid
from collections import Counter

import pytest

from tests.conftest import ROOT, poll

pytestmark = pytest.mark.integration
SITES = ["CW", "NORTH", "SOUTH", "EAST", "WEB"]


def test_each_sites_tasks_run_only_on_its_worker(stack, remote) -> None:
    from siteops.tasks.ops import ping
    from tests.integration.fixture_tasks import record

    workers = {site: stack.worker(site, wait=False) for site in SITES if not any(w.name == site for w in stack.procs)}
    for wp in workers.values():
        stack.wait_ready(wp)

    # Given 125 tasks spread over the five sites, in an interleaved order
    key = uuid.uuid4().hex
    sent = Counter()
    for i in range(125):
        site = SITES[i % len(SITES)]
        record.delay(site, key)
        sent[site] += 1
    pings = {site: ping.delay(site) for site in SITES}

    # Then every task ran, and each one on the worker of its own site
    poll(lambda: remote.llen(f"ran:{key}") == 125, 60, "125 tasks to run")
    ran = Counter(remote.lrange(f"ran:{key}", 0, -1))
    expected = Counter({f"{site}|{workers[site].nodename}": n for site, n in sent.items()})
    assert ran == expected
    for site, result in pings.items():
        answer = result.get(timeout=30)
        assert answer["worker"] == workers[site].nodename
        assert answer["queue"] == f"site.{site}"


def test_unknown_site_is_refused_at_enqueue_naming_the_known_sites(stack) -> None:
    from siteops.config.queues import UnknownSite
    from siteops.tasks.ops import ping

    before = {q: stack.redis.llen(q) for q in [f"site.{s}" for s in SITES] + ["platform"]}
    with pytest.raises(UnknownSite) as info:
        ping.delay("MARS")
    assert "MARS" in str(info.value)
    for site in SITES:
        assert site in str(info.value)
    # Nothing was published anywhere.
    assert {q: stack.redis.llen(q) for q in before} == before

    cli = subprocess.run([sys.executable, "-m", "siteops.cli", "enqueue", "siteops.ops.ping", "--site", "MARS"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert cli.returncode == 2
    assert "unknown site 'MARS'" in cli.stderr and "NORTH" in cli.stderr


def test_cli_enqueue_wait_answers_from_the_sites_worker(stack) -> None:
    import json

    north = stack.serving("NORTH")
    cli = subprocess.run(
        [sys.executable, "-m", "siteops.cli", "enqueue", "siteops.ops.ping", "--site", "NORTH", "--wait",
         "--timeout", "30"], cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert cli.returncode == 0, cli.stderr
    task_id, _, body = cli.stdout.partition("\n")
    assert len(task_id.strip()) == 36
    answer = json.loads(body)
    assert answer["site"] == "NORTH"
    assert answer["worker"].startswith("NORTH@")
    assert answer["worker"] == north.nodename


def test_pickled_message_is_refused_and_never_runs(stack, remote) -> None:
    """A broker writer cannot make our workers unpickle (and so run) arbitrary objects."""
    from kombu import Connection, Exchange, Producer

    from tests.conftest import BROKER_URL

    worker = stack.serving("SOUTH")
    key = uuid.uuid4().hex
    with Connection(BROKER_URL) as conn:
        producer = Producer(conn, exchange=Exchange("siteops", type="direct"))
        task_id = str(uuid.uuid4())
        producer.publish(
            pickle.dumps([["SOUTH", key], {}, {}]),
            routing_key="site.SOUTH",
            headers={"lang": "py", "task": "siteops.testing.record", "id": task_id, "argsrepr": "",
                     "kwargsrepr": "", "retries": 0},
            content_type="application/x-python-serialize", content_encoding="binary",
        )
    poll(lambda: "ContentDisallowed" in worker.log_text() or "refused" in worker.log_text().lower(), 30,
         "the worker to refuse the pickled message")
    # The queue is drained (refused, not left to loop) and the task never ran.
    poll(lambda: stack.redis.llen("site.SOUTH") == 0, 10, "the message to leave the queue")
    assert remote.llen(f"ran:{key}") == 0
