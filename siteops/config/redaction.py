"""What counts as a secret, so that none travels in task arguments.

Flower shows task arguments, dead letters keep them, and the broker stores them: a
secret must come from the worker's environment instead. The check runs on every way a
task is enqueued (the task's `apply_async`, and the app's `send_task` for enqueueing by
name).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SECRET_NAME = re.compile(r"(?i)(passw|secret|token|api_?key|credential|auth)")


def refuse_secret_arguments(task_name: str, kwargs: Mapping[str, Any] | None) -> None:
    for key in kwargs or {}:
        if SECRET_NAME.search(str(key)):
            raise ValueError(
                f"{task_name}: argument {key!r} looks like a secret; secrets come from the worker's "
                "environment, never from task arguments"
            )
