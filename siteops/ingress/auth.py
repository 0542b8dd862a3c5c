"""Per-source secrets of the ingress, compared in constant time.

Odoo's "Send Webhook Notification" action sends no signature and no auth header (odoo.md
§4.1), so Odoo's secret travels in the URL path (`/hooks/odoo/<SITE>/<token>`); other
sources may present it as `Authorization: Bearer <token>` or `X-Siteops-Token`. Secrets
come from the environment (`SITEOPS_INGRESS_<SOURCE>_TOKEN`, or `..._TOKEN_FILE` naming a
file), never from sites.toml or the repository.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from siteops.config.secrets import read_secret

SOURCES = ("odoo", "messages")


def _env_name(source: str) -> str:
    return f"SITEOPS_INGRESS_{source.upper()}_TOKEN"


def load_secret(source: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The source's token, or None when it has none (that source is then switched off); a
    misconfigured one (both forms set, an unreadable or empty file) raises SecretError."""
    return read_secret(_env_name(source), environ=environ)


def load_secrets(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The configured sources; a source without a secret is switched off (answers 404)."""
    found = {}
    for source in SOURCES:
        secret = load_secret(source, environ)
        if secret is not None:
            found[source] = secret
    return found


def token_ok(expected: str | None, presented: str | None) -> bool:
    """Constant time whatever is presented: both sides are hashed to the same length first,
    so neither the secret's length nor the position of the first wrong byte shows in the
    response time, and an unconfigured source costs the same as a wrong token."""
    if expected is None or not presented:
        hmac.compare_digest(b"\0" * 32, hashlib.sha256((presented or "").encode()).digest())
        return False
    return hmac.compare_digest(hashlib.sha256(expected.encode()).digest(),
                               hashlib.sha256(presented.encode()).digest())


def presented_token(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return headers.get("x-siteops-token") or None
