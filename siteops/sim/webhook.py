"""A webhook receiver standing in for an n8n workflow: checks signatures, records deliveries.

Test and demo equipment. It verifies `X-Siteops-Signature` like a careful receiver
would, answers 401 to a bad signature, can be told to fail its first N requests (to
prove retries), and keeps every attempt and every distinct delivery.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from siteops.connectors.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


@dataclass
class Receiver:
    secret: str
    fail_first: int = 0
    fail_status: int = 503
    attempts: list[dict[str, Any]] = field(default_factory=list)
    deliveries: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, headers: Any, body: bytes) -> int:
        with self.lock:
            ok = verify(self.secret, headers.get(TIMESTAMP_HEADER, ""), body, headers.get(SIGNATURE_HEADER, ""))
            delivery = headers.get(DELIVERY_HEADER, "")
            self.attempts.append({"delivery": delivery, "signed": ok})
            if not ok:
                return 401
            if self.fail_first > 0:
                self.fail_first -= 1
                return self.fail_status
            self.deliveries.setdefault(delivery, json.loads(body))
            return 200


def serve(receiver: Receiver, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = receiver.handle(self.headers, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            data = json.dumps({"deliveries": receiver.deliveries, "attempts": len(receiver.attempts)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="webhook-sim", daemon=True).start()
    return server
