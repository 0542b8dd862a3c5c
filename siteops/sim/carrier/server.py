"""The HTTP side of the carrier simulator: EasyPost's `/v2` API, enough for the official SDK.

`EasyPostClient("EZTK...", api_base=f"{sim.url}/v2")` works unmodified: addresses,
parcels, shipments (create with rates, buy, retrieve by id or reference, list with
`purchased` and `before_id` paging), trackers and webhooks. Webhook events are pushed to
every registered webhook, signed as EasyPost signs them:
`X-Hmac-Signature: hmac-sha256-hex=<HMAC-SHA256(NFKD(secret), raw body)>`.

Test controls live under `/__sim__/` (a path the real API does not have): `faults`,
`requests` (the request log), `advance` (move the tracking clock), `tracking` (force a
parcel's script), `counts`, `health`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import math
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx

from siteops.sim.carrier.faults import Faults
from siteops.sim.carrier.state import ApiError, CarrierState, TimelineConfig, now_iso
from siteops.sim.common import BackgroundSim, SimHandler, SimHTTPServer, fault_control

KEY_PREFIXES = ("EZTK", "EZAK")


def sign(secret: str, body: bytes) -> str:
    key = unicodedata.normalize("NFKD", secret).encode()
    return "hmac-sha256-hex=" + hmac.new(key, body, hashlib.sha256).hexdigest()


class CarrierHTTPServer(SimHTTPServer):
    def __init__(self, address: tuple[str, int], state: CarrierState) -> None:
        super().__init__(address, Handler)
        self.state = state
        self.faults = Faults()
        self.pushes: deque[dict[str, Any]] = deque(maxlen=10_000)
        #: Events a receiver did not take (an error, a timeout, not 2xx): sent again later, with
        #: a growing delay, as EasyPost retries a failed webhook, up to `PUSH_ATTEMPTS` times.
        #: Each entry: (attempt, hook, body, about, due on the monotonic clock).
        self.unsent: deque[tuple[int, dict[str, Any], bytes, dict[str, Any], float]] = deque()


def route(method: str, parts: list[str]) -> str:
    """The operation name of an API request (used by faults and the request log)."""
    resource = parts[0] if parts else ""
    singular = {"shipments": "shipment", "trackers": "tracker", "addresses": "address", "parcels": "parcel",
                "webhooks": "webhook"}.get(resource, resource)
    if len(parts) == 1:
        return f"{singular}.{'create' if method == 'POST' else 'list'}"
    if len(parts) == 2:
        return f"{singular}.{ {'GET': 'retrieve', 'DELETE': 'delete'}.get(method, 'update')}"
    return f"{singular}.{parts[2]}"


class Handler(SimHandler):
    server: CarrierHTTPServer
    server_version = "nginx"  # JSON with non-ASCII escaped (SimHandler's json_ascii)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def _api_key(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Bearer "):
            return auth[7:].strip()
        if auth.startswith("Basic "):
            try:
                return base64.b64decode(auth[6:]).decode().split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                return None
        return None

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        body = self._body()
        if url.path.startswith("/__sim__/"):
            return self._control(method, url.path, body)
        parts = [unquote(p) for p in url.path.split("/") if p]  # a reference may hold "/" (%2F)
        if not parts or parts[0] != "v2":
            return self._send_json(404, {"error": {"code": "NOT_FOUND", "message": "Not found", "errors": []}})
        parts = parts[1:]
        operation = route(method, parts)
        key = self._api_key() or ""
        entry: dict[str, Any] = {"t": time.time(), "method": method, "path": url.path, "operation": operation,
                                 "key": key[:8]}
        start = time.perf_counter()
        try:
            status, payload, headers = self._api(method, parts, operation, key, url.query, body, entry)
        except ApiError as exc:
            status, payload, headers = exc.status, exc.body(), None
            entry["error"] = exc.code
        except ConnectionError:
            entry.update(status="dropped", duration=time.perf_counter() - start)
            self.server.log.add(**entry)
            self.close_connection = True
            return
        entry.update(status=status, duration=time.perf_counter() - start)
        self.server.log.add(**entry)
        with contextlib.suppress(OSError):  # the client gave up (a timeout fault): nothing to answer
            self._send_json(status, payload, headers)

    def _api(self, method: str, parts: list[str], operation: str, key: str, query: str, body: bytes,
             entry: dict[str, Any]) -> tuple[int, Any, dict[str, str] | None]:
        if not key.startswith(KEY_PREFIXES):
            raise ApiError(401, "APIKEY.INACTIVE", "This api key is no longer active. Please use a different api "
                                                   "key or reactivate this key.")
        mode = "test" if key.startswith("EZTK") else "production"
        d = self.server.faults.decide(operation, key)
        if d.name:
            entry["fault"] = d.name
        if d.latency:
            time.sleep(d.latency)  # simulated slowness
        if d.drop:
            raise ConnectionError("dropped")
        if d.status is not None:
            headers = {"Retry-After": str(math.ceil(d.retry_after))} if d.retry_after is not None else None
            code = {429: "RATE_LIMITED", 503: "SERVICE.UNAVAILABLE"}.get(d.status, "INTERNAL_SERVER_ERROR")
            msg = {429: "You have exceeded the rate limit."}.get(d.status, "Internal server error.")
            return d.status, {"error": {"code": code, "message": msg, "errors": []}}, headers
        if d.hold:
            time.sleep(d.hold)  # the client times out meanwhile; the work still happens below
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            raise ApiError(400, "BAD_REQUEST", "The request body could not be parsed as JSON.") from None
        params = dict(parse_qsl(query))
        status, payload = self._dispatch(method, parts, data, params, mode)
        if d.fail_after:
            return 500, {"error": {"code": "INTERNAL_SERVER_ERROR", "message": "Internal server error.",
                                   "errors": []}}, None
        return status, payload, None

    def _dispatch(self, method: str, parts: list[str], data: Any, params: dict[str, str],
                  mode: str) -> tuple[int, Any]:
        st = self.server.state
        resource = parts[0] if parts else ""
        if not isinstance(data, dict):
            raise ApiError(400, "BAD_REQUEST", "The request body must be a JSON object.")
        if resource == "addresses":
            if method == "POST" and len(parts) == 1:
                return 201, st.address(data.get("address"), "address")
            if method == "GET" and len(parts) == 2 and parts[1] in st.addresses:
                return 200, st.addresses[parts[1]]
        if resource == "parcels":
            if method == "POST" and len(parts) == 1:
                return 201, st.parcel(data.get("parcel"))
            if method == "GET" and len(parts) == 2 and parts[1] in st.parcels:
                return 200, st.parcels[parts[1]]
        if resource == "shipments":
            if method == "POST" and len(parts) == 1:
                return 201, st.create_shipment(data.get("shipment"), mode)
            if method == "GET" and len(parts) == 1:
                return 200, st.list_shipments(params)
            if method == "GET" and len(parts) == 2:
                return 200, st.get_shipment(parts[1])
            if method == "POST" and len(parts) == 3 and parts[2] == "buy":
                return 200, st.buy(parts[1], data.get("rate"))
            if method == "POST" and len(parts) == 3 and parts[2] == "refund":
                return 200, st.refund(parts[1])
        if resource == "trackers":
            if method == "POST" and len(parts) == 1:
                return 201, st.create_tracker(data.get("tracker"), mode)
            if method == "GET" and len(parts) == 2:
                return 200, st.tracker_view(parts[1])
            if method == "GET" and len(parts) == 1:
                with st.lock:
                    ids = sorted(st.trackers, reverse=True)
                    code = params.get("tracking_code")
                    if code:
                        ids = [i for i in ids if st.trackers[i]["tracking_code"] == code]
                    size = max(1, min(100, int(params.get("page_size") or 20)))
                    return 200, {"trackers": [st.tracker_view(i) for i in ids[:size]], "has_more": len(ids) > size}
        if resource == "webhooks":
            if method == "POST" and len(parts) == 1:
                raw = data.get("webhook") or {}
                if not raw.get("url"):
                    raise ApiError(422, "PARAMETER.REQUIRED", "Missing required parameter.",
                                   [{"field": "webhook.url", "message": "cannot be blank"}])
                hook = {"id": st.new_id("hook"), "object": "Webhook", "mode": mode, "url": raw["url"],
                        "secret": str(raw.get("webhook_secret") or ""), "created_at": now_iso(st.now()),
                        "disabled_at": None}
                with st.lock:
                    st.webhooks[hook["id"]] = hook
                return 201, {k: v for k, v in hook.items() if k != "secret"}
            if method == "GET" and len(parts) == 1:
                return 200, {"webhooks": [{k: v for k, v in h.items() if k != "secret"}
                                          for h in st.webhooks.values()]}
            if method == "DELETE" and len(parts) == 2:
                with st.lock:
                    st.webhooks.pop(parts[1], None)
                return 200, {}
        raise ApiError(404, "NOT_FOUND", "The requested resource could not be found.")

    # -- test controls ----------------------------------------------------------------------

    def _control(self, method: str, path: str, body: bytes) -> None:
        srv, st = self.server, self.server.state
        try:
            data = json.loads(body) if body else {}
            if path == "/__sim__/faults":
                return self._send_json(*fault_control(srv.faults, method, body))
            if path == "/__sim__/requests":
                if method == "DELETE":
                    srv.log.clear()
                return self._send_json(200, {"requests": srv.log.entries()})
            if path == "/__sim__/advance" and method == "POST":
                st.advance(float(data.get("seconds", 0)))
                return self._send_json(200, {"offset": st.clock_offset})
            if path == "/__sim__/tracking" and method == "POST":
                st.force(str(data["tracking_code"]), str(data["script"]))
                return self._send_json(200, {"ok": True})
            if path == "/__sim__/timeline" and method == "POST":
                for k, v in data.items():
                    setattr(st.timeline, k, float(v))
                return self._send_json(200, vars(st.timeline))
            if path == "/__sim__/counts":
                return self._send_json(200, st.counts())
            if path == "/__sim__/pushes":
                return self._send_json(200, {"pushes": list(srv.pushes)})
            if path == "/__sim__/health":
                return self._send_json(200, {"ok": True})
        except (ValueError, KeyError, TypeError, ApiError) as exc:
            return self._send_json(400, {"error": str(exc)})
        self._send_json(404, {"error": f"unknown control {method} {path}"})


# A receiver that is restarting or slow under load gets about a minute before an event is
# given up: 0.5 s, 1 s, 2 s ... 30 s between the attempts. (EasyPost keeps trying for days;
# a minute is what a test or a demo can wait.)
PUSH_ATTEMPTS = 8
FIRST_RESEND_SECONDS = 0.5
MAX_RESEND_SECONDS = 30.0


def resend_delay(attempt: int) -> float:
    """How long after failed attempt `attempt` (1-based) the event is sent again."""
    return float(min(FIRST_RESEND_SECONDS * 2 ** (attempt - 1), MAX_RESEND_SECONDS))


def push_webhooks(server: CarrierHTTPServer, client: httpx.Client) -> int:
    """Send a signed `tracker.updated` event for every tracker whose status moved, and again
    the events a receiver did not take before once their delay is up. Returns how many were
    taken."""
    st = server.state
    now = time.monotonic()
    waiting = [server.unsent.popleft() for _ in range(len(server.unsent))]
    server.unsent.extend(entry for entry in waiting if entry[4] > now)
    due = [entry[:4] for entry in waiting if entry[4] <= now]
    changes = st.tracker_changes() if st.webhooks else []
    for view, previous in changes:
        event = {"object": "Event", "id": st.new_id("evt"), "description": "tracker.updated", "mode": view["mode"],
                 "previous_attributes": {"status": previous} if previous else {}, "result": view,
                 "status": "pending", "pending_urls": [], "completed_urls": [], "created_at": now_iso(st.now())}
        body = json.dumps(event).encode()
        for hook in list(st.webhooks.values()):
            due.append((1, hook, body, {"event": event["id"], "url": hook["url"],
                                        "tracking_code": view["tracking_code"], "status": view["status"]}))
    sent = 0
    for attempt, hook, body, about in due:
        record = {**about, "attempt": attempt, "sent_at": time.monotonic()}
        try:
            resp = client.post(hook["url"], content=body, headers={
                "Content-Type": "application/json", "X-Hmac-Signature": sign(hook["secret"], body),
                "User-Agent": "EasyPost WebHook Agent 1.0"})
            record["response"] = resp.status_code
            taken = 200 <= resp.status_code < 300
        except httpx.HTTPError as exc:
            record["response"] = f"{type(exc).__name__}"
            taken = False
        sent += taken
        if not taken and attempt < PUSH_ATTEMPTS:
            server.unsent.append((attempt + 1, hook, body, about, time.monotonic() + resend_delay(attempt)))
        server.pushes.append(record)
    return sent


class CarrierSim(BackgroundSim):
    """The simulator in a background thread: `with CarrierSim() as sim: ... sim.url`."""

    server: CarrierHTTPServer
    thread_name = "carrier-sim"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, step_seconds: float = 20.0,
                 exception_share: float = 0.1, return_share: float = 0.1, push_interval: float = 0.25) -> None:
        state = CarrierState(timeline=TimelineConfig(step_seconds, exception_share, return_share))
        super().__init__(CarrierHTTPServer((host, port), state))
        self.push_interval = push_interval

    @property
    def api_base(self) -> str:
        return f"{self.url}/v2"

    @property
    def state(self) -> CarrierState:
        return self.server.state

    @property
    def faults(self) -> Faults:
        return self.server.faults

    def _loops(self) -> list[tuple[Callable[[], None], str]]:
        return [(self._pusher, "carrier-sim-push")]

    def _pusher(self) -> None:
        # A short timeout, as EasyPost gives a webhook; a miss is sent again (push_webhooks).
        with httpx.Client(timeout=3.0) as client:
            while not self._stopping.wait(self.push_interval):
                try:
                    push_webhooks(self.server, client)
                except Exception:  # a broken receiver must not stop the timeline
                    time.sleep(self.push_interval)
