"""Two ways to reach Odoo: odoorpc over JSON-RPC (Odoo <= 18) and JSON-2 over httpx (Odoo 19+).

Both take calls in one shape, `execute(model, method, ids, params, timeout)`, with the
method's parameters by name (JSON-2 has no positional arguments); the JSON-RPC side
turns them back into `execute_kw` arguments. Neither classifies errors: the client does.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import odoorpc

from siteops.connectors.errors import AuthError
from siteops.connectors.odoo.config import OdooConfig
from siteops.connectors.odoo.errors import SYSTEM, classify_remote, classify_status, envelope


class _DropDebug(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


def silence_odoorpc() -> None:
    """odoorpc 0.10.1 logs every request at DEBUG, the object-service password in clear."""
    logger = logging.getLogger("odoorpc.rpc.jsonrpclib")
    logger.setLevel(logging.WARNING)
    if not any(isinstance(f, _DropDebug) for f in logger.filters):
        logger.addFilter(_DropDebug())  # even if someone lowers the level again


silence_odoorpc()


def major(version: str | None) -> int:
    """'17.0' -> 17, 'saas~17.2+e' -> 17 (like odoorpc's tools.v)."""
    if not version:
        return 0
    digits = "".join(ch for ch in version.split("-")[0] if ch.isdigit() or ch == ".")
    try:
        return int(digits.split(".")[0])
    except ValueError:
        return 0


def detect_version(url: str, timeout: float) -> str:
    """The server's `server_version`, from the unauthenticated version_info route.

    Plain urllib: a one-off httpx client would build an SSL context (tens of ms) for one call.
    Errors are raw here and classified by the client.
    """
    body = json.dumps({"jsonrpc": "2.0", "method": "call", "params": {}, "id": 1}).encode()
    req = urllib.request.Request(f"{url}/web/webclient/version_info", data=body,
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        reply = json.loads(resp.read())
    found = envelope(reply)
    if found:  # Odoo refused even this: classified by its exception, not a KeyError
        raise classify_remote(found[0], found[1], "version")
    return str(reply["result"]["server_version"])


class Transport(Protocol):
    name: str
    version: str

    def execute(self, model: str, method: str, ids: list[int] | None, params: dict[str, Any],
                timeout: float) -> Any: ...

    def close(self) -> None: ...


class JsonRpcTransport:
    """odoorpc, unmodified: one login per process, raw `execute_kw` only (no browse)."""

    name = "jsonrpc"

    def __init__(self, config: OdooConfig, version: str | None) -> None:
        parts = urlsplit(config.url)
        protocol = "jsonrpc+ssl" if parts.scheme == "https" else "jsonrpc"
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self._timeout = config.timeout
        # Passing the version skips odoorpc's own probe (and its raw KeyError('result')).
        self.odoo = odoorpc.ODOO(parts.hostname or "", protocol=protocol, port=port, timeout=config.timeout,
                                 version=version)
        self.version = str(self.odoo.version)
        self.odoo.login(config.db, config.login, config.secret)
        self._lock = threading.Lock()  # odoorpc's timeout is shared state on the proxies

    def execute(self, model: str, method: str, ids: list[int] | None, params: dict[str, Any],
                timeout: float) -> Any:
        params = dict(params)
        if method == "create":
            args: list[Any] = [params.pop("vals_list")]  # Odoo's create needs args[0]
        elif ids is not None:
            args = [ids]
        else:
            args = []
        with self._lock:
            if timeout != self._timeout:
                self.odoo.config["timeout"] = timeout
                self._timeout = timeout
            return self.odoo.execute_kw(model, method, args, params)

    def close(self) -> None:
        self.odoo.logout()  # no request on Odoo >= 10: clears local state only


class Json2Transport:
    """Odoo 19's `/json/2/<model>/<method>` with a bearer API key, on a pooled httpx client."""

    name = "json2"

    def __init__(self, config: OdooConfig, version: str | None) -> None:
        if not config.api_key:
            raise AuthError("the JSON-2 API needs SITEOPS_ODOO_API_KEY", system=SYSTEM, operation="login")
        self.version = version or "19.0"
        self.http = httpx.Client(
            base_url=config.url, timeout=config.timeout,
            headers={"Authorization": f"bearer {config.api_key}", "X-Odoo-Database": config.db,
                     "User-Agent": "siteops-connector"})

    def execute(self, model: str, method: str, ids: list[int] | None, params: dict[str, Any],
                timeout: float) -> Any:
        body = dict(params)
        if ids is not None:
            body["ids"] = ids
        resp = self.http.post(f"/json/2/{model}/{method}", json=body, timeout=timeout)
        if resp.status_code != 200:
            try:
                payload = resp.json()
            except ValueError:
                payload = None
            raise classify_status(resp.status_code, f"{model}.{method}",
                                  retry_after=resp.headers.get("Retry-After"), body=payload)
        return resp.json()

    def close(self) -> None:
        self.http.close()


def open_transport(config: OdooConfig) -> Transport:
    """The transport configured, or for `auto` the one the server's version calls for."""
    version = config.version
    protocol = config.protocol
    if protocol == "auto" or version is None:
        version = version or detect_version(config.url, config.timeout)
    if protocol == "auto":
        protocol = "json2" if major(version) >= 19 and config.api_key else "jsonrpc"
    if protocol == "json2":
        return Json2Transport(config, version)
    return JsonRpcTransport(config, version)
