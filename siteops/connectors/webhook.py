"""Outbound webhooks (e.g. an n8n workflow): JSON, signed, classified errors.

Each request carries `X-Siteops-Timestamp` (unix seconds) and
`X-Siteops-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` with the shared
secret, so the receiver can check both origin and freshness (reject old timestamps to
stop replays). `X-Siteops-Delivery` is the idempotency key: the same alert retried keeps
the same key, so a receiver can drop duplicates.

Only a 2xx is a delivery. Redirects are not followed (a POST re-sent elsewhere, or turned
into a GET by the client, is not a delivery the receiver confirmed), and a redirect is a
configuration error, not a success:

| Receiver's answer                                  | Class            |
|----------------------------------------------------|------------------|
| 2xx                                                | delivered (the status is returned) |
| 3xx (any redirect)                                 | `PermanentError` (fix `SITEOPS_WEBHOOK_URL`) |
| 429, or 408/5xx with `Retry-After`                 | `RateLimited` (waits `Retry-After`: seconds or an HTTP date) |
| 408, 5xx without `Retry-After`                     | `RetryableError` (backoff) |
| other 4xx (400, 401, 403, 404, 410, 413, 422, ...) | `PermanentError` |
| connection refused/reset, DNS failure, timeout     | `RetryableError` |
| 1xx or any other status outside 200-599            | `PermanentError` |

The task's retry policy bounds the retries and caps any wait (a `Retry-After` included).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import hmac
import json
import os
import time
from typing import Any

import httpx

from siteops.config.secrets import SecretError, read_secret
from siteops.connectors.errors import PermanentError, RateLimited, RetryableError

SIGNATURE_HEADER = "X-Siteops-Signature"
TIMESTAMP_HEADER = "X-Siteops-Timestamp"
DELIVERY_HEADER = "X-Siteops-Delivery"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, max_age: float = 300,
           now: float | None = None) -> bool:
    now = time.time() if now is None else now
    try:
        fresh = abs(now - float(timestamp)) <= max_age
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


def configured_url() -> str | None:
    return os.environ.get("SITEOPS_WEBHOOK_URL") or None


def configured_secret() -> str:
    try:
        return read_secret("SITEOPS_WEBHOOK_SECRET", required=True)
    except SecretError as exc:
        raise PermanentError(str(exc), system="webhook") from None


def post(url: str, payload: dict[str, Any], *, secret: str, delivery_id: str, timeout: float = 10.0) -> int:
    """POST the payload; return the HTTP status, or raise a classified error."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        DELIVERY_HEADER: delivery_id,
    }
    try:
        # follow_redirects=False (httpx's default, stated because it is the contract): a 3xx is an error.
        response = httpx.post(url, content=body, headers=headers, timeout=timeout, follow_redirects=False)
    except httpx.TimeoutException as exc:
        raise RetryableError(f"timed out: {type(exc).__name__}", system="webhook", operation="post") from None
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise PermanentError(f"bad webhook URL: {exc}", system="webhook", operation="post") from None
    except httpx.TransportError as exc:
        raise RetryableError(f"transport error: {type(exc).__name__}", system="webhook", operation="post") from None
    return classify_response(response.status_code, response.headers.get("Retry-After"))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date), or None."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # unparseable: fall back to the policy's own backoff
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def classify_response(status: int, retry_after: str | None = None) -> int:
    """The table in the module docstring: the status if delivered, else a classified error."""
    if 200 <= status < 300:
        return status
    where = {"system": "webhook", "operation": "post"}
    wait = parse_retry_after(retry_after)
    if status == 429:
        raise RateLimited("receiver asked to slow down (429)", retry_after=5.0 if wait is None else wait, **where)
    if status == 408 or 500 <= status < 600:
        if wait is not None:
            raise RateLimited(f"receiver answered {status} with Retry-After", retry_after=wait, **where)
        raise RetryableError(f"receiver answered {status}", **where)
    if 300 <= status < 400:
        raise PermanentError(f"receiver answered a redirect (HTTP {status}): not a delivery; "
                             "point SITEOPS_WEBHOOK_URL at the final address", **where)
    raise PermanentError(f"receiver refused the alert: HTTP {status}", **where)
