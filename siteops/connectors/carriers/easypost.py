"""The EasyPost adapter, through the official `easypost` SDK (edi-carriers.md §5.1).

`EasyPostClient(api_key, api_base=...)` mounts `requests.adapters.HTTPAdapter(max_retries=3)`
on its base URL, and urllib3's `Retry` then retries by itself: connection errors on any
method, and 429/503 answers that carry `Retry-After` on GET (it sleeps the Retry-After).
siteops's policy must be the only retry layer (every attempt visible, the shared rate
limit honoured), so we mount an adapter with `Retry(0)` on the same prefix, which
replaces the SDK's. The SDK does not expose response headers on its errors; a response
hook keeps the last `Retry-After` of this thread for the 429 we raise.

Errors leave as `siteops.connectors.errors` only: 5xx, timeouts, connection errors and
`SHIPMENT.PURCHASE.IN_PROGRESS` retryable; 429 `RateLimited`; 401/403 `AuthError`;
402 and other 4xx permanent (`NotFound` for 404). A buy refused with
`SHIPMENT.POSTAGE.EXISTS` means the label was bought before: the adapter fetches the
shipment and returns it (the carrier's own dedupe on the shipment id).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import easypost
import requests
from easypost.errors import EasyPostError, SignatureVerificationError
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from siteops.connectors.carriers.config import CarrierAccount
from siteops.connectors.carriers.model import (
    Rate,
    Shipment,
    ShipmentRequest,
    TrackingUpdate,
    TrackStatus,
)
from siteops.connectors.errors import AuthError, PermanentError, RateLimited, RetryableError

T = TypeVar("T")
SYSTEM = "easypost"
OZ_PER_KG = 35.27396
CM_PER_IN = 2.54
STATUS = {
    "pre_transit": TrackStatus.PRE_TRANSIT, "in_transit": TrackStatus.IN_TRANSIT,
    "available_for_pickup": TrackStatus.IN_TRANSIT, "out_for_delivery": TrackStatus.OUT_FOR_DELIVERY,
    "delivered": TrackStatus.DELIVERED, "return_to_sender": TrackStatus.RETURNED,
    "failure": TrackStatus.EXCEPTION, "cancelled": TrackStatus.EXCEPTION, "error": TrackStatus.UNKNOWN,
    "unknown": TrackStatus.UNKNOWN,
}


class NotFound(PermanentError):
    not_found = True


def neutral_status(status: Any) -> TrackStatus:
    return STATUS.get(str(status or "unknown"), TrackStatus.UNKNOWN)


def _error_details(exc: EasyPostError) -> tuple[str, str]:
    """(code, "field: message; ...") from EasyPost's error envelope, or empty strings."""
    try:
        error = json.loads(getattr(exc, "http_body", "") or "{}").get("error", {})
        fields = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in error.get("errors") or []
                           if isinstance(e, dict))
        return str(error.get("code") or ""), fields
    except (ValueError, AttributeError, TypeError):
        return "", ""


def no_retry_client(api_key: str, api_base: str, timeout: float) -> easypost.EasyPostClient:
    """The SDK's client with its urllib3 retries replaced by none (see the module docstring)."""
    client = easypost.EasyPostClient(api_key, api_base=api_base, timeout=timeout)  # type: ignore[arg-type]
    session: requests.Session = client._requests_session
    prefix = api_base.split("/v2")[0]
    # total=False: no retry of any kind, and the first error is raised as it is (a read
    # timeout stays a timeout instead of becoming "max retries exceeded").
    session.mount(prefix, HTTPAdapter(max_retries=Retry(total=False, respect_retry_after_header=False)))
    return client


def tracking_update(t: Any, source: str, event_id: str | None = None) -> TrackingUpdate:
    """An SDK Tracker object -> the neutral update (the carrier's own status kept alongside)."""
    details = list(getattr(t, "tracking_details", None) or [])
    last = details[-1] if details else None
    return TrackingUpdate(
        tracking_code=str(t.tracking_code), status=neutral_status(getattr(t, "status", None)),
        carrier_status=str(getattr(t, "status", "unknown")), detail=getattr(t, "status_detail", None),
        message=getattr(last, "message", None) if last is not None else None,
        occurred_at=getattr(last, "datetime", None) if last is not None else getattr(t, "updated_at", None),
        tracker_id=getattr(t, "id", None), event_id=event_id, source=source)


