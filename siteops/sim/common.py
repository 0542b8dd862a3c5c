"""Plumbing the Odoo and carrier simulators share; each keeps its own protocol on top.

- `RequestLog`: what a simulator received, one entry per request, for tests to assert on;
- `FaultSwitch`: thread-safe fault settings with a seeded generator (so a run is
  reproducible) and an outage window opened by `outage_seconds` / `outage_in`;
- `fault_control`: the `/__sim__/faults` control endpoint (GET reads, POST sets, DELETE resets);
- `SimHTTPServer` / `SimHandler`: a threaded HTTP/1.1 server with the request log, one
  write per reply, and the JSON reply helper;
- `BackgroundSim`: the server (and any helper loops) in daemon threads, as a context manager.

What differs stays in each simulator: its fault settings and what a fault does to a
request, its envelopes and error pages, and its other `/__sim__/` controls.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import Field, asdict, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar


class RequestLog:
    """What the server received: one entry per HTTP request (bounded)."""

    def __init__(self, maxlen: int = 200_000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def add(self, **entry: Any) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def count(self, **match: Any) -> int:
        return sum(1 for e in self.entries() if all(e.get(k) == v for k, v in match.items()))


class OutageSettings(Protocol):
    """The fields every simulator's fault settings (a dataclass) have."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]
    outage_start: float  # time.time() window during which every request fails
    outage_end: float
    outage_mode: str  # "503" | "drop"
    seed: int


C = TypeVar("C", bound=OutageSettings)


class FaultSwitch(Generic[C]):
    """A simulator's fault settings, changed by tests while requests read them."""

    def __init__(self, settings: type[C]) -> None:
        self._settings = settings  # the simulator's settings dataclass
        self._lock = threading.Lock()
        self.config = settings()
        self._rng = random.Random(0)

    def set(self, **changes: Any) -> C:
        """Change some fault settings; `outage_seconds=N` (with `outage_in=M`) opens a window."""
        with self._lock:
            outage = changes.pop("outage_seconds", None)
            start_in = float(changes.pop("outage_in", 0.0))
            known = {f.name for f in fields(self.config)}
            unknown = set(changes) - known
            if unknown:
                raise ValueError(f"unknown fault settings: {sorted(unknown)}")
            for name, value in changes.items():
                setattr(self.config, name, value)
            if outage is not None:
                self.config.outage_start = time.time() + start_in
                self.config.outage_end = self.config.outage_start + float(outage)
            if "seed" in changes:
                self._rng = random.Random(self.config.seed)
            self._changed(changes)
            return self.config

    def reset(self) -> None:
        with self._lock:
            self.config = self._settings()
            self._rng = random.Random(0)
            self._cleared()

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return asdict(self.config) | self._counters()

    def outage(self, now: float) -> str | None:
        """The outage mode ("503" or "drop") while the window is open, else None (lock held)."""
        c = self.config
        return c.outage_mode if c.outage_start <= now < c.outage_end else None

    # Hooks for a simulator's own state beside the settings (called with the lock held).
    def _changed(self, changes: dict[str, Any]) -> None:
        pass

    def _cleared(self) -> None:
        pass

    def _counters(self) -> dict[str, Any]:
        return {}


def fault_control(faults: FaultSwitch[Any], verb: str, body: bytes) -> tuple[int, Any]:
    """`/__sim__/faults`: POST sets some settings, DELETE resets them; (status, answer) with
    the settings after, or 400 for bad JSON or an unknown setting."""
    if verb == "DELETE":
        faults.reset()
    elif verb == "POST":
        try:
            faults.set(**json.loads(body or b"{}"))
        except (ValueError, TypeError) as exc:
            return 400, {"error": str(exc)}
    return 200, faults.as_dict()


class SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.log = RequestLog()


class SimHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real servers and httpx do
    # Headers and body leave in one segment: with keep-alive clients (httpx), a separate tiny
    # body write meets Nagle plus delayed ACK and costs 40 ms per request.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    json_ascii = True  # json.dumps's ensure_ascii: how the imitated server writes non-ASCII

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # the request log replaces stderr noise

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload, ensure_ascii=self.json_ascii, default=str).encode()
        self._send(status, body, "application/json; charset=utf-8", headers)


class BackgroundSim:
    """A simulator serving in a background thread: `with Sim(...) as sim: sim.url`."""

    thread_name = "sim"

    def __init__(self, server: SimHTTPServer) -> None:
        self.server = server
        self._stopping = threading.Event()  # set first by stop(): helper loops end on it
        self._threads: list[threading.Thread] = []

    @property
    def host(self) -> str:
        return str(self.server.server_address[0])

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log(self) -> RequestLog:
        return self.server.log

    def _loops(self) -> list[tuple[Callable[[], None], str]]:
        """(target, thread name) of loops to run beside the server (the carrier's webhook pusher)."""
        return []

    def start(self) -> Self:
        def serve() -> None:
            # A short poll interval so that stop() returns promptly (tests start many servers).
            self.server.serve_forever(poll_interval=0.05)

        for target, name in [(serve, self.thread_name), *self._loops()]:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()
        if self._threads:
            # The server's own thread; helper loops are daemons that end on `_stopping`
            # (a webhook push in flight is not waited for).
            self._threads[0].join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
