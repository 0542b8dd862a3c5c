"""The ingress application: routes, limits, authentication, and the publish that answers.

    POST /hooks/odoo/<SITE>/<token>   an Odoo automation rule's webhook (odoo.md §4.1)
    POST /hooks/<name>                a mounted handler (carrier tracking webhooks, ...)
    POST /messages                    an inbound customer message (siteops/triage), token of
                                      source `messages` as `Authorization: Bearer` or `X-Siteops-Token`
    GET  /healthz                     liveness (no broker round trip)

Every answer is JSON. 200 means the task message is in the broker: Odoo's webhook action
has a 1 s timeout and ignores failures, so an answer before the publish could lose the
event, and a 503 after a failed publish at least leaves a line in Odoo's log (the
catch-up scan, `siteops.events.catch_up`, finds whatever was lost either way).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from siteops.ingress.auth import load_secrets, presented_token, token_ok
from siteops.ingress.odoo import BadEvent, parse_event

log = logging.getLogger(__name__)

#: Larger bodies are refused while they stream in, before they are held in memory.
MAX_BODY = 1024 * 1024
#: Odoo 17 posts before its commit (odoo.md §4.1): give it a moment before re-reading.
EVENT_DELAY_SECONDS = 2.0
EVENT_TASK = "siteops.events.record_changed"

REQUESTS = Counter("siteops_ingress_requests_total", "Ingress requests by route and outcome.",
                   ["route", "outcome"])
LATENCY = Histogram("siteops_ingress_request_duration_seconds", "Ingress request time, publish included.",
                    ["route"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))

#: A mounted handler: (raw body, lower-cased headers) -> (HTTP status, JSON answer).
#: It authenticates its caller itself (a carrier signs its bodies with its own scheme).
Hook = Callable[[bytes, Mapping[str, str]], tuple[int, dict[str, Any]]]


class TooLarge(Exception):
    pass


@dataclass
class Ingress:
    """What the routes need, injectable for tests: the publish function and the sites."""

    publish: Callable[[str, list[Any], dict[str, Any]], str]
    site_codes: tuple[str, ...]
    secrets: dict[str, str]
    hooks: dict[str, Hook]
    #: Store an inbound message once and enqueue its triage -> (row id, created, task id).
    #: None: the store and the publish above (siteops.triage.mailbox.store_and_enqueue).
    accept_message: Callable[[Any], tuple[int, bool, str | None]] | None = None

    def site(self, given: str) -> str | None:
        for code in self.site_codes:
            if code.lower() == given.lower():
                return code
        return None


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise TooLarge()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise TooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(route: str, outcome: str, status: int, started: float, **body: Any) -> JSONResponse:
    REQUESTS.labels(route, outcome).inc()
    LATENCY.labels(route).observe(time.perf_counter() - started)
    return JSONResponse({"outcome": outcome, **body}, status_code=status)


def build_app(ingress: Ingress) -> Starlette:
    async def odoo_hook(request: Request) -> JSONResponse:
        started, route = time.perf_counter(), "odoo"
        # Authenticate before anything else says whether the site exists.
        if not token_ok(ingress.secrets.get("odoo"), request.path_params["token"]):
            return _answer(route, "unauthorized", 401, started, error="unknown or wrong token")
        given = request.path_params["site"]
        site = ingress.site(given)
        if site is None:
            return _answer(route, "unknown_site", 404, started,
                           error=f"unknown site {given!r}; known: {', '.join(ingress.site_codes)}")
        try:
            event = parse_event(await _body(request))
        except TooLarge:
            return _answer(route, "too_large", 413, started, error=f"body over {MAX_BODY} bytes")
        except BadEvent as exc:
            return _answer(route, "bad_request", 400, started, error=str(exc))
        try:
            task_id = await run_in_threadpool(
                ingress.publish, EVENT_TASK, [site, event.model, event.record_id],
                {"countdown": EVENT_DELAY_SECONDS},
            )
        except Exception as exc:  # the broker did not take it: say so, Odoo logs the failure
            log.error("ingress: could not enqueue %s %s#%d for %s: %s", EVENT_TASK, event.model,
                      event.record_id, site, type(exc).__name__)
            return _answer(route, "broker_unavailable", 503, started, error="could not enqueue; retry later")
        return _answer(route, "accepted", 200, started, task_id=task_id, site=site,
                       model=event.model, record_id=event.record_id)

    async def mounted(request: Request) -> JSONResponse:
        started, name = time.perf_counter(), request.path_params["name"]
        hook = ingress.hooks.get(name)
        if hook is None:
            return _answer("unknown", "not_found", 404, started, error=f"no hook {name!r}")
        try:
            body = await _body(request)
        except TooLarge:
            return _answer(name, "too_large", 413, started, error=f"body over {MAX_BODY} bytes")
        headers = {k.lower(): v for k, v in request.headers.items()}
        status, answer = await run_in_threadpool(hook, body, headers)
        outcome = str(answer.pop("outcome", "accepted" if status < 300 else "refused"))
        return _answer(name, outcome, status, started, **answer)

    async def message(request: Request) -> JSONResponse:
        # Customer messages hold personal data: nothing of the body is logged or answered.
        from siteops.triage.intake import BadMessage, parse_json

        started, route = time.perf_counter(), "messages"
        headers = {k.lower(): v for k, v in request.headers.items()}
        if not token_ok(ingress.secrets.get("messages"), presented_token(headers)):
            return _answer(route, "unauthorized", 401, started, error="unknown or wrong token")
        try:
            inbound = parse_json(await _body(request))
        except TooLarge:
            return _answer(route, "too_large", 413, started, error=f"body over {MAX_BODY} bytes")
        except BadMessage as exc:
            return _answer(route, "bad_request", 400, started, error=str(exc))
        accept = ingress.accept_message or _default_accept(ingress)
        try:
            row, created, task_id = await run_in_threadpool(accept, inbound)
        except Exception as exc:  # store or broker down: the sender retries; stored once by id
            log.error("ingress: could not store or enqueue a message: %s", type(exc).__name__)
            return _answer(route, "unavailable", 503, started, error="could not store or enqueue; retry later")
        return _answer(route, "accepted" if created else "duplicate", 200, started, message=row, task_id=task_id)

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(routes=[
        Route("/hooks/odoo/{site}/{token}", odoo_hook, methods=["POST"]),
        Route("/hooks/{name}", mounted, methods=["POST"]),
        Route("/messages", message, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ])


def _default_accept(ingress: Ingress) -> Callable[[Any], tuple[int, bool, str | None]]:
    from siteops.services.triage import default_site
    from siteops.triage.mailbox import store_and_enqueue

    def accept(inbound: Any) -> tuple[int, bool, str | None]:
        # The policy's default site until linking (in the task) says which site owns it.
        return store_and_enqueue(inbound, default_site(), lambda name, args: ingress.publish(name, args, {}))

    return accept


#: Hooks that other parts mount (name -> handler); e.g. the carrier connector's
#: tracking webhooks register themselves here when their module is imported.
HOOKS: dict[str, Hook] = {}


def mount(name: str) -> Callable[[Hook], Hook]:
    def register(fn: Hook) -> Hook:
        HOOKS[name] = fn
        return fn

    return register


def celery_publish(app: Any) -> Callable[[str, list[Any], dict[str, Any]], str]:
    """Publish through the app's normal path (routing by task name, secret refusal), retrying
    the broker connection only briefly: the caller (Odoo) gives up after one second anyway.
    The ingress never imports the task modules: the router needs only the name."""

    def publish(name: str, args: list[Any], options: dict[str, Any]) -> str:
        result = app.send_task(name, args=args, retry=True,
                               retry_policy={"max_retries": 2, "interval_start": 0.05,
                                             "interval_step": 0.1, "interval_max": 0.2}, **options)
        return str(result.id)

    return publish


def production_app() -> Starlette:
    """The app `siteops ingress` serves: the real broker, sites.toml, secrets from the env."""
    from siteops.celery_app import app as celery
    from siteops.config.sites import get_registry
    from siteops.services.carrier_webhooks import mount_on_ingress

    mount_on_ingress()  # the carrier's signed tracking webhooks: POST /hooks/easypost
    secrets = load_secrets()
    if not secrets:
        log.warning("ingress: no source has a secret (SITEOPS_INGRESS_ODOO_TOKEN...); every hook answers 401")
    return build_app(Ingress(publish=celery_publish(celery), site_codes=get_registry().codes,
                             secrets=secrets, hooks=HOOKS))
