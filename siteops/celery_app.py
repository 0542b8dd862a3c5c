"""The Celery app: broker, serializers, reliability settings, queues, routes, includes.

Every setting here is deliberate; the comment says why (Celery configuration reference:
https://docs.celeryq.dev/en/stable/userguide/configuration.html).
"""

from __future__ import annotations

import time
from typing import Any

from celery import Celery, signals

from siteops.config.limits import TASK_SOFT_TIME_LIMIT, TASK_TIME_LIMIT, VISIBILITY_TIMEOUT
from siteops.config.queues import PLATFORM_QUEUE, SiteRouter, declare_queues
from siteops.config.redaction import refuse_secret_arguments
from siteops.config.settings import get_settings
from siteops.config.sites import get_registry
from siteops.schedules.beat import BEAT_KEY_PREFIX, BEAT_LOCK_TIMEOUT, BEAT_MAX_INTERVAL

settings = get_settings()
registry = get_registry()

# The retry cap is checked against the visibility timeout when the registry loads
# (siteops.config.sites), so every command refuses a bad cap the same way.

class SiteopsCelery(Celery):  # type: ignore[misc]
    """Refuses secret-looking keyword arguments on every way in: `apply_async`, `delay`,
    `send_task` by name and `celery call` all pass through `send_task`."""

    def send_task(self, name: str, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        refuse_secret_arguments(name, kwargs)
        return super().send_task(name, args, kwargs, **options)


app = SiteopsCelery(
    "siteops",
    task_cls="siteops.tasks.base:SiteopsTask",
    include=[
        "siteops.tasks.ops",
        "siteops.tasks.scans",
        "siteops.tasks.alerts",
        "siteops.tasks.events",
        "siteops.tasks.shipping",
        "siteops.tasks.edi",
        "siteops.tasks.reconcile",
        "siteops.tasks.triage",
        "siteops.tasks.approvals",
        *filter(None, settings.task_modules.split(",")),
    ],
)

config: dict[str, Any] = {
    "broker_url": settings.broker_url,
    "result_backend": settings.effective_result_backend,
    "broker_connection_retry_on_startup": True,
    "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT},
    "result_backend_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT},
    "visibility_timeout": VISIBILITY_TIMEOUT,
    # JSON only: tasks take ids and small values; pickle would let a broker writer run
    # code in our workers.
    "task_serializer": "json",
    "result_serializer": "json",
    "accept_content": ["json"],
    "result_accept_content": ["json"],
    # One message per pool process at a time: a long scan never hides short tasks
    # behind it in a prefetch buffer, and a dead worker holds as little as possible.
    "worker_prefetch_multiplier": 1,
    "task_time_limit": TASK_TIME_LIMIT,
    "task_soft_time_limit": TASK_SOFT_TIME_LIMIT,
    # Late acks are set per task (only idempotent ones); these are the defaults for all.
    "task_acks_late": False,
    "task_reject_on_worker_lost": False,
    # A lost broker connection cancels running late-ack tasks: their messages come back
    # and run again, instead of being acked on a channel that no longer exists.
    "worker_cancel_long_running_tasks_on_connection_loss": True,
    # Our consumer sets malformed messages aside as dead letters (instead of crashing or
    # dropping them) and puts back what a lost connection left unacked (siteops.worker.intake).
    "worker_consumer": "siteops.worker.intake:SiteopsConsumer",
    # Flower and the exporter need task events, including "sent" for queued work.
    "worker_send_task_events": True,
    "task_send_sent_event": True,
    # Queues are declared from sites.toml; a typo must fail, not create a dead queue.
    "task_create_missing_queues": False,
    "task_queues": declare_queues(registry.codes),
    "task_default_queue": PLATFORM_QUEUE,
    "task_default_exchange": "siteops",
    "task_default_routing_key": PLATFORM_QUEUE,
    "task_routes": (SiteRouter(registry),),
    "result_expires": 24 * 60 * 60,
    "worker_hijack_root_logger": False,
    "worker_redirect_stdouts": False,
    "beat_schedule_filename": str(settings.var / "celerybeat-schedule"),
    "beat_scheduler": "siteops.schedules.beat:SiteopsScheduler",
    "beat_max_loop_interval": BEAT_MAX_INTERVAL,
    "redbeat_redis_url": settings.broker_url,
    "redbeat_key_prefix": BEAT_KEY_PREFIX,
    "redbeat_lock_timeout": BEAT_LOCK_TIMEOUT,
    "timezone": "UTC",
}
app.conf.update(config)


@app.on_after_configure.connect
def _schedule(sender: Celery, **_: Any) -> None:
    from siteops.schedules import build_beat_schedule

    sender.conf.beat_schedule = build_beat_schedule(registry)


@signals.setup_logging.connect
def _setup_logging(loglevel: Any = None, **_: Any) -> None:
    from siteops.observability.logging import configure

    configure(loglevel or settings.log_level)


@signals.before_task_publish.connect
def _stamp(headers: dict[str, Any] | None = None, **_: Any) -> None:
    # When the message entered its queue: the exporter reports the age of the oldest one.
    if headers is not None:
        headers["siteops_published_at"] = time.time()


@signals.worker_process_init.connect
def _fresh_connections(**_: Any) -> None:
    # Never share the parent's database connections with a forked pool process.
    from siteops.store.db import dispose_after_fork

    dispose_after_fork()


# The heartbeat that lets lost-work recovery tell dead workers from live ones.
import siteops.worker.recovery  # noqa: E402, F401

# Housekeeping (lost-work recovery, sweeps) runs inside the platform worker, not as beat tasks.
from siteops.worker.housekeeping import HousekeepingStep  # noqa: E402

app.steps["consumer"].add(HousekeepingStep)
