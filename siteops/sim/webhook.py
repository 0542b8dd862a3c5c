"""A webhook receiver standing in for an n8n workflow: checks signatures, records deliveries.

Test and demo equipment. It verifies `X-Siteops-Signature` like a careful receiver
would, answers 401 to a bad signature, can be told to fail its first N requests (to
prove retries), and keeps every attempt and every distinct delivery.

GET / is a page for a person (an HTML table of the deliveries, newest first) when the
client asks for HTML, as a browser does; otherwise, and always at /deliveries.json or
with ?format=json, it is the JSON `{"deliveries": {id: payload}, "attempts": n}`.
"""

from __future__ import annotations

import html
import json
import threading
import time
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
    received_at: dict[str, float] = field(default_factory=dict)
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
            if delivery not in self.deliveries:
                self.deliveries[delivery] = json.loads(body)
                self.received_at[delivery] = time.time()
            return 200

    def page(self) -> str:
        """The deliveries as an HTML table, newest first."""
        with self.lock:
            rows = sorted(self.deliveries.items(), key=lambda d: self.received_at.get(d[0], 0), reverse=True)
            attempts, rejected = len(self.attempts), sum(1 for a in self.attempts if not a["signed"])
        cells = []
        for delivery, payload in rows:
            finding = payload.get("finding") or {}
            when = time.strftime("%H:%M:%S", time.gmtime(self.received_at.get(delivery, 0)))
            values = [when, payload.get("event", ""), payload.get("site", ""), finding.get("kind", ""),
                      finding.get("severity", ""), finding.get("title", ""), finding.get("record_name") or "",
                      delivery]
            cells.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in values) + "</tr>")
        head = "".join(f"<th>{h}</th>" for h in ("received (UTC)", "event", "site", "kind", "severity", "title",
                                                   "record", "delivery"))
        return (
            "<!doctype html><meta charset=utf-8><title>webhook receiver: deliveries</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:1.3em;margin:0}"
            "p{color:#555}table{border-collapse:collapse;font-size:.9em;width:100%}"
            "th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #e3e3e3;white-space:nowrap}"
            "td:nth-child(6){white-space:normal;min-width:28em}td:nth-child(7){white-space:normal;min-width:14em}th{background:#f3f3f3;position:sticky;top:0}"
            "tr:nth-child(even) td{background:#fafafa}</style>"
            f"<h1>Webhook deliveries</h1><p>{len(rows)} deliveries, {attempts} attempts "
            f"({rejected} with a bad signature). The same as JSON: <a href=/deliveries.json>/deliveries.json</a></p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(cells)}</tbody></table>"
        )


def serve(receiver: Receiver, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = receiver.handle(self.headers, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            wants_html = "text/html" in self.headers.get("Accept", "") and "format=json" not in query
            if path == "/" and wants_html:
                data, kind = receiver.page().encode(), "text/html; charset=utf-8"
            elif path in ("/", "/deliveries.json"):
                with receiver.lock:
                    data = json.dumps({"deliveries": receiver.deliveries, "attempts": len(receiver.attempts)}).encode()
                kind = "application/json"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="webhook-sim", daemon=True).start()
    return server
