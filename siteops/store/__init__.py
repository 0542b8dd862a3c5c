"""The store: what siteops remembers (audit trail, dead letters, operations)."""

from siteops.store.db import get_engine, reset_engine, session, upgrade
from siteops.store.models import DeadLetter, JobRun, Operation, OpState, RunState

__all__ = [
    "DeadLetter",
    "JobRun",
    "OpState",
    "Operation",
    "RunState",
    "get_engine",
    "reset_engine",
    "session",
    "upgrade",
]
