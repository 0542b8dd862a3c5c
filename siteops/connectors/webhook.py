"""Outbound webhooks (e.g. an n8n workflow): JSON, signed, classified errors.

Each request carries `X-Siteops-Timestamp` (unix seconds) and
`X-Siteops-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` with the shared
secret, so the receiver can check both origin and freshness (reject old timestamps to
stop replays). `X-Siteops-Delivery` is the idempotency key: the same alert retried keeps
the same key, so a receiver can drop duplicates.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx

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
    path = os.environ.get("SITEOPS_WEBHOOK_SECRET_FILE")
    if path:
        return Path(path).read_text().strip()
    secret = os.environ.get("SITEOPS_WEBHOOK_SECRET")
    if not secret:
        raise PermanentError("SITEOPS_WEBHOOK_SECRET (or _FILE) is not set", system="webhook")
    return secret


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
        response = httpx.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.TimeoutException as exc:
        raise RetryableError(f"timed out: {type(exc).__name__}", system="webhook", operation="post") from None
    except httpx.TransportError as exc:
        raise RetryableError(f"transport error: {type(exc).__name__}", system="webhook", operation="post") from None
    status = response.status_code
    if status == 429:
        retry_after = response.headers.get("Retry-After", "5")
        try:
            delay = float(retry_after)
        except ValueError:
            delay = 5.0
        raise RateLimited("receiver asked to slow down (429)", retry_after=delay, system="webhook", operation="post")
    if status in (408, 502, 503, 504) or status >= 500:
        raise RetryableError(f"receiver answered {status}", system="webhook", operation="post")
    if status >= 400:
        raise PermanentError(f"receiver refused the alert: HTTP {status}", system="webhook", operation="post")
    return status
