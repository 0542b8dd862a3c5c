"""The store: what siteops remembers (audit trail, dead letters, operations)."""

from siteops.store.db import check_schema, get_engine, reset_engine, session, upgrade
from siteops.store.models import DeadLetter, JobRun, Operation, OpState, RunState

__all__ = [
    "DeadLetter",
    "JobRun",
    "OpState",
    "Operation",
    "RunState",
    "check_schema",
    "get_engine",
    "reset_engine",
    "session",
    "upgrade",
]