def parse_webhook(headers: Mapping[str, str], body: bytes, secret: str) -> TrackingUpdate | None:
    """Verify the signature (the SDK's own check) and read a tracker event; None for other events.

    Needs no API key (an ingress has only the webhook secret). Raises `AuthError` on a
    missing or wrong signature, `PermanentError` on a body that is not an EasyPost event.
    """
    signature = next((v for k, v in headers.items() if k.lower() == "x-hmac-signature"), None)
    try:
        event = easypost.util.validate_webhook(body, {"X-Hmac-Signature": signature} if signature else {}, secret)
    except SignatureVerificationError as exc:
        raise AuthError(str(getattr(exc, "message", exc)), system=SYSTEM, operation="webhook") from None
    except ValueError as exc:
        raise PermanentError(f"webhook body is not JSON: {exc}", system=SYSTEM, operation="webhook") from None
    if not isinstance(event, dict) or not isinstance(event.get("result"), dict):
        raise PermanentError("webhook body is not an EasyPost event", system=SYSTEM, operation="webhook")
    if not str(event.get("description", "")).startswith("tracker."):
        return None
    result = event["result"]
    if not result.get("tracking_code"):
        raise PermanentError("tracker event without a tracking_code", system=SYSTEM, operation="webhook")
    tracker = easypost.easypost_object.convert_to_easypost_object(result)
    return tracking_update(tracker, "webhook", event_id=str(event.get("id") or "") or None)


