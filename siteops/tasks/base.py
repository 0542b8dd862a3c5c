"""The one task base class: name, queue, retries, dead letters, idempotency, audit, metrics.

Every siteops task is declared with `siteops_task(...)`, which checks the stable name
(`siteops.<area>.<verb_noun>`: Flower, metrics and dead letters show it) and sets the
ack policy: only tasks that keep the idempotency contract get late acks and
`reject_on_worker_lost`, because those are the ones that may safely run twice.

Around each run the base class:
- writes an audit row (start, then outcome) and keeps the log context (task id, site);
- turns `RetryableError` into a bounded retry with exponential backoff and full jitter,
  `RateLimited` into a retry after its `retry_after`, and `PermanentError`, exhausted
  retries or an unexpected exception into a dead letter (then fails the task, so Flower
  shows it as failed);
- counts runs, durations and retries in Prometheus;
- contains poison messages: one that killed its worker `max_redeliveries` times is
  dead-lettered instead of run again.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from billiard.exceptions import WorkerLostError
from celery import Task
from celery.exceptions import Ignore, Reject, Retry, SoftTimeLimitExceeded
from celery.worker.request import Request

from siteops.config.redaction import refuse_secret_arguments
from siteops.config.sites import get_registry
from siteops.connectors.errors import PermanentError, RateLimited, RetryableError
from siteops.observability.logging import log_context
from siteops.observability.metrics import DEAD_LETTERS, TASK_DURATION, TASK_RETRIES, TASK_RUNS
from siteops.store import audit, operations
from siteops.store.models import RunState, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

TASK_NAME = re.compile(r"^siteops\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


def backoff_delay(retries: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**retries)].

    Full jitter (rather than a fixed doubling) spreads the retries of many tasks that
    failed together, e.g. a whole site's scans during an Odoo restart.
    """
    window = min(cap, base * (2 ** max(0, retries)))
    return (rng or random).uniform(0, window)


