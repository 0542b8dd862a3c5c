"""Logging with the task id and site on every line, configured once per process.

The context lives in a ContextVar that the task base class sets around each run, so a
connector's log line deep in a call stack still says which task and site it served.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar

_context: ContextVar[tuple[str, str]] = ContextVar("siteops_log_context", default=("-", "-"))

FORMAT = "%(asctime)s %(levelname)-7s %(processName)s [%(site)s %(task_id)s] %(name)s: %(message)s"


@contextlib.contextmanager
def log_context(task_id: str | None, site: str | None) -> Iterator[None]:
    token = _context.set((task_id or "-", site or "-"))
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.task_id, record.site = _context.get()
        return True


def configure(level: str | int = "INFO") -> None:
    root = logging.getLogger()
    if any(isinstance(f, ContextFilter) for h in root.handlers for f in h.filters):
        root.setLevel(level)
        return
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(logging.Formatter(FORMAT))
    root.handlers[:] = [handler]
    root.setLevel(level)
    # odoorpc logs whole requests, password included, at DEBUG; httpx logs every URL at
    # INFO, credentials or tokens in it included: never let them through.
    for name in ("odoorpc", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
