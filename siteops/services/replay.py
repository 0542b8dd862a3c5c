"""Replaying a dead letter: the same task and arguments, a new task id, marked replayed."""

from __future__ import annotations

from celery import uuid

from siteops.store import audit


class ReplayError(RuntimeError):
    pass


def replay(dead_id: int) -> str:
    from siteops.celery_app import app

    dead = audit.get_dead_letter(dead_id)
    if dead is None:
        raise ReplayError(f"no dead letter {dead_id}")
    if dead.replayed_at is not None:
        raise ReplayError(f"already replayed as {dead.replayed_task_id}")
    if dead.reason == "malformed":
        raise ReplayError(
            f"dead letter {dead_id} is a malformed message the worker set aside ({dead.error_class}: "
            f"{dead.error_message}); it has no task arguments to replay. Inspect it with `siteops dlq show "
            f"{dead_id}` and send the work again from its source."
        )
    task = app.tasks.get(dead.task_name)
    if task is None:
        raise ReplayError(f"task {dead.task_name!r} is not registered (renamed or removed?)")
    new_id = uuid()
    # Claim first so that two operators replaying at once enqueue it only once.
    if not audit.mark_replayed(dead_id, new_id):
        raise ReplayError("replayed concurrently by someone else")
    try:
        task.apply_async(args=list(dead.args), kwargs=dict(dead.kwargs), task_id=new_id)
    except Exception as exc:
        audit.unmark_replayed(dead_id)
        raise ReplayError(f"could not enqueue: {exc}") from exc
    return new_id
