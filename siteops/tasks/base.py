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
import json
import logging
import os
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn, TypeVar

from billiard.exceptions import WorkerLostError
from celery import Task
from celery.exceptions import Ignore, Reject, Retry, SoftTimeLimitExceeded, TimeLimitExceeded
from celery.worker import state as worker_state
from celery.worker.request import Request

from siteops.config.queues import register_task, site_queue
from siteops.config.redaction import refuse_secret_arguments
from siteops.config.sites import get_registry
from siteops.connectors.errors import PermanentError, RateLimited, RetryableError
from siteops.observability.logging import log_context
from siteops.observability.metrics import DEAD_LETTERS, TASK_DURATION, TASK_RETRIES, TASK_RUNS
from siteops.store import audit, operations, waits
from siteops.store.models import RunState, utcnow
from siteops.store.transient import is_transient, retry_transient, transient_kind

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


def _resumed_from(req: Any) -> int | None:
    """The parked wait this delivery was enqueued from by the sweeper (a message header)."""
    value = req.get(waits.RESUMED_HEADER) or (getattr(req, "headers", None) or {}).get(waits.RESUMED_HEADER)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class ParkUntil(Exception):  # a control-flow signal, like Celery's Retry
    """Raised by a task body (or `SiteopsTask.park`): run me again at `until`, from the database.

    `until` is a UTC datetime, or give `after` seconds from now. The base class stores
    the wait (store.waits), acknowledges the message and records a ``parked`` run.
    """

    def __init__(self, *, until: dt.datetime | None = None, after: float | None = None, reason: str,
                 error: BaseException | None = None, counts_as_retry: bool = False) -> None:
        if (until is None) == (after is None):
            raise ValueError("ParkUntil needs exactly one of until= (a UTC datetime) or after= (seconds)")
        if until is not None and until.tzinfo is None:
            raise ValueError("ParkUntil(until=...) must be a UTC-aware datetime")
        self.until = until if until is not None else utcnow() + dt.timedelta(seconds=float(after or 0))
        self.reason = reason
        self.error = error
        self.counts_as_retry = counts_as_retry
        super().__init__(f"parked until {self.until.isoformat()} ({reason})")


