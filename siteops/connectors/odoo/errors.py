"""Classify whatever a transport raised into the connector taxonomy (odoo.md §1.8, §5).

retryable: network errors, timeouts, HTTP 502/503/504, database lock contention;
rate limited: HTTP 429 with Retry-After; auth: AccessDenied, wrong login, HTTP 401;
permanent: validation, access, missing records, bad arguments, anything unknown.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
from typing import Any

import httpx
import odoorpc
import odoorpc.rpc.error

from siteops.connectors.errors import (
    AuthError,
    ConnectorError,
    PermanentError,
    RateLimited,
    RetryableError,
)

SYSTEM = "odoo"


class MissingRecord(PermanentError):
    """The record does not exist (any more): `odoo.exceptions.MissingError`. Callers may
    treat the work as moot (an alert about a deleted record) rather than failed."""


RETRYABLE_STATUS = frozenset({502, 503, 504})
# Server-side errors that go away on their own (Odoo retried 5 times and gave up).
RETRYABLE_NAMES = frozenset({
    "psycopg2.errors.SerializationFailure", "psycopg2.errors.DeadlockDetected",
    "psycopg2.errors.LockNotAvailable", "psycopg2.OperationalError", "psycopg2.errors.OperationalError",
    "odoo.exceptions.ConcurrencyError",
})
MISSING_NAMES = frozenset({"odoo.exceptions.MissingError"})
AUTH_NAMES = frozenset({"odoo.exceptions.AccessDenied", "odoo.http.SessionExpiredException",
                        "werkzeug.exceptions.Unauthorized"})


def _retry_after(value: str | None, default: float = 1.0) -> float:
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default  # an HTTP-date: rare from Odoo proxies; a short wait is safe


def classify_remote(name: str, message: str, operation: str) -> ConnectorError:
    """An error Odoo reported (`data.name` / JSON-2 `name`)."""
    text = f"{name}: {message}" if name else message
    if name in AUTH_NAMES:
        return AuthError(text, system=SYSTEM, operation=operation)
    if name in RETRYABLE_NAMES:
        return RetryableError(text, system=SYSTEM, operation=operation)
    if name in MISSING_NAMES:
        return MissingRecord(text, system=SYSTEM, operation=operation)
    return PermanentError(text, system=SYSTEM, operation=operation)


def classify_status(status: int, operation: str, *, retry_after: str | None = None,
                    body: Any = None) -> ConnectorError:
    name = body.get("name", "") if isinstance(body, dict) else ""
    message = body.get("message", "") if isinstance(body, dict) else ""
    if status == 429:
        return RateLimited(f"HTTP 429 Too Many Requests{': ' + message if message else ''}",
                           retry_after=_retry_after(retry_after), system=SYSTEM, operation=operation)
    if status in RETRYABLE_STATUS or status == 408:
        return RetryableError(f"HTTP {status}", system=SYSTEM, operation=operation)
    if status == 401:
        return AuthError(f"HTTP 401 {message or 'Unauthorized'}", system=SYSTEM, operation=operation)
    if name:
        err = classify_remote(name, message, operation)
        err.message = f"HTTP {status} {err.message}"
        return err
    return PermanentError(f"HTTP {status}", system=SYSTEM, operation=operation)


def classify(exc: BaseException, operation: str) -> ConnectorError:
    """Map any exception raised by odoorpc, urllib, httpx or the socket layer."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, odoorpc.error.RPCError):
        info = exc.info
        if info is False or info is None:  # common.login returned false
            return AuthError(f"login refused: {exc}", system=SYSTEM, operation=operation)
        data = info.get("data", {}) if isinstance(info, dict) else {}
        return classify_remote(str(data.get("name", "")), str(data.get("message", exc)), operation)
    if isinstance(exc, urllib.error.HTTPError):
        return classify_status(exc.code, operation, retry_after=exc.headers.get("Retry-After") if exc.headers
                               else None)
    if isinstance(exc, httpx.HTTPStatusError):
        return classify_status(exc.response.status_code, operation,
                               retry_after=exc.response.headers.get("Retry-After"))
    if isinstance(exc, urllib.error.URLError | httpx.TransportError | http.client.HTTPException
                  | ConnectionError | TimeoutError | socket.timeout | socket.gaierror):
        kind = "timed out" if isinstance(exc, TimeoutError | httpx.TimeoutException) else "network error"
        return RetryableError(f"{kind}: {type(exc).__name__}: {exc}", system=SYSTEM, operation=operation)
    if isinstance(exc, json.JSONDecodeError):
        # A 200 with a non-JSON body: a proxy's error page, not Odoo.
        return RetryableError(f"response was not JSON: {exc}", system=SYSTEM, operation=operation)
    if isinstance(exc, odoorpc.error.InternalError):
        return PermanentError(f"odoorpc: {exc}", system=SYSTEM, operation=operation)
    if isinstance(exc, odoorpc.rpc.error.ConnectorError):  # a BaseException subclass
        return PermanentError(f"odoorpc connector: {exc}", system=SYSTEM, operation=operation)
    if isinstance(exc, KeyError):
        # odoorpc indexes the reply blindly: an answer without `result`/`data` is not Odoo's protocol.
        return PermanentError(f"malformed Odoo response (missing {exc})", system=SYSTEM, operation=operation)
    return PermanentError(f"unexpected {type(exc).__name__}: {exc}", system=SYSTEM, operation=operation)
