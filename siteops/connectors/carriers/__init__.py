"""Carrier connectors: a carrier-neutral model (`model`), the EasyPost adapter over the
official SDK (`easypost`), accounts from configuration (`config`), and the rate limit and
circuit breaker every worker shares per account (`guard`)."""

from siteops.connectors.carriers.config import CarrierAccount, account, account_for_site
from siteops.connectors.carriers.model import Carrier, Shipment, ShipmentRequest, TrackingUpdate, TrackStatus

__all__ = ["Carrier", "CarrierAccount", "Shipment", "ShipmentRequest", "TrackStatus", "TrackingUpdate", "account",
           "account_for_site"]
