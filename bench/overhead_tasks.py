"""Tasks for bench/overhead.py: a bare Celery no-op and the same no-op through SiteopsTask."""

from __future__ import annotations

import os

from celery import Celery

from siteops.tasks.base import SiteopsTask, siteops_task

# The anchor: plain Celery, with the same broker, serializer and worker settings as siteops.
bare = Celery("bare", broker=os.environ.get("SITEOPS_BROKER_URL"))
bare.conf.update(
    result_backend=os.environ.get("BENCH_RESULT_BACKEND"),
    task_serializer="json", accept_content=["json"], result_serializer="json",
    worker_prefetch_multiplier=1, task_acks_late=True, task_reject_on_worker_lost=True,
    worker_send_task_events=True, task_send_sent_event=True, task_default_queue="bare",
    broker_transport_options={"visibility_timeout": 7200}, worker_hijack_root_logger=False,
)


@bare.task(name="bench.noop")
def bare_noop(site: str) -> None:
    return None


@siteops_task("siteops.bench.noop", idempotent=True)
def siteops_noop(self: SiteopsTask, site: str) -> None:
    return None