class EasyPostCarrier:
    def __init__(self, account: CarrierAccount) -> None:
        self.account = account
        self.name = account.name
        self._local = threading.local()
        self._client = no_retry_client(account.api_key(), account.base_url, account.timeout)
        self._client.subscribe_to_response_hook(self._remember_headers)

    def _remember_headers(self, **kwargs: Any) -> None:
        headers = kwargs.get("headers") or {}
        self._local.retry_after = headers.get("Retry-After") if hasattr(headers, "get") else None

    # -- the one call path ------------------------------------------------------------------

    def _call(self, operation: str, fn: Callable[[], T]) -> T:
        self._local.retry_after = None
        try:
            return fn()
        except EasyPostError as exc:
            raise self._classify(exc, operation) from None
        except (requests.RequestException, OSError, ValueError) as exc:  # defensive: the SDK wraps most
            raise RetryableError(f"{type(exc).__name__}: {exc}", system=SYSTEM, operation=operation) from None

    def _classify(self, exc: EasyPostError, operation: str) -> Exception:
        status = getattr(exc, "http_status", None)
        code, fields = _error_details(exc)
        message = f"{code + ': ' if code else ''}{getattr(exc, 'message', '') or exc}{f' ({fields})' if fields else ''}"
        if status is not None:
            message = f"HTTP {status} {message}"
        kw: dict[str, Any] = {"system": SYSTEM, "operation": operation}
        if isinstance(exc, easypost.errors.TimeoutError):
            return RetryableError(f"timed out: {message}", **kw)
        if status == 429:
            try:
                delay = float(self._local.retry_after or 1.0)
            except ValueError:
                delay = 1.0
            return RateLimited(message, retry_after=delay, **kw)
        if code == "SHIPMENT.PURCHASE.IN_PROGRESS":
            return RetryableError(message, **kw)
        if status is None or status >= 500 or status == 408:
            return RetryableError(message, **kw)  # connection errors, garbled bodies, 5xx
        if status in (401, 403):
            return AuthError(message, **kw)
        if status == 404:
            return NotFound(message, **kw)
        err = PermanentError(message, **kw)
        err.code = code  # type: ignore[attr-defined]
        return err

    # -- shapes -----------------------------------------------------------------------------

    @staticmethod
    def _address(a: Any) -> dict[str, Any]:
        return {k: v for k, v in vars(a).items() if v not in (None, "")}

    def _shipment(self, s: Any) -> Shipment:
        rates = tuple(Rate(id=r.id, carrier=r.carrier, service=r.service, amount=str(r.rate),
                           currency=str(getattr(r, "currency", "USD"))) for r in (getattr(s, "rates", None) or []))
        selected = getattr(s, "selected_rate", None)
        tracker = getattr(s, "tracker", None)
        label = getattr(s, "postage_label", None)
        return Shipment(
            id=s.id, reference=getattr(s, "reference", None), rates=rates,
            tracking_code=getattr(s, "tracking_code", None) or None,
            tracker_id=getattr(tracker, "id", None) if tracker is not None else None,
            carrier=getattr(selected, "carrier", None) if selected else None,
            service=getattr(selected, "service", None) if selected else None,
            amount=str(selected.rate) if selected else None,
            currency=getattr(selected, "currency", None) if selected else None,
            label_url=getattr(label, "label_url", None) if label is not None else None,
            status=neutral_status(getattr(tracker, "status", None)) if tracker is not None else TrackStatus.UNKNOWN,
        )

    # -- the Carrier interface --------------------------------------------------------------

    def create_shipment(self, request: ShipmentRequest) -> Shipment:
        p = request.parcel
        parcel: dict[str, Any] = {"weight": round(max(0.1, p.weight_kg * OZ_PER_KG), 1)}
        for name, value in (("length", p.length_cm), ("width", p.width_cm), ("height", p.height_cm)):
            if value:
                parcel[name] = round(value / CM_PER_IN, 1)
        return self._call("shipment.create", lambda: self._shipment(self._client.shipment.create(
            reference=request.reference, to_address=self._address(request.ship_to),
            from_address=self._address(request.ship_from), parcel=parcel,
            options={"label_format": "PNG", **request.options})))

    def buy(self, shipment: Shipment, service: str | None = None) -> Shipment:
        rates = [r for r in shipment.rates if service is None or r.service == service]
        if not rates:
            raise PermanentError(f"no rate for service {service!r} on shipment {shipment.id}", system=SYSTEM,
                                 operation="shipment.buy")
        cheapest = min(rates, key=lambda r: float(r.amount))
        try:
            return self._call("shipment.buy", lambda: self._shipment(
                self._client.shipment.buy(shipment.id, rate={"id": cheapest.id})))
        except PermanentError as exc:
            if getattr(exc, "code", "") == "SHIPMENT.POSTAGE.EXISTS":
                return self.retrieve(shipment.id)  # bought before (our earlier attempt): the same label
            raise

    def retrieve(self, shipment_id: str) -> Shipment:
        return self._call("shipment.retrieve", lambda: self._shipment(self._client.shipment.retrieve(shipment_id)))

    def find_by_reference(self, reference: str) -> Shipment | None:
        """The shipment we created with this reference (the bought one first), or None."""
        try:
            return self._call("shipment.retrieve", lambda: self._shipment(
                self._client.shipment.retrieve(quote(reference, safe=""))))
        except NotFound:
            return None

    def list_bought(self, page_size: int = 100) -> list[Shipment]:
        """Every shipment with a label, newest first (the API's `purchased=true` list, paged)."""
        def pages() -> list[Shipment]:
            page = self._client.shipment.all(purchased=True, page_size=page_size)
            found = [self._shipment(s) for s in page["shipments"]]
            while page.get("has_more") and page["shipments"]:
                page = self._client.shipment.get_next_page(page, page_size=page_size)
                found += [self._shipment(s) for s in page["shipments"]]
            return found

        return self._call("shipment.list", pages)

    def void(self, shipment_id: str) -> Shipment:
        return self._call("shipment.refund", lambda: self._shipment(self._client.shipment.refund(shipment_id)))

    def track(self, tracker_id: str) -> TrackingUpdate:
        return self._call("tracker.retrieve",
                          lambda: tracking_update(self._client.tracker.retrieve(tracker_id), "poll"))

    def parse_webhook(self, headers: Mapping[str, str], body: bytes, secret: str) -> TrackingUpdate | None:
        return parse_webhook(headers, body, secret)


_lock = threading.Lock()
_carriers: dict[tuple[int, str, str], EasyPostCarrier] = {}


def get_carrier(account: CarrierAccount) -> EasyPostCarrier:
    """This process's adapter for the account (built after fork; rebuilt when the URL changes)."""
    key = (os.getpid(), account.name, account.base_url)
    with _lock:
        carrier = _carriers.get(key)
        if carrier is None:
            if any(k[0] != key[0] for k in _carriers):
                _carriers.clear()  # inherited from a parent process
            carrier = _carriers[key] = EasyPostCarrier(account)
        return carrier


def reset_carriers() -> None:
    with _lock:
        _carriers.clear()
