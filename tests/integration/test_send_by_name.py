"""Every producer routes by task name: a plain client that never imported the task
modules, and `celery call`, send site work to its site's queue and are refused an unknown
site or task before a message exists."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration
QUEUES = ["site.CW", "site.NORTH", "site.SOUTH", "site.EAST", "site.WEB", "platform"]

PLAIN_CLIENT = """
import json, sys
from siteops.celery_app import app
outcomes = []
for name, args, task_id in json.loads(sys.argv[1]):
    try:
        app.send_task(name, args=args, task_id=task_id)
        outcomes.append("sent")
    except Exception as exc:
        outcomes.append(f"{type(exc).__name__}: {exc}")
imported = sorted(m for m in sys.modules if m.startswith("siteops.tasks."))
print(json.dumps({"outcomes": outcomes, "imported": imported}))
"""


@pytest.fixture
def broker(redis_server):
    import redis

    from tests.conftest import REDIS_PORT

    return redis.Redis(port=REDIS_PORT)


def take(client, queue: str, task_id: str) -> list[bytes]:
    """Remove (and return) the messages of this task from a queue: no worker of a later
    test module may run them."""
    found = [raw for raw in client.lrange(queue, 0, -1) if task_id.encode() in raw]
    for raw in found:
        client.lrem(queue, 1, raw)
    return found


def lengths(client) -> dict[str, int]:
    return {q: client.llen(q) for q in QUEUES}


def test_send_task_by_name_from_a_plain_client(broker) -> None:
    sends = [
        ("siteops.scan.aging_transfers", ["NORTH"], str(uuid.uuid4())),
        ("siteops.scan.aging_transfers", ["NOPE"], str(uuid.uuid4())),
        ("siteops.scan.nope", ["NORTH"], str(uuid.uuid4())),
    ]
    before = lengths(broker)
    out = subprocess.run([sys.executable, "-c", PLAIN_CLIENT, json.dumps(sends)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert answer["imported"] == []  # the client never loaded a task module
    sent, nope_site, nope_task = answer["outcomes"]

    # The site task by name lands on its site's queue, and only there.
    assert sent == "sent"
    on_north = take(broker, "site.NORTH", sends[0][2])
    assert len(on_north) == 1
    assert json.loads(on_north[0])["headers"]["task"] == "siteops.scan.aging_transfers"
    assert all(take(broker, q, sends[0][2]) == [] for q in QUEUES)

    # An unknown site and an unknown task are refused, naming the known ones; nothing is published.
    assert nope_site.startswith("UnknownSite") and "'NOPE'" in nope_site and "NORTH" in nope_site
    assert nope_task.startswith("UnknownTask") and "'siteops.scan.nope'" in nope_task
    assert "siteops.scan.aging_transfers" in nope_task
    assert lengths(broker) == before


def test_celery_call_routes_by_name_and_refuses_an_unknown_site(broker) -> None:
    celery = [sys.executable, "-m", "celery", "-A", "siteops.celery_app", "call"]
    out = subprocess.run([*celery, "siteops.scan.overdue_receipts", "--args", '["SOUTH"]'], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    task_id = out.stdout.strip().splitlines()[-1]
    assert len(take(broker, "site.SOUTH", task_id)) == 1

    before = lengths(broker)
    out = subprocess.run([*celery, "siteops.scan.overdue_receipts", "--args", '["NOPE"]'], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "unknown site 'NOPE'" in out.stderr and "SOUTH" in out.stderr
    assert lengths(broker) == before