class SiteopsTask(Task):  # type: ignore[misc]
    """Base class of every siteops task (set as the app's ``task_cls``)."""

    #: Site-bound tasks take the site code as their first argument and are routed to
    #: ``site.<CODE>``; the others run on ``platform``.
    site_bound: bool = True
    #: True when the task keeps the idempotency contract (late ack, redelivery on loss).
    idempotent: bool = False
    #: Name of the argument that holds the business key (picking, PO, tracking number).
    business_key: str | None = None
    #: What an unknown outcome of an `idempotent_call` without a check means for this
    #: task ("repeat" or "dead_letter"); a call may also say it itself.
    on_unknown: operations.OnUnknown | None = None
    typing = True
    #: Our Request records runs whose pool process was killed (see SiteopsRequest).
    Request = "siteops.tasks.base:SiteopsRequest"

    # -- enqueue -------------------------------------------------------------------

    def apply_async(self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
                    **options: Any) -> Any:
        # Before Celery's own argument check, so the refusal says why.
        refuse_secret_arguments(self.name, kwargs)
        return super().apply_async(args, kwargs, **options)

    # -- run -----------------------------------------------------------------------

    def site_of(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str | None:
        if not self.site_bound:
            return None
        site = args[0] if args else kwargs.get("site")
        return site if isinstance(site, str) else None

    def business_key_of(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str | None:
        if not self.business_key:
            return None
        if self.business_key in kwargs:
            value = kwargs[self.business_key]
        else:
            position = self._business_key_position()
            value = args[position] if position is not None and position < len(args) else None
        return None if value is None else str(value)

    def _business_key_position(self) -> int | None:
        """Where the business key sits among the positional arguments (looked up once per task)."""
        cached = self.__dict__.get("_bk_position", -1)
        if cached == -1:
            import inspect

            names = list(inspect.signature(self.run).parameters)
            cached = names.index(self.business_key) if self.business_key in names else None
            self.__dict__["_bk_position"] = cached
        return cached  # type: ignore[no-any-return]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        req = self.request
        if req.id is None:  # called directly, outside a worker: plain function call
            return self.run(*args, **kwargs)
        site = self.site_of(args, kwargs)
        label_site = site or "-"
        redelivered = bool((req.delivery_info or {}).get("redelivered"))
        started_at = utcnow()
        t0 = time.perf_counter()

        def finish(state: str, outcome: str, error: BaseException | None = None,
                   note: dict[str, Any] | None = None) -> None:
            duration = time.perf_counter() - t0
            audit.record_run(
                task_id=req.id, task_name=self.name, site=site, business_key=self.business_key_of(args, kwargs),
                attempt=req.retries + 1, redelivered=redelivered, worker=req.hostname, pid=os.getpid(),
                started_at=started_at, state=state, duration=duration, error=error, note=note,
            )
            TASK_RUNS.labels(self.name, label_site, outcome).inc()
            TASK_DURATION.labels(self.name, label_site).observe(duration)

        with log_context(req.id, site):
            # Only a redelivered message can be poison, so only it pays for the lookup.
            if redelivered and audit.count_lost(req.id) >= get_registry().retry.max_redeliveries:
                error = PermanentError(
                    f"message redelivered after killing its worker {audit.count_lost(req.id)} times"
                )
                self._dead_letter(args, kwargs, "poison", error)
                finish(RunState.DEAD_LETTERED, "dead_lettered", error)
                raise Ignore()
            try:
                result = self.run(*args, **kwargs)
            except (Retry, Ignore, Reject):
                finish(RunState.RETRYING, "retried")
                raise
            except RateLimited as exc:
                self._retry(args, kwargs, exc, exc.retry_after, "rate_limited", finish)
            except (RetryableError, SoftTimeLimitExceeded) as exc:
                policy = get_registry().retry
                delay = backoff_delay(req.retries, policy.backoff_base_seconds, policy.backoff_cap_seconds)
                self._retry(args, kwargs, exc, delay, "retryable", finish)
            except PermanentError as exc:
                self._dead_letter(args, kwargs, "permanent", exc)
                finish(RunState.DEAD_LETTERED, "dead_lettered", exc)
                raise
            except Exception as exc:
                # A bug or an unclassified error: retrying would repeat it, dropping it
                # would lose the work. Keep it in the dead-letter store for a human.
                log.exception("unexpected error in %s", self.name)
                self._dead_letter(args, kwargs, "error", exc)
                finish(RunState.DEAD_LETTERED, "dead_lettered", exc)
                raise
            finish(RunState.SUCCEEDED, "succeeded")
            return result

    def _retry(self, args: Sequence[Any], kwargs: Mapping[str, Any], exc: BaseException,
               delay: float, reason: str, finish: Callable[..., None]) -> None:
        policy = get_registry().retry
        site = self.site_of(args, kwargs) or "-"
        if self.request.retries >= policy.max_retries:
            self._dead_letter(args, kwargs, "retries_exhausted", exc)
            finish(RunState.DEAD_LETTERED, "dead_lettered", exc)
            raise exc
        log.warning("%s: %s; retry %d/%d in %.1fs", self.name, exc, self.request.retries + 1,
                    policy.max_retries, delay)
        finish(RunState.RETRYING, "retried", exc, {"retry_in": round(delay, 3)})
        TASK_RETRIES.labels(self.name, site, reason).inc()
        raise self.retry(exc=exc, countdown=delay, max_retries=policy.max_retries)

    def _dead_letter(self, args: Sequence[Any], kwargs: Mapping[str, Any], reason: str,
                     exc: BaseException) -> None:
        site = self.site_of(args, kwargs)
        dead_id = audit.add_dead_letter(
            task_id=self.request.id, task_name=self.name, site=site,
            business_key=self.business_key_of(args, kwargs), args=list(args), kwargs=dict(kwargs),
            reason=reason, error=exc, attempts=self.request.retries + 1,
        )
        DEAD_LETTERS.labels(self.name, site or "-", reason).inc()
        log.error("%s dead-lettered as #%d (%s): %s: %s", self.name, dead_id, reason,
                  type(exc).__name__, exc)

    # -- helpers for task bodies ------------------------------------------------------

    def idempotent_call(self, key: str, effect: Callable[[], T], *,
                        check: Callable[[], T | None] | None = None,
                        on_unknown: operations.OnUnknown | None = None) -> T:
        """Run an external side effect at most once per key (the contract: store.operations).

        While an earlier attempt's holder may still be running the effect, this raises
        `RetryableError` (whatever the task id). After an attempt that died mid-call,
        `check` decides; an effect without a check must declare `on_unknown` here or
        on the task (`siteops_task(..., on_unknown=...)`): ``"repeat"`` (the remote side
        dedupes) or ``"dead_letter"`` (an operator verifies and resolves).
        """
        args = self.request.args or []
        return operations.run_once(
            key, effect, check=check, on_unknown=on_unknown or self.on_unknown,
            site=self.site_of(args, self.request.kwargs or {}), task_name=self.name, task_id=self.request.id,
            # The lease outlives a run only if the holder keeps renewing it; without renewal
            # it never outlasts the hard time limit.
            lease_seconds=min(operations.LEASE_SECONDS, float(self.time_limit or self.app.conf.task_time_limit
                                                               or operations.LEASE_SECONDS)),
        )


class SiteopsRequest(Request):  # type: ignore[misc]
    """Runs in the worker's main process: notices pool processes killed under a task.

    The killed process cannot write its own audit row, so the parent does, before Celery
    requeues the message (late ack + reject_on_worker_lost). Counting these rows is how
    a redelivered message is recognised as poison.
    """

    def on_failure(self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False) -> Any:
        exc = getattr(exc_info, "exception", None)
        exc = getattr(exc, "exc", exc)
        if isinstance(exc, WorkerLostError | SystemExit):
            try:
                task = self.task
                args, kwargs = list(self.args or []), dict(self.kwargs or {})
                started = self.time_start
                audit.record_run(
                    task_id=self.id, task_name=self.name, site=task.site_of(args, kwargs),
                    business_key=task.business_key_of(args, kwargs), attempt=self._context.retries + 1,
                    redelivered=bool(self.delivery_info.get("redelivered")), worker=self.hostname,
                    pid=self.worker_pid,
                    started_at=dt.datetime.fromtimestamp(started, dt.UTC) if started else None,
                    state=RunState.LOST, error=f"WorkerLostError: {exc}",
                )
                TASK_RUNS.labels(self.name, task.site_of(args, kwargs) or "-", "lost").inc()
            except Exception:  # recording must never stop Celery from requeueing
                log.exception("could not record the lost run of %s", self.id)
        return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)


def siteops_task(
    name: str,
    *,
    site_bound: bool = True,
    idempotent: bool = False,
    business_key: str | None = None,
    on_unknown: operations.OnUnknown | None = None,
    **options: Any,
) -> Callable[[Callable[..., Any]], SiteopsTask]:
    """Declare a task: `@siteops_task("siteops.ops.ping")` over `def ping(self, site)`."""
    if not TASK_NAME.match(name):
        raise ValueError(f"task name {name!r} must look like siteops.<area>.<verb_noun>")
    from siteops.celery_app import app

    return app.task(  # type: ignore[no-any-return]
        name=name,
        bind=True,
        base=SiteopsTask,
        site_bound=site_bound,
        idempotent=idempotent,
        business_key=business_key,
        on_unknown=on_unknown,
        # Late ack + reject on worker loss only where running twice is safe.
        acks_late=idempotent,
        reject_on_worker_lost=idempotent,
        max_retries=None,  # bounded by policy in SiteopsTask._retry
        **options,
    )
