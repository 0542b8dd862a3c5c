"""The error taxonomy every connector raises, and the task base class understands.

Connectors classify at their boundary: no raw urllib, httpx, socket or odoorpc exception
leaves a connector. Tasks then only need to know three things: try again later
(`RetryableError`), wait as told (`RateLimited`), or stop and dead-letter
(`PermanentError`). Two permanent cases are told apart because callers act on them
differently: `AuthError` (an operator must fix credentials) and `MissingRecord` (the remote
record is gone: an alert about it is moot, not a failure).

Which remote answer becomes which class is documented next to each connector (the Odoo
table in `siteops.connectors.odoo.errors`, the webhook table in `siteops.connectors.webhook`).
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every classified connector error."""

    def __init__(self, message: str, *, system: str = "", operation: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.system = system
        self.operation = operation

    def __str__(self) -> str:
        where = ".".join(p for p in (self.system, self.operation) if p)
        return f"{where}: {self.message}" if where else self.message


class RetryableError(ConnectorError):
    """Transient: network errors, timeouts, HTTP 502/503/504, lock contention."""


class RateLimited(RetryableError):
    """The remote side asked us to slow down (HTTP 429): wait `retry_after` seconds."""

    def __init__(
        self, message: str, *, retry_after: float, system: str = "", operation: str = ""
    ) -> None:
        super().__init__(message, system=system, operation=operation)
        self.retry_after = max(0.0, float(retry_after))


class PermanentError(ConnectorError):
    """Will not succeed by retrying: validation, access, missing records, bad input."""


class AuthError(PermanentError):
    """Credentials refused or revoked. Permanent for this run; an operator must act."""


class MissingRecord(PermanentError):
    """The remote record does not exist (any more): Odoo's `MissingError` (JSON-2: HTTP 404).

    Retrying cannot bring it back; work about that record is moot rather than failed.
    """
