"""Tracking webhooks from the carrier, over HTTP: verify, find the site, hand to a task.

`handle_tracking_webhook(headers, body)` is a plain function (status, JSON answer) that
any HTTP server can mount (the coming `siteops ingress`); `serve()` is a minimal server
for it until then (`siteops shipping webhooks`, started by `make run`).

- a body over 1 MB is refused (413) before it is read; a missing or wrong
  `X-Hmac-Signature` is refused with 401; both are counted
  (`siteops_carrier_webhooks_total{outcome}`);
- an event for a tracking code siteops did not buy is acknowledged and ignored (the
  carrier would otherwise retry it for days);
- an accepted update becomes `siteops.shipping.record_tracking` on the site's queue: the
  HTTP answer never waits on the store or Odoo, and the task retries like any other.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from siteops.connectors.carriers.config import webhook_secret
from siteops.connectors.carriers.easypost import parse_webhook
from siteops.connectors.carriers.metrics import WEBHOOKS
from siteops.connectors.errors import AuthError, PermanentError
from siteops.store import shipments

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024
PATH = "/carriers/easypost/tracking"
Enqueue = Callable[[str, list[Any]], Any]


def _enqueue(site: str, args: list[Any]) -> Any:
    from siteops.tasks.shipping import record_tracking

    return record_tracking.apply_async(args=[site, *args])


def handle_tracking_webhook(headers: Mapping[str, str], body: bytes, *, secret: str | None = None,
                            enqueue: Enqueue = _enqueue) -> tuple[int, dict[str, Any]]:
    carrier = "easypost"
    if len(body) > MAX_BODY:
        WEBHOOKS.labels(carrier, "too_large").inc()
        return 413, {"error": f"body over {MAX_BODY} bytes"}
    try:
        update = parse_webhook(headers, body, secret if secret is not None else webhook_secret())
    except AuthError as exc:
        WEBHOOKS.labels(carrier, "bad_signature").inc()
        log.warning("tracking webhook refused: %s", exc)
        return 401, {"error": "signature missing or invalid"}
    except PermanentError as exc:
        WEBHOOKS.labels(carrier, "malformed").inc()
        return 400, {"error": str(exc)}
    if update is None:
        WEBHOOKS.labels(carrier, "ignored").inc()
        return 200, {"ignored": "not a tracker event"}
    row = shipments.by_tracking_code(update.tracking_code)
    if row is None:
        WEBHOOKS.labels(carrier, "unknown").inc()
        return 200, {"ignored": f"unknown tracking code {update.tracking_code}"}
    result = enqueue(row.site, [row.id, update.tracking_code, str(update.status), update.carrier_status,
                                update.detail, update.message, update.occurred_at, update.event_id])
    WEBHOOKS.labels(carrier, "accepted").inc()
    return 202, {"accepted": update.tracking_code, "site": row.site, "task_id": getattr(result, "id", None)}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Not `handle`: BaseRequestHandler.handle is the method that serves the request.
    on_webhook: Callable[[Mapping[str, str], bytes], tuple[int, dict[str, Any]]]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        if self.path.split("?")[0] != PATH:
            return self._answer(404, {"error": "not found"})
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return self._answer(400, {"error": "bad Content-Length"})
        if length > MAX_BODY:  # refused unread: a huge body never reaches memory
            WEBHOOKS.labels("easypost", "too_large").inc()
            self.close_connection = True
            return self._answer(413, {"error": f"body over {MAX_BODY} bytes"})
        body = self.rfile.read(length) if length else b""
        try:
            headers: Any = self.headers  # an email.message.Message: case-insensitive get, items()
            status, payload = type(self).on_webhook(headers, body)
        except Exception as exc:  # the store or broker is down: the carrier retries a 503
            log.exception("tracking webhook could not be handed over")
            status, payload = 503, {"error": type(exc).__name__}
        self._answer(status, payload)


Handle = Callable[[Mapping[str, str], bytes], tuple[int, dict[str, Any]]]


def serve(host: str = "127.0.0.1", port: int = 0, handle: Handle | None = None) -> ThreadingHTTPServer:
    """Serve `handle_tracking_webhook` on POST PATH in a background thread."""
    handler = type("Handler", (_Handler,), {"on_webhook": staticmethod(handle or handle_tracking_webhook)})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="carrier-webhooks", daemon=True).start()
    return server


# The ingress serves these webhooks at /hooks/easypost (siteops ingress, started by make run);
# `siteops shipping webhooks` above remains for a carrier endpoint on its own.
_OUTCOMES = {202: "accepted", 200: "ignored", 400: "malformed", 401: "bad_signature", 413: "too_large"}


def _ingress_hook(body: bytes, headers: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    status, answer = handle_tracking_webhook(headers, body)
    return status, {"outcome": _OUTCOMES.get(status, "refused"), **answer}


def mount_on_ingress() -> None:
    from siteops.ingress.app import mount

    mount("easypost")(_ingress_hook)
