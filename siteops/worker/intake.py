"""The worker's intake: every message off a queue either becomes a task or is set aside.

`SiteopsConsumer` (the app's ``worker_consumer``) extends Celery's consumer in two ways.

1. Hostile and malformed messages. Celery logs and drops what it cannot decode, refuses
   (pickle), or does not know (an unknown task name), and a JSON body of the wrong shape
   with a task header (``"hello"``, ``[1, 2]``) raised out of the consumer and stopped the
   worker ("Unrecoverable error: ValueError") - and the message, still unacked, killed
   every worker restarted on that queue. Here each of them is *set aside*: stored as a
   dead letter (reason ``malformed``, raw headers, delivery info and a bounded copy of the
   body) and then acknowledged; the worker keeps running. If the dead letter cannot be
   written (the store is down), the message is not acknowledged: it goes back to its
   queue after `REQUEUE_DELAY` seconds and is looked at again.

2. A broker outage. When the connection drops, Celery cancels running late-ack tasks
   (their base class records them ``cancelled``) and forgets its reserved messages; all of
   those stay unacknowledged in Redis (``unacked``, persisted by AOF), where only the
   visibility timeout (hours) would hand them out again. So the consumer notes their
   delivery tags, and when the connection is back, puts those messages back on their
   queues itself (`RestoreAfterReconnect`), atomically, with kombu's own `restore_by_tag`
   (the same restore lost-work recovery uses, so the two never both restore one message).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from celery import bootsteps
from celery.utils.functional import promise  # type: ignore[attr-defined]
from celery.worker import state
from celery.worker.consumer.consumer import Consumer

from siteops.config.queues import SITE_QUEUE_PREFIX
from siteops.observability.metrics import DEAD_LETTERS

log = logging.getLogger(__name__)

BODY_COPY_LIMIT = 4096
HEADER_VALUE_LIMIT = 1000
REQUEUE_DELAY = 10.0
MALFORMED = "malformed"


class MalformedMessage(ValueError):
    """The message is not a task this worker can run (the reason says why)."""


def check_shape(message: Any) -> None:
    """Refuse, before Celery builds a request, what would crash or mislead it.

    Protocol 2 (what Celery sends): headers carry ``task`` and ``id``, the body is
    ``[args, kwargs, embed]``. A dict body with ``args`` is Celery's older hybrid form.
    """
    headers = message.headers
    if not isinstance(headers, dict):
        raise MalformedMessage(f"headers are {type(headers).__name__}, not a mapping")
    if "task" not in headers:
        return  # protocol 1, or no task at all: Celery decides (on_unknown_message)
    if not isinstance(headers["task"], str) or not isinstance(headers.get("id"), str):
        raise MalformedMessage("the task and id headers must be strings")
    body = message.payload  # decodes (and caches) the body; refused or undecodable raises
    if isinstance(body, dict):
        if not isinstance(body.get("args", []), list | tuple) or not isinstance(body.get("kwargs", {}), dict) \
                or "args" not in body:
            raise MalformedMessage("a dict body must hold args (a list) and kwargs (a mapping)")
        return
    if not (isinstance(body, list | tuple) and len(body) == 3 and isinstance(body[0], list | tuple)
            and isinstance(body[1], dict) and (body[2] is None or isinstance(body[2], dict))):
        shown = json.dumps(body, default=repr)[:80]
        raise MalformedMessage(f"body must be [args, kwargs, embed], got {type(body).__name__} {shown}")


def _bounded(value: Any) -> Any:
    """A JSON-safe, size-bounded copy of a header value."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)[:HEADER_VALUE_LIMIT]
    return value if len(text) <= HEADER_VALUE_LIMIT else text[:HEADER_VALUE_LIMIT] + "...(truncated)"


def describe(message: Any) -> dict[str, Any]:
    """What an operator needs to judge a set-aside message: raw headers, where it came from,
    and at most `BODY_COPY_LIMIT` bytes of its body (never decoded, never executed)."""
    raw = message.body
    data = raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "backslashreplace")
    headers = message.headers if isinstance(message.headers, dict) else {"(headers)": repr(message.headers)}
    info = message.delivery_info or {}
    return {
        "headers": {str(k): _bounded(v) for k, v in headers.items()},
        "content_type": message.content_type,
        "content_encoding": message.content_encoding,
        "delivery_info": {k: _bounded(info.get(k)) for k in ("exchange", "routing_key", "redelivered")
                          if k in info},
        "body": data[:BODY_COPY_LIMIT].decode("utf-8", "backslashreplace"),
        "body_bytes": len(data),
        "body_truncated": len(data) > BODY_COPY_LIMIT,
    }


def _site_of_queue(message: Any) -> str | None:
    queue = str((message.delivery_info or {}).get("routing_key") or "")
    return queue[len(SITE_QUEUE_PREFIX):] if queue.startswith(SITE_QUEUE_PREFIX) else None


