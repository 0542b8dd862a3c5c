"""The webhook connector's classification table, row by row, against a real local HTTP server."""

from __future__ import annotations

import email.utils
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from siteops.connectors import webhook
from siteops.connectors.errors import ConnectorError, PermanentError, RateLimited, RetryableError


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status = 200
        self.headers: dict[str, str] = {}
        self.paths: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.paths.append(self.path)
        status = 200 if self.path == "/final" else self.server.status
        self.send_response(status)
        for k, v in self.server.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = _answer
    do_GET = _answer


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _post(url: str, timeout: float = 5.0) -> int:
    return webhook.post(url, {"event": "opened", "finding": 1}, secret="s", delivery_id="d-1", timeout=timeout)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_2xx_is_delivered(receiver: Receiver, status: int) -> None:
    receiver.status = status
    assert _post(receiver.url + "/hook") == status


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_permanent_error_and_is_not_followed(receiver: Receiver, status: int) -> None:
    receiver.status = status
    receiver.headers = {"Location": receiver.url + "/final"}
    with pytest.raises(PermanentError, match="redirect"):
        _post(receiver.url + "/hook")
    assert receiver.paths == ["/hook"]  # the alert did not land anywhere else either


@pytest.mark.parametrize("status,headers,expected,wait", [
    (429, {"Retry-After": "7"}, RateLimited, 7.0),
    (429, {}, RateLimited, 5.0),
    (503, {"Retry-After": "12"}, RateLimited, 12.0),
    (408, {"Retry-After": "3"}, RateLimited, 3.0),
    (408, {}, RetryableError, None),
    (500, {}, RetryableError, None),
    (502, {}, RetryableError, None),
    (503, {}, RetryableError, None),
    (504, {}, RetryableError, None),
    (503, {"Retry-After": "soon"}, RetryableError, None),  # unparseable: the policy's own backoff
])
def test_408_429_and_5xx_are_retried_honouring_retry_after(receiver: Receiver, status: int,
                                                           headers: dict[str, str], expected: type[ConnectorError],
                                                           wait: float | None) -> None:
    receiver.status, receiver.headers = status, headers
    with pytest.raises(ConnectorError) as exc:
        _post(receiver.url + "/hook")
    assert type(exc.value) is expected, repr(exc.value)
    if wait is not None:
        assert exc.value.retry_after == wait  # type: ignore[attr-defined]


def test_retry_after_as_an_http_date(receiver: Receiver) -> None:
    receiver.status = 503
    receiver.headers = {"Retry-After": email.utils.formatdate(time.time() + 120, usegmt=True)}
    with pytest.raises(RateLimited) as exc:
        _post(receiver.url + "/hook")
    assert 100 <= exc.value.retry_after <= 121


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 410, 413, 422])
def test_other_4xx_are_permanent(receiver: Receiver, status: int) -> None:
    receiver.status = status
    with pytest.raises(PermanentError) as exc:
        _post(receiver.url + "/hook")
    assert type(exc.value) is PermanentError and str(status) in str(exc.value)


def test_connection_refused_and_timeouts_are_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RetryableError, match="transport"):
        _post(f"http://127.0.0.1:{port}/hook")  # nothing listens there now
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        with pytest.raises(RetryableError, match="timed out"):
            _post(f"http://127.0.0.1:{silent.getsockname()[1]}/hook", timeout=0.3)


def test_a_bad_url_is_permanent() -> None:
    with pytest.raises(PermanentError, match="bad webhook URL"):
        _post("ftp://example.invalid/hook")


def test_the_signed_body_arrives(receiver: Receiver) -> None:
    """The delivered request is the signed one (the classification did not change what is sent)."""
    seen: dict[str, Any] = {}

    class Capture(_Handler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.update(body=body, sig=self.headers[webhook.SIGNATURE_HEADER],
                        ts=self.headers[webhook.TIMESTAMP_HEADER])
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    receiver.RequestHandlerClass = Capture
    assert _post(receiver.url + "/hook") == 204
    assert json.loads(seen["body"]) == {"event": "opened", "finding": 1}
    assert webhook.verify("s", seen["ts"], seen["body"], seen["sig"])
