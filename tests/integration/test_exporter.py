"""The exporter reflects a known state: filled queues with their age, unconsumed queues, dead letters."""

from __future__ import annotations

import subprocess
import sys
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, _free_port, poll

pytestmark = pytest.mark.integration


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture(scope="module")
def exporter(stack):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "siteops.cli", "exporter", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    poll(up, 30, "the exporter to answer")
    yield port
    proc.terminate()
    proc.wait(10)


def test_queue_depth_and_age_include_queues_without_consumers(stack, exporter, remote) -> None:
    from tests.integration.fixture_tasks import record

    # Given 7 tasks for EAST, whose worker is not running in this module
    before = scrape(exporter)[("siteops_queue_messages", (("queue", "site.EAST"), ("site", "EAST")))]
    for _ in range(7):
        record.delay("EAST", uuid.uuid4().hex)

    def depth_and_age() -> tuple[float, float] | None:
        m = scrape(exporter)
        labels = (("queue", "site.EAST"), ("site", "EAST"))
        depth, age = m[("siteops_queue_messages", labels)], m[("siteops_queue_oldest_message_age_seconds", labels)]
        return (depth, age) if depth == before + 7 and age > 0.2 else None

    depth, age = poll(depth_and_age, 20, "EAST's backlog and its age to show", interval=0.2)
    assert depth == before + 7 and age > 0.2
    m = scrape(exporter)
    assert m[("siteops_workers_alive", (("site", "EAST"),))] == 0
    # Every declared queue is there, consumed or not.
    for site in ("CW", "NORTH", "SOUTH", "EAST", "WEB"):
        assert ("siteops_queue_messages", (("queue", f"site.{site}"), ("site", site))) in m

    # When EAST's worker comes, the backlog drains and the worker is counted.
    stack.worker("EAST")
    poll(lambda: scrape(exporter)[("siteops_queue_messages", (("queue", "site.EAST"), ("site", "EAST")))] == 0,
         30, "EAST's backlog to drain")
    m = scrape(exporter)
    assert m[("siteops_workers_alive", (("site", "EAST"),))] == 1
    assert m[("siteops_queue_oldest_message_age_seconds", (("queue", "site.EAST"), ("site", "EAST")))] == 0


def test_dead_letters_by_site_and_task(stack, exporter) -> None:
    from siteops.connectors.errors import PermanentError
    from siteops.store import audit

    key = ("siteops_dead_letters", (("site", "CW"), ("task", "siteops.testing.exporter_probe")))
    for i in range(3):
        audit.add_dead_letter(task_id=f"x-{uuid.uuid4()}", task_name="siteops.testing.exporter_probe", site="CW",
                              business_key=None, args=["CW", i], kwargs={}, reason="permanent",
                              error=PermanentError("bad"), attempts=1)
    assert scrape(exporter)[key] == 3
    # Other test files share this session's store: pick one of this test's own letters.
    first = next(d for d in audit.list_dead_letters(site="CW") if d.task_name == "siteops.testing.exporter_probe")
    assert audit.mark_replayed(first.id, "new")
    assert scrape(exporter)[key] == 2