class RestoreAfterReconnect(bootsteps.StartStopStep):  # type: ignore[misc]
    """After a reconnect, put back what the lost connection left unacknowledged."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, c: Any) -> None:
        pending: set[str] = getattr(c, "_siteops_restore", set())
        if not pending:
            return
        channel = c.connection.default_channel
        qos: Any = getattr(channel, "qos", None)
        if not hasattr(qos, "restore_by_tag"):
            pending.clear()  # brokers other than Redis redeliver by themselves
            return
        restored = 0
        for tag in sorted(pending):
            try:
                qos.restore_by_tag(tag, leftmost=True)  # a no-op if it was acked or restored already
                restored += 1
            except Exception as exc:
                log.warning("could not restore message %s after reconnect (%s: %s); lost-work recovery "
                            "will", tag, type(exc).__name__, exc)
        pending.clear()
        log.warning("broker connection back: put %d unacknowledged message(s) back on their queues", restored)


class SiteopsConsumer(Consumer):  # type: ignore[misc]
    class Blueprint(Consumer.Blueprint):  # type: ignore[misc]
        default_steps = [*Consumer.Blueprint.default_steps, "siteops.worker.intake:RestoreAfterReconnect"]

    # -- broker outage ------------------------------------------------------------------

    def on_connection_error_after_connected(self, exc: BaseException) -> None:
        pending: set[str] = self.__dict__.setdefault("_siteops_restore", set())
        for group in (state.reserved_requests, state.active_requests,
                      getattr(state, "scheduled_requests", ())):
            for req in list(group):
                tag = (getattr(req, "delivery_info", None) or {}).get("delivery_tag") or getattr(
                    getattr(req, "message", None), "delivery_tag", None)
                if tag and not req.acknowledged:
                    pending.add(str(tag))
        super().on_connection_error_after_connected(exc)

    # -- malformed messages ------------------------------------------------------------

    def create_task_handler(self, promise: Any = promise) -> Any:
        handler = super().create_task_handler(promise)
        fatal = tuple(self.connection_errors) + tuple(getattr(self, "channel_errors", ()))

        def on_task_received(message: Any) -> Any:
            try:
                check_shape(message)
            except Exception as exc:
                return self.set_aside(message, exc)
            try:
                return handler(message)
            except fatal:
                raise  # the connection is gone: the consumer reconnects, the message comes back
            except Exception as exc:
                # Anything else Celery raises while turning a message into a request would
                # stop the worker; this message is the cause, so set it aside instead.
                log.exception("message %r could not become a task", (message.headers or {}).get("id"))
                return self.set_aside(message, exc)

        return on_task_received

    def on_decode_error(self, message: Any, exc: BaseException) -> None:
        self.set_aside(message, exc)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        self.set_aside(message, MalformedMessage("no task header and not a task body"))

    def on_invalid_task(self, body: Any, message: Any, exc: BaseException) -> None:
        self.set_aside(message, exc)

    def on_unknown_task(self, body: Any, message: Any, exc: BaseException) -> None:
        name = (message.headers or {}).get("task")
        self.set_aside(message, MalformedMessage(f"unknown task {name!r} (not registered in this worker)"))
        try:  # tell a caller waiting on the result, as Celery does; best effort
            from celery.exceptions import NotRegistered

            task_id = (message.headers or {}).get("id")
            if task_id:
                self.app.backend.mark_as_failure(task_id, NotRegistered(name))
        except Exception:
            log.debug("could not store the failure of an unknown task", exc_info=True)

    def set_aside(self, message: Any, exc: BaseException) -> None:
        """Dead-letter the message as `malformed`, then ack it; never ack what was not stored."""
        from siteops.store import audit

        headers = message.headers if isinstance(message.headers, dict) else {}
        task_name = str(headers["task"]) if isinstance(headers.get("task"), str) else "(none)"
        task_id = str(headers["id"]) if isinstance(headers.get("id"), str) else "(none)"
        site = _site_of_queue(message)
        try:
            copy = describe(message)
            dead_id = audit.add_dead_letter(
                task_id=task_id, task_name=task_name, site=site, business_key=None, args=[], kwargs={},
                reason=MALFORMED, error=exc, attempts=1, message=copy,
            )
        except Exception as store_exc:
            log.critical("could not store malformed message %s (%s: %s): %s: %s; it goes back to its queue "
                         "in %.0fs", task_id, type(exc).__name__, exc, type(store_exc).__name__, store_exc,
                         REQUEUE_DELAY)
            self.timer.call_after(REQUEUE_DELAY, self._requeue, (message,))
            return
        message.ack_log_error(log, self.connection_errors)
        DEAD_LETTERS.labels(task_name[:200], site or "-", MALFORMED).inc()
        log.error("set aside message %s (task %s) as dead letter #%d: %s: %s", task_id, task_name, dead_id,
                  type(exc).__name__, exc)

    def _requeue(self, message: Any) -> None:
        try:
            message.reject(requeue=True)
        except Exception:
            log.warning("could not requeue message %s; lost-work recovery will", message.delivery_tag,
                        exc_info=True)
