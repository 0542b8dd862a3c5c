"""Classify whatever a transport raised into the connector taxonomy (odoo.md §1.8, §5, §9).

The one rule behind the table: **who answered decides**. An answer that carries Odoo's
error envelope (JSON-RPC `error.data.name`, or JSON-2's JSON body `{name, message, ...}`)
is Odoo reporting an exception it raised, and is classified by that exception's name,
whatever the HTTP status. An answer without it (an HTML page, an empty body) came from
something in between — a reverse proxy, a load balancer, a crashed worker — and is
classified by its status: the 5xx family means "the way to Odoo is broken right now".

| What came back                                                  | Class            |
|-----------------------------------------------------------------|------------------|
| connection refused/reset, DNS failure, timeout, dropped reply   | `RetryableError` |
| HTTP 502 / 503 / 504 / 408 (any body)                           | `RetryableError` |
| HTTP 503 with `Retry-After`; HTTP 429                           | `RateLimited`    |
| HTTP 500 without an Odoo envelope (proxy page, crash)           | `RetryableError` (bounded) |
| HTTP 200 whose body is not JSON (a proxy's error page)          | `RetryableError` |
| HTTP 401; `AccessDenied`, `SessionExpiredException`; login false | `AuthError`     |
| envelope `MissingError` (JSON-2: 404)                           | `MissingRecord`  |
| envelope `ValidationError`, `UserError`, `AccessError`          | `PermanentError` |
| envelope werkzeug `NotFound`, `UnprocessableEntity` (JSON-2)    | `PermanentError` |
| envelope of a retry-later database error (1)                    | `RetryableError` |
| envelope of any other exception, any status (500 `ValueError`)  | `PermanentError` |
| other 4xx without an envelope (404 path or database, 415, 400)  | `PermanentError` |
| anything unexpected inside odoorpc                              | `PermanentError` |

(1) `SerializationFailure`, `DeadlockDetected`, `LockNotAvailable`, `OperationalError`,
`ConcurrencyError`, `LockError` (`RETRYABLE_NAMES`). "Bounded": the task's retry policy
caps the attempts, then the work is dead-lettered.

Why a bare 500 is retried but an enveloped one is not: Odoo itself answers every
exception it catches with an envelope (JSON-RPC in an HTTP 200, JSON-2 with a status), so
a 500 *with* one is Odoo's code failing the same way next time; a 500 *without* one never
reached Odoo's error handler (proxy, OOM-killed worker, timeout page) and usually passes.
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
    MissingRecord,
    PermanentError,
    RateLimited,
    RetryableError,
)

SYSTEM = "odoo"
RETRYABLE_STATUS = frozenset({408, 502, 503, 504})
# Server-side errors that go away on their own (Odoo retried 5 times and gave up).
RETRYABLE_NAMES = frozenset({
    "psycopg2.errors.SerializationFailure", "psycopg2.errors.DeadlockDetected",
    "psycopg2.errors.LockNotAvailable", "psycopg2.OperationalError", "psycopg2.errors.OperationalError",
    "odoo.exceptions.ConcurrencyError", "odoo.exceptions.LockError",
})
AUTH_NAMES = frozenset({"odoo.exceptions.AccessDenied", "odoo.http.SessionExpiredException",
                        "werkzeug.exceptions.Unauthorized"})
MISSING_NAMES = frozenset({"odoo.exceptions.MissingError"})


def _retry_after(value: str | None, default: float = 1.0) -> float:
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default  # an HTTP-date: rare from Odoo proxies; a short wait is safe


def classify_remote(name: str, message: str, operation: str) -> ConnectorError:
    """An error Odoo reported in its envelope (`data.name` / JSON-2 `name`)."""
    text = f"{name}: {message}" if name else message
    if name in AUTH_NAMES:
        return AuthError(text, system=SYSTEM, operation=operation)
    if name in RETRYABLE_NAMES:
        return RetryableError(text, system=SYSTEM, operation=operation)
    if name in MISSING_NAMES:
        return MissingRecord(text, system=SYSTEM, operation=operation)
    return PermanentError(text, system=SYSTEM, operation=operation)


def envelope(body: Any) -> tuple[str, str] | None:
    """(name, message) when `body` is Odoo's error envelope (JSON-2 body or JSON-RPC `error`)."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict):  # JSON-RPC
        data = error.get("data")
        if isinstance(data, dict) and data.get("name"):
            return str(data["name"]), str(data.get("message", error.get("message", "")))
        return None
    if body.get("name") and "message" in body:  # JSON-2: serialize_exception
        return str(body["name"]), str(body["message"])
    return None


def classify_status(status: int, operation: str, *, retry_after: str | None = None,
                    body: Any = None) -> ConnectorError:
    """A non-success HTTP answer; `body` is the parsed JSON body, if it was JSON."""
    found = envelope(body)
    if status == 429:
        message = f": {found[1]}" if found else ""
        return RateLimited(f"HTTP 429 Too Many Requests{message}", retry_after=_retry_after(retry_after),
                           system=SYSTEM, operation=operation)
    if status == 503 and retry_after is not None:
        return RateLimited("HTTP 503 Service Unavailable (Retry-After)", retry_after=_retry_after(retry_after),
                           system=SYSTEM, operation=operation)
    if status in RETRYABLE_STATUS:
        return RetryableError(f"HTTP {status}", system=SYSTEM, operation=operation)
    if status == 401:
        return AuthError(f"HTTP 401 {found[1] if found else 'Unauthorized'}", system=SYSTEM, operation=operation)
    if found:
        err = classify_remote(found[0], found[1], operation)
        err.message = f"HTTP {status} {err.message}"
        return err
    if status >= 500:
        return RetryableError(f"HTTP {status} without an Odoo error body (a proxy or a crashed worker)",
                              system=SYSTEM, operation=operation)
    return PermanentError(f"HTTP {status}", system=SYSTEM, operation=operation)


def _http_error_body(exc: urllib.error.HTTPError) -> Any:
    """The JSON body of a urllib HTTP error (odoorpc never reads it), or None."""
    try:
        raw = exc.read(1 << 20)
        return json.loads(raw) if raw else None
    except Exception:  # not JSON, already read, connection gone: no envelope then
        return None


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
                               else None, body=_http_error_body(exc))
    if isinstance(exc, httpx.HTTPStatusError):
        try:
            body = exc.response.json()
        except ValueError:
            body = None
        return classify_status(exc.response.status_code, operation,
                               retry_after=exc.response.headers.get("Retry-After"), body=body)
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
