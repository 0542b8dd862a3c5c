"""The HTTP side: Odoo 16-19's JSON-RPC endpoints and Odoo 19's JSON-2 API (odoo.md §2, §6, §8, §9).

Envelopes are Odoo's: HTTP 200 with `result` (omitted when the method returned None)
or `error` {code, message, data{name, debug, message, arguments, context}}; plain HTTP
400/404 pages for a wrong content type, bad JSON or an unknown path.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

from siteops.sim.common import BackgroundSim, SimHandler, SimHTTPServer, fault_control
from siteops.sim.odoo.faults import Faults
from siteops.sim.odoo.orm import RECORD_METHODS, Env, rpc_result
from siteops.sim.odoo.store import (
    JSON2_STATUS,
    AccessDenied,
    BadArguments,
    BuiltinError,
    Database,
    OdooError,
    UnknownMethod,
)

JSON_TYPES = ("application/json", "application/json-rpc")


def version_info(version: int) -> dict[str, Any]:
    info: dict[str, Any] = {
        "server_version": f"{version}.0",
        "server_version_info": [version, 0, 0, "final", 0, ""],
        "server_serie": f"{version}.0",
    }
    if version < 19:  # 19 dropped protocol_version from version_info
        info["protocol_version"] = 1
    return info


class OdooHTTPServer(SimHTTPServer):
    def __init__(self, address: tuple[str, int], db: Database) -> None:
        super().__init__(address, Handler)
        self.db = db
        self.faults = Faults()
        self.truth: dict[str, Any] | None = None

    # -- credentials ----------------------------------------------------------------------

    def login(self, dbname: Any, login: Any, password: Any) -> int | bool:
        self.check_db(dbname)
        if self.faults.auth_revoked:
            return False
        users = self.db.tables["res.users"]
        for uid in users.lookup("login", login):
            row = users.rows[uid]
            if row.get("active", True) and self.password_ok(uid, password):
                return uid
        return False

    def password_ok(self, uid: int, password: Any) -> bool:
        if self.faults.auth_revoked or not isinstance(password, str):
            return False
        return self.db.passwords.get(uid) == password or self.db.api_keys.get(password) == uid

    def check_db(self, dbname: Any) -> None:
        if dbname != self.db.name:
            err = BuiltinError("OperationalError", f'connection to server at "localhost" (127.0.0.1), port 5432 '
                               f'failed: FATAL:  database "{dbname}" does not exist')
            err.name = "psycopg2.OperationalError"
            raise err

    def check(self, dbname: Any, uid: Any, password: Any) -> int:
        self.check_db(dbname)
        try:
            uid = int(uid)
        except (TypeError, ValueError):
            raise BuiltinError("ValueError", f"invalid literal for int() with base 10: {uid!r}") from None
        if not self.password_ok(uid, password):
            raise AccessDenied()
        return uid


class Handler(SimHandler):
    server: OdooHTTPServer
    # HTTP/1.1 (SimHandler): keep-alive for httpx; odoorpc sends Connection: close.
    server_version = "Werkzeug/3.0.1"
    sys_version = "Python/3.11"
    json_ascii = False  # Odoo writes non-ASCII text as is

    # -- plumbing -------------------------------------------------------------------------

    _entry: dict[str, Any] | None = None
    _start = 0.0

    def _record(self) -> None:
        """Log the request before the reply leaves, so a client that got its answer sees it logged."""
        entry, self._entry = self._entry, None
        if entry is not None:
            entry["duration"] = time.perf_counter() - self._start
            self.server.log.add(**entry)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self._record()
        super()._send(status, body, content_type, headers)

    def _send_page(self, status: int, title: str, text: str) -> None:
        html = (f"<!doctype html>\n<html lang=en>\n<title>{status} {title}</title>\n<h1>{title}</h1>\n"
                f"<p>{text}</p>\n").encode()
        self._send(status, html, "text/html; charset=utf-8")

    def _apply_faults(self, method: str, protocol: str = "jsonrpc", rid: Any = None) -> bool:
        """True when a fault answered (or dropped) the request."""
        d = self.server.faults.decide(method)
        if (d.drop or d.status is not None) and self._entry is not None:
            self._entry["status"] = "fault"
            self._entry["fault"] = "drop" if d.drop else d.status
        if d.latency:
            time.sleep(d.latency)  # simulated slowness, not synchronisation
        if d.drop:
            self.close_connection = True
            self.wfile.flush()
            return True
        if d.status is not None and d.error_name:
            # Odoo's own error, in its envelope (an exception Odoo raised, possibly behind a 500).
            err = OdooError(d.error_message)
            err.name = d.error_name
            if protocol == "json2":
                # error_status 0: the status Odoo 19 itself gives that exception (else 500).
                status = d.status or JSON2_STATUS.get(d.error_name, 500)
                self._send_json(status, {"name": d.error_name, "message": d.error_message,
                                           "arguments": [d.error_message], "context": {}, "debug": ""})
            else:
                self._send_json(d.status or 200, {"jsonrpc": "2.0", "id": rid, "error": self._error(err)})
            return True
        if d.status is not None:
            headers = {"Retry-After": str(int(d.retry_after))} if d.retry_after is not None else None
            title = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
                     503: "Service Unavailable", 504: "Gateway Timeout"}.get(d.status, "Error")
            body = f"<html><body><h1>{d.status} {title}</h1></body></html>".encode()
            self._send(d.status, body, "text/html", headers)
            return True
        return False

    # -- routing --------------------------------------------------------------------------

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path.startswith("/__sim__/"):
            return self._control("GET", path)
        if path in ("/jsonrpc", "/web/webclient/version_info") or path.startswith("/json/2/"):
            return self._send_page(405, "Method Not Allowed", "The method is not allowed for the requested URL.")
        self._send_page(404, "Not Found", "The requested URL was not found on the server.")

    def do_DELETE(self) -> None:
        path = urlsplit(self.path).path
        if path.startswith("/__sim__/"):
            return self._control("DELETE", path)
        self._send_page(404, "Not Found", "The requested URL was not found on the server.")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        body = self._body()
        if path.startswith("/__sim__/"):
            return self._control("POST", path, body)
        self._start = time.perf_counter()
        entry: dict[str, Any] = {"t": time.time(), "path": path, "http_method": "POST"}
        self._entry = entry
        try:
            if path == "/jsonrpc" or path == "/web/webclient/version_info":
                self._jsonrpc(path, body, entry)
            elif path.startswith("/json/2/") and self.server.db.version >= 19:
                self._json2(path, body, entry)
            else:
                entry["status"] = 404
                self._send_page(404, "Not Found", "The requested URL was not found on the server.")
        finally:
            self._record()  # dropped connections never reach _send

    # -- JSON-RPC -------------------------------------------------------------------------

    def _jsonrpc(self, path: str, body: bytes, entry: dict[str, Any]) -> None:
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype not in JSON_TYPES:
            entry["status"] = 400
            return self._send_page(400, "Bad Request", f"Request inferred type is compatible with ['http'] "
                                   f"but '{path}' is type='json'.")
        try:
            request = json.loads(body)
        except ValueError:
            entry["status"] = 400
            return self._send_page(400, "Bad Request", "Invalid JSON data")
        if not isinstance(request, dict) or not isinstance(request.get("params", {}), dict):
            entry["status"] = 400
            return self._send_page(400, "Bad Request", "Invalid JSON-RPC data")
        params = request.get("params", {})
        rid = request.get("id")
        service, method = params.get("service"), params.get("method")
        args = params.get("args") or []
        entry.update(service=service, method=method)
        if path == "/jsonrpc" and service == "object" and len(args) >= 5:
            entry.update(model=args[3], model_method=args[4])
        fault_key = entry.get("model_method") or method or "version_info"
        if self._apply_faults(str(fault_key), "jsonrpc", rid):
            entry["status"] = "fault"
            return
        entry["status"] = 200
        headers = None
        try:
            if path == "/web/webclient/version_info":
                result: Any = version_info(self.server.db.version)
                headers = {"Set-Cookie": f"session_id={secrets.token_hex(20)}; Expires=Sat, 01 Jan 2050 "
                                         f"00:00:00 GMT; Max-Age=604800; HttpOnly; Path=/"}
            else:
                result = self._dispatch(service, method, args)
            if isinstance(result, list) and entry.get("model_method") in ("search_read", "read"):
                delay = self.server.faults.slow_page(len(result))
                if delay:
                    time.sleep(delay)  # simulated slow page
        except OdooError as exc:
            entry["error"] = exc.name
            return self._send_json(200, {"jsonrpc": "2.0", "id": rid, "error": self._error(exc)})
        except Exception as exc:  # an unexpected simulator bug still answers like Odoo does
            entry["error"] = f"builtins.{type(exc).__name__}"
            err = BuiltinError(type(exc).__name__, str(exc))
            return self._send_json(200, {"jsonrpc": "2.0", "id": rid, "error": self._error(err)})
        if reply_delay := self.server.faults.reply_delay(str(fault_key)):
            time.sleep(reply_delay)  # the effect is done; the answer comes too late (fault injection)
        payload: dict[str, Any] = {"jsonrpc": "2.0", "id": rid}
        if result is not None:  # Odoo 17 omits `result` for None
            payload["result"] = result
        self._send_json(200, payload, headers)

    def _error(self, exc: OdooError) -> dict[str, Any]:
        code = 0 if self.server.db.version >= 19 else 200
        debug = (f"Traceback (most recent call last):\n  File \"/opt/odoo/odoo/http.py\", line 1722, in "
                 f"_serve_db\n    return service_model.retrying(self._serve_ir_http, self.env)\n"
                 f"{exc.name.split('.')[-1]}: {exc.message}\n")
        return {"code": code, "message": "Odoo Server Error",
                "data": {"name": exc.name, "debug": debug, "message": exc.message,
                         "arguments": [exc.message], "context": {}}}

    def _dispatch(self, service: Any, method: Any, args: list[Any]) -> Any:
        srv = self.server
        db = srv.db
        if service == "common":
            if method == "version":
                return version_info(db.version)
            if method == "login":
                return srv.login(*args[:3])
            if method == "authenticate":
                return srv.login(*args[:3])
            if method == "about":
                return "See http://openerp.com"
            raise BuiltinError("Exception", f"Method not found: {method}")
        if service == "db":
            if method == "list":
                return [db.name]
            if method == "server_version":
                return f"{db.version}.0"
            if method == "db_exist":
                return bool(args) and args[0] == db.name
            raise BuiltinError("KeyError", f"'exp_{method}'")
        if service == "object":
            if method not in ("execute", "execute_kw"):
                raise BuiltinError("NameError", f"Method not available {method}")
            if len(args) < 5:
                raise BuiltinError("IndexError", "list index out of range")
            dbname, uid, password, model, name = args[:5]
            uid = srv.check(dbname, uid, password)
            if method == "execute":
                call_args, kwargs = list(args[5:]), {}
            else:
                call_args = list(args[5]) if len(args) > 5 and args[5] else []
                kwargs = dict(args[6]) if len(args) > 6 and args[6] else {}
            result = Env(db, uid).call(str(model), str(name), call_args, kwargs)
            return rpc_result(result, method=str(name), args=call_args, kwargs=kwargs, protocol="jsonrpc",
                              version=db.version)
        raise BuiltinError("KeyError", repr(service))

    # -- JSON-2 (Odoo 19) -----------------------------------------------------------------

    def _json2_error(self, status: int, name: str, message: str, entry: dict[str, Any],
                     headers: dict[str, str] | None = None) -> None:
        """`Json2Dispatcher.handle_error`'s body: `serialize_exception`, werkzeug errors with (text, code)."""
        entry.update(status=status, error=name)
        args: list[Any] = [message, status] if name.startswith("werkzeug") else [message]
        self._send_json(status, {"name": name, "message": message, "arguments": args, "context": {},
                                 "debug": ""}, headers)

    def _json2(self, path: str, body: bytes, entry: dict[str, Any]) -> None:
        """`/json/2/<model>/<method>` as Odoo 19 answers it (odoo.md §8, §9 items 1-2).

        Checks in Odoo's order: database (404 HTML page), content type (415 HTML page),
        bearer key (401 JSON), body (400), model and method (404 NotFound), arguments
        (422 UnprocessableEntity), then the call: a `UserError`-family error gets its own
        `http_status` (UserError/ValidationError 422, AccessError/AccessDenied 403,
        MissingError 404), anything else 500. A recordset result becomes its id list.
        """
        srv = self.server
        parts = path.split("/")
        if len(parts) != 5 or not parts[3] or not parts[4]:
            entry["status"] = 404
            return self._send_page(404, "Not Found", "The requested URL was not found on the server.")
        model, method = parts[3], parts[4]
        entry.update(service="json2", model=model, model_method=method)
        if self._apply_faults(method, "json2"):
            entry["status"] = "fault"
            return
        dbname = self.headers.get("X-Odoo-Database")
        if dbname is not None and dbname != srv.db.name:
            # Routing never reaches the dispatcher: werkzeug's own HTML page, not JSON.
            entry.update(status=404, error="unknown database")
            return self._send_page(404, "Not Found", "The requested URL was not found on the server. If you "
                                   "entered the URL manually please check your spelling and try again.")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if body and ctype != "application/json":  # Json2Dispatcher.is_compatible_with
            entry.update(status=415, error="content type")
            return self._send_page(415, "Unsupported Media Type", "The server does not support the media type "
                                   "transmitted in the request.")
        challenge = {"WWW-Authenticate": "bearer"}
        header = self.headers.get("Authorization")
        if not header:
            return self._json2_error(401, "werkzeug.exceptions.Unauthorized",
                                     'User not authenticated, use the "Authorization" header', entry, challenge)
        scheme, _, key = header.partition(" ")
        uid = srv.db.api_keys.get(key.strip()) if scheme.lower() == "bearer" else None
        if uid is None or srv.faults.auth_revoked:
            return self._json2_error(401, "werkzeug.exceptions.Unauthorized", "Invalid apikey", entry, challenge)
        try:
            params = json.loads(body) if body else None
        except ValueError as exc:
            return self._json2_error(400, "werkzeug.exceptions.BadRequest",
                                     f"could not parse the body as json: {exc}", entry)
        if params is None:
            params = {}  # `null` or no body: no parameters (then 422 for a missing one)
        if not isinstance(params, dict):
            return self._json2_error(400, "werkzeug.exceptions.BadRequest", "the body must be a JSON object",
                                     entry)
        ids = params.pop("ids", None) or []
        if model not in srv.db.tables:
            return self._json2_error(404, "werkzeug.exceptions.NotFound", f"the model {model!r} does not exist",
                                     entry)
        if method not in RECORD_METHODS and ids:
            return self._json2_error(422, "werkzeug.exceptions.UnprocessableEntity",
                                     f"cannot call {model}.{method} with ids", entry)
        try:
            env = Env(srv.db, uid)
            args = [ids] if method in RECORD_METHODS else []
            result = rpc_result(env.call(model, method, args, params), method=method, args=[], kwargs=params,
                                protocol="json2", version=srv.db.version)
            if isinstance(result, list) and method in ("search_read", "read"):
                delay = srv.faults.slow_page(len(result))
                if delay:
                    time.sleep(delay)
        except UnknownMethod:
            return self._json2_error(404, "werkzeug.exceptions.NotFound",
                                     f"The method '{model}.{method}' does not exist", entry)
        except BadArguments as exc:
            return self._json2_error(422, "werkzeug.exceptions.UnprocessableEntity", exc.message, entry)
        except OdooError as exc:
            return self._json2_error(exc.http_status, exc.name, exc.message, entry)
        except Exception as exc:
            return self._json2_error(500, f"builtins.{type(exc).__name__}", str(exc), entry)
        entry["status"] = 200
        self._send_json(200, result)

    # -- control endpoints (not Odoo) -----------------------------------------------------

    def _control(self, verb: str, path: str, body: bytes = b"") -> None:
        srv = self.server
        if path == "/__sim__/faults":
            return self._send_json(*fault_control(srv.faults, verb, body))
        if path == "/__sim__/requests":
            if verb == "DELETE":
                srv.log.clear()
            return self._send_json(200, srv.log.entries() if verb == "GET" else [])
        if path == "/__sim__/webhooks":
            # Odoo's automation rules sending a webhook: POST {model, url, name, trigger,
            # fields, domain, pre_domain}; one that Odoo would not save is refused with 400.
            from siteops.sim.odoo.webhooks import WebhookRule, rules, validate

            if verb == "DELETE":
                rules(srv.db).clear()
            elif verb == "POST":
                try:
                    rule = WebhookRule(**json.loads(body or b"{}"))
                    with srv.db.lock:
                        validate(srv.db, rule)
                        rules(srv.db).append(rule)
                except (ValueError, TypeError) as exc:
                    return self._send_json(400, {"error": str(exc)})
            return self._send_json(200, [r.as_dict() for r in rules(srv.db)])
        if path == "/__sim__/health":
            counts = {name: len(t) for name, t in srv.db.tables.items()}
            return self._send_json(200, {"ok": True, "db": srv.db.name, "version": srv.db.version,
                                         "records": counts})
        if path == "/__sim__/truth" and srv.truth is not None:
            return self._send_json(200, srv.truth)
        self._send_page(404, "Not Found", "The requested URL was not found on the server.")


class OdooSim(BackgroundSim):
    """A simulator running in a background thread: `with OdooSim(db) as sim: sim.url`."""

    server: OdooHTTPServer
    thread_name = "odoo-sim"

    def __init__(self, db: Database, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(OdooHTTPServer((host, port), db))
        self.db = db

    @property
    def faults(self) -> Faults:
        return self.server.faults