def _record_quietly(what: str, write: Callable[[], Any], attempts: int = 5) -> bool:
    """Bookkeeping that must never change a run's outcome: retried in place, then logged."""
    try:
        retry_transient(write, what=what, attempts=attempts)
        return True
    except Exception as exc:
        log.error("could not write the %s: %s: %s", what, type(exc).__name__, str(exc).splitlines()[0][:300])
        return False


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
            TASK_RUNS.labels(self.name, label_site, outcome).inc()
            TASK_DURATION.labels(self.name, label_site).observe(duration)
            # The audit row is bookkeeping: a store blip is retried in place, and a store
            # that stays down costs the row (logged in full), never the work itself.
            _record_quietly(f"audit row ({state})", lambda: audit.record_run(
                task_id=req.id, task_name=self.name, site=site, business_key=self.business_key_of(args, kwargs),
                attempt=req.retries + 1, redelivered=redelivered, worker=req.hostname, pid=os.getpid(),
                started_at=started_at, state=state, duration=duration, error=error, note=note,
            ))

        with log_context(req.id, site):
            wrong = self._wrong_site(site)
            if wrong is not None:
                self._dead_letter(args, kwargs, "wrong_site", wrong)
                finish(RunState.DEAD_LETTERED, "dead_lettered", wrong)
                raise Ignore()
            policy = get_registry().retry
            try:
                # Only a redelivered message can be poison, so only it pays for the lookup.
                lost = audit.count_lost(req.id) if redelivered else 0
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self._retry(args, kwargs, exc, self._backoff(), f"{transient_kind(exc)}_unavailable", finish)
            if lost >= policy.max_redeliveries:
                error = PermanentError(f"message redelivered after killing its worker {lost} times")
                self._dead_letter(args, kwargs, "poison", error)
                finish(RunState.DEAD_LETTERED, "dead_lettered", error)
                raise Ignore()
            try:
                result = self.run(*args, **kwargs)
            except (Retry, Ignore, Reject):
                finish(RunState.RETRYING, "retried")
                raise
            except ParkUntil as exc:
                self._park(args, kwargs, exc, finish)
            except RateLimited as exc:
                if exc.retry_after > policy.backoff_cap_seconds:
                    # Longer than the broker may hold a message: the wait goes to the database.
                    self._park(args, kwargs, ParkUntil(after=exc.retry_after, reason="rate_limited", error=exc,
                                                       counts_as_retry=True), finish)
                self._retry(args, kwargs, exc, exc.retry_after, "rate_limited", finish)
            except (RetryableError, SoftTimeLimitExceeded) as exc:
                self._retry(args, kwargs, exc, self._backoff(), "retryable", finish)
            except PermanentError as exc:
                self._dead_letter(args, kwargs, "permanent", exc)
                finish(RunState.DEAD_LETTERED, "dead_lettered", exc)
                raise
            except Exception as exc:
                kind = transient_kind(exc)
                if kind is not None:
                    # The store or the broker is down (failover, too many connections, a
                    # Redis restart): the work is fine, try again later.
                    self._retry(args, kwargs, exc, self._backoff(), f"{kind}_unavailable", finish)
                # A bug or an unclassified error: retrying would repeat it, dropping it
                # would lose the work. Keep it in the dead-letter store for a human.
                log.exception("unexpected error in %s", self.name)
                self._dead_letter(args, kwargs, "error", exc)
                finish(RunState.DEAD_LETTERED, "dead_lettered", exc)
                raise
            finish(RunState.SUCCEEDED, "succeeded")
            return result

    def _backoff(self) -> float:
        policy = get_registry().retry
        return backoff_delay(self.request.retries, policy.backoff_base_seconds, policy.backoff_cap_seconds)

    def _wrong_site(self, site: str | None) -> PermanentError | None:
        """A site task delivered from another site's queue (or from platform) is refused."""
        if not self.site_bound:
            return None
        queue = (self.request.delivery_info or {}).get("routing_key")
        if not queue:  # not delivered from a queue (eager, or a broker that does not say)
            return None
        if site is not None and queue == site_queue(site):
            return None
        return PermanentError(f"{self.name} for site {site!r} arrived on queue {queue!r}; "
                              f"a site task runs only from its own site's queue")

    def _retry(self, args: Sequence[Any], kwargs: Mapping[str, Any], exc: BaseException,
               delay: float, reason: str, finish: Callable[..., None]) -> NoReturn:
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
        try:
            retry = self.retry(exc=exc, countdown=delay, max_retries=policy.max_retries, throw=False)
        except Reject as rejected:
            # Celery turns a failed retry publish (the broker is down) into
            # Reject(requeue=False): the work would be gone. Keep it as a dead letter.
            publish_error = rejected.reason if isinstance(rejected.reason, BaseException) else rejected
            log.error("%s: could not publish the retry (%s: %s)", self.name, type(publish_error).__name__,
                      publish_error)
            failure = RetryableError(f"retry could not be published ({type(publish_error).__name__}: "
                                     f"{publish_error}) after {type(exc).__name__}: {exc}")
            self._dead_letter(args, kwargs, "retry_failed", failure)
            finish(RunState.DEAD_LETTERED, "dead_lettered", failure)
            raise exc from None
        raise retry

    def _park(self, args: Sequence[Any], kwargs: Mapping[str, Any], parked: ParkUntil,
              finish: Callable[..., None]) -> NoReturn:
        """Keep the run in the database until `parked.until`, and acknowledge its message."""
        req = self.request
        policy = get_registry().retry
        cause = parked.error or parked
        if parked.counts_as_retry and req.retries >= policy.max_retries:
            self._dead_letter(args, kwargs, "retries_exhausted", cause)
            finish(RunState.DEAD_LETTERED, "dead_lettered", cause)
            raise cause
        retries = req.retries + (1 if parked.counts_as_retry else 0)
        try:
            wait_id = retry_transient(lambda: waits.park(
                task_id=req.id, task_name=self.name, site=self.site_of(args, kwargs),
                business_key=self.business_key_of(args, kwargs), args=list(args), kwargs=dict(kwargs),
                retries=retries, reason=parked.reason, due_at=parked.until,
                error=f"{type(cause).__name__}: {cause}", resumed_from=_resumed_from(req),
            ), what=f"{self.name}: park until {parked.until.isoformat()}")
        except Exception as exc:
            # Cannot reach the store: wait as long as the broker safely can, then ask again.
            log.error("%s: could not park the wait (%s: %s); retrying after the backoff cap instead",
                      self.name, type(exc).__name__, exc)
            self._retry(args, kwargs, cause, policy.backoff_cap_seconds, "park_failed", finish)
        log.info("%s parked until %s as wait #%d (%s)", self.name, parked.until.isoformat(), wait_id,
                 parked.reason)
        finish(RunState.PARKED, "parked", parked.error,
               {"wait_id": wait_id, "due_at": parked.until.isoformat(), "reason": parked.reason})
        raise Ignore()

    def _dead_letter(self, args: Sequence[Any], kwargs: Mapping[str, Any], reason: str,
                     exc: BaseException) -> None:
        site = self.site_of(args, kwargs)
        req = self.request
        try:
            dead_id = retry_transient(lambda: audit.add_dead_letter(
                task_id=req.id, task_name=self.name, site=site,
                business_key=self.business_key_of(args, kwargs), args=list(args), kwargs=dict(kwargs),
                reason=reason, error=exc, attempts=req.retries + 1,
            ), what=f"{self.name}: dead letter ({reason})")
        except Exception as store_exc:
            self._dead_letter_failed(args, kwargs, reason, exc, store_exc)
            return
        DEAD_LETTERS.labels(self.name, site or "-", reason).inc()
        log.error("%s dead-lettered as #%d (%s): %s: %s", self.name, dead_id, reason,
                  type(exc).__name__, exc)

    def _dead_letter_failed(self, args: Sequence[Any], kwargs: Mapping[str, Any], reason: str,
                            exc: BaseException, store_exc: BaseException) -> None:
        """The dead letter cannot be written: never acknowledge work we hold no record of."""
        letter = json.dumps({"task_id": self.request.id, "task": self.name, "args": list(args),
                             "kwargs": dict(kwargs), "reason": reason, "error": f"{type(exc).__name__}: {exc}"},
                            default=repr)
        if self.acks_late:
            # The message is still unacknowledged: give it back; it runs again and the
            # dead letter is written once the store is back.
            log.error("%s: dead letter (%s) not written (%s: %s); the message goes back to its queue: %s",
                      self.name, reason, type(store_exc).__name__, store_exc, letter)
            raise Reject(store_exc, requeue=True)
        # An early-ack task (not idempotent) was acknowledged when it started and must not
        # run twice: this log line is the only record left.
        log.critical("%s: dead letter (%s) LOST, store unavailable (%s: %s); at-most-once task, not "
                     "requeued: %s", self.name, reason, type(store_exc).__name__, store_exc, letter)

    # -- helpers for task bodies ------------------------------------------------------

    def park(self, *, until: dt.datetime | None = None, after: float | None = None, reason: str,
             counts_as_retry: bool = False) -> NoReturn:
        """Stop this run and run the task again (same task id, same arguments) at `until`.

        For waits longer than the broker may hold a message (hours, days): the wait is
        stored in the database and the message acknowledged; the sweeper enqueues the task
        again when it falls due. `counts_as_retry` spends one retry of the policy's budget
        (a remote that asks us to wait); a business wait ("check again in two days") does not.
        """
        raise ParkUntil(until=until, after=after, reason=reason, counts_as_retry=counts_as_retry)


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
    """Runs in the worker's main process: records the runs that end without their task's say.

    A killed pool process, a hard time limit, a revoke, an expired message or a broker
    outage end a run before (or without) the base class's own bookkeeping, so the parent
    writes their audit row (and, for a hard time limit, the dead letter). Counting the
    ``lost`` rows is how a redelivered message is recognised as poison.
    """

    _siteops_keep_message = False

    def _siteops_record(self, state: str, error: str | None, *, started: bool = True) -> bool:
        task = self.task
        args, kwargs = list(self.args or []), dict(self.kwargs or {})
        site = task.site_of(args, kwargs) if isinstance(task, SiteopsTask) else None
        started_at = self.time_start if started else None

        def write() -> None:
            audit.record_run(
                task_id=self.id, task_name=self.name, site=site,
                business_key=task.business_key_of(args, kwargs) if isinstance(task, SiteopsTask) else None,
                attempt=self._context.retries + 1, redelivered=bool((self.delivery_info or {}).get("redelivered")),
                worker=self.hostname, pid=self.worker_pid,
                started_at=dt.datetime.fromtimestamp(started_at, dt.UTC) if started_at else None,
                state=state, error=error,
            )

        TASK_RUNS.labels(self.name, site or "-", state).inc()
        # One attempt only: this is the worker's main process, its event loop waits.
        return _record_quietly(f"audit row ({state}) of {self.id}", write, attempts=1)

    def _announce_cancelled(self, emit_retry: bool = True) -> None:
        # Celery cancels running late-ack tasks when the broker connection is lost, and
        # then writes a "retry" state to the result backend, which is often the same,
        # unreachable Redis. If that write fails before `_already_cancelled` is set, the
        # termination is handled as a revoke and the message acknowledged: the work is
        # gone. So: mark first, and let the backend write fail.
        self._already_cancelled = True
        try:
            super()._announce_cancelled(emit_retry=emit_retry)
        except Exception as exc:
            log.warning("cancelled %s[%s]; its retry state was not stored (%s: %s)", self.name, self.id,
                        type(exc).__name__, exc)
        self._siteops_record(RunState.CANCELLED, "Cancelled: broker connection lost; the message is put "
                                                 "back when the connection returns")

    def _announce_revoked(self, reason: str, terminated: bool, signum: Any, expired: bool) -> None:
        if expired:
            self._siteops_record(RunState.EXPIRED, f"Expired: message expired at {self.expires}; not run",
                                 started=False)
        else:
            how = f"terminated (signal {signum})" if terminated else "revoked"
            self._siteops_record(RunState.REVOKED, f"Revoked: {how}; not run again", started=terminated)
        try:
            super()._announce_revoked(reason, terminated, signum, expired)
        except Exception as exc:
            # The result backend is down: the revoke still stands, and must still be acked.
            log.warning("revoked %s[%s]; its state was not stored (%s: %s)", self.name, self.id,
                        type(exc).__name__, exc)
            self._already_revoked = True
            if not self.acknowledged:
                self.acknowledge()

    def on_timeout(self, soft: bool, timeout: float) -> None:
        if not soft and not worker_state.should_terminate:
            # The pool process is killed: the task cannot write its own records. The run
            # will not come back by itself (Celery acks a timed-out message), so it becomes
            # a dead letter, replayable once whatever hung is fixed.
            error = TimeLimitExceeded(f"hard time limit ({timeout}s) exceeded")
            self._siteops_record(RunState.DEAD_LETTERED, f"TimeLimitExceeded: {error}")
            if not self._siteops_dead_letter("time_limit", error):
                self._siteops_keep_message = True
        try:
            super().on_timeout(soft, timeout)
        except Exception as exc:
            log.warning("time limit of %s[%s]: its failure was not stored (%s: %s)", self.name, self.id,
                        type(exc).__name__, exc)

    def _siteops_dead_letter(self, reason: str, error: BaseException) -> bool:
        task = self.task
        args, kwargs = list(self.args or []), dict(self.kwargs or {})
        site = task.site_of(args, kwargs) if isinstance(task, SiteopsTask) else None
        try:
            dead_id = audit.add_dead_letter(
                task_id=self.id, task_name=self.name, site=site,
                business_key=task.business_key_of(args, kwargs) if isinstance(task, SiteopsTask) else None,
                args=args, kwargs=kwargs, reason=reason, error=error, attempts=self._context.retries + 1,
            )
        except Exception as exc:
            log.error("%s[%s]: dead letter (%s) not written (%s: %s)", self.name, self.id, reason,
                      type(exc).__name__, exc)
            return False
        DEAD_LETTERS.labels(self.name, site or "-", reason).inc()
        log.error("%s[%s] dead-lettered as #%d (%s): %s", self.name, self.id, dead_id, reason, error)
        return True

    def on_failure(self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False) -> Any:
        exc = getattr(exc_info, "exception", None)
        exc = getattr(exc, "exc", exc)
        if isinstance(exc, TimeLimitExceeded) and self._siteops_keep_message and self.task.acks_late:
            # No dead letter could be written: give the message back instead of acking it.
            log.error("%s[%s]: hard time limit without a dead letter; message requeued", self.name, self.id)
            return self.reject(requeue=True)
        if isinstance(exc, WorkerLostError | SystemExit) and not (self._already_cancelled
                                                                    or self._already_revoked):
            self._siteops_record(RunState.LOST, f"WorkerLostError: {exc}")
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
    # Producers route by name: the declaration must agree with the table they read.
    register_task(name, site_bound)
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


# The sweeper that enqueues parked waits runs in the platform worker, which imports this module.
import siteops.worker.sweeper  # noqa: E402, F401
