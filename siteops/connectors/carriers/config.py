"""Carrier accounts: which account a site ships with, and how to reach it.

The site's policy parameter `carrier` (site-tunable in sites.toml) names the account, e.g.
`simship`; every account is an EasyPost account here (the only adapter so far). Where it
lives and its secrets come from the environment only, never from task arguments:

- `SITEOPS_EASYPOST_URL` (default `https://api.easypost.com/v2`);
- `SITEOPS_EASYPOST_<ACCOUNT>_API_KEY` or `..._API_KEY_FILE`, falling back to
  `SITEOPS_EASYPOST_API_KEY` or `SITEOPS_EASYPOST_API_KEY_FILE`;
- `SITEOPS_EASYPOST_WEBHOOK_SECRET` or `_FILE`: the secret tracking webhooks are signed with
  (one of a pair, never both: siteops.config.secrets);
- `SITEOPS_CARRIER_TIMEOUT` (seconds per request, default 20);
- `SITEOPS_CARRIER_RATE_LIMIT` (requests/s per account, shared by every worker, default 10;
  `SITEOPS_CARRIER_<ACCOUNT>_RATE_LIMIT` per account) and `SITEOPS_CARRIER_MAX_WAIT`
  (longest in-process wait for a rate-limit slot before the task retries later, default 2 s);
- circuit breaker: `SITEOPS_CARRIER_BREAKER_WINDOW` (s, default 30), `_MIN_CALLS` (10),
  `_FAILURE_RATIO` (0.8), `_COOLDOWN` (s, default 30).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from siteops.config.secrets import SecretError, read_secret
from siteops.connectors.errors import AuthError, PermanentError

DEFAULT_EASYPOST_URL = "https://api.easypost.com/v2"
ACCOUNT = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise PermanentError(f"{name}: expected a number, got {raw!r}", system="carrier") from None


def _secret(*names: str) -> str | None:
    """The secret of the first of these names that has one (NAME or NAME_FILE: siteops.config.secrets)."""
    for name in names:
        try:
            value = read_secret(name)
        except SecretError as exc:
            raise AuthError(str(exc), system="carrier") from None
        if value:
            return value
    return None


@dataclass(frozen=True)
class BreakerConfig:
    window_seconds: float = 30.0
    min_calls: int = 10
    failure_ratio: float = 0.8
    cooldown_seconds: float = 30.0


@dataclass(frozen=True)
class CarrierAccount:
    name: str
    adapter: str
    base_url: str
    timeout: float
    rate_per_second: float
    max_wait: float
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    # The key is read when a client is built (never stored in a repr, a log or a task).
    _key_env: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"CarrierAccount({self.name!r}, {self.adapter}, {self.base_url})"

    def api_key(self) -> str:
        key = _secret(*self._key_env)
        if not key:
            raise AuthError(f"no API key for carrier account {self.name!r}: set {self._key_env[-1]} "
                            f"(or {self._key_env[0]}, or a _FILE variant)", system="carrier")
        return key


def account(name: str) -> CarrierAccount:
    """The account named by a site's `carrier` policy parameter."""
    if not isinstance(name, str) or not ACCOUNT.match(name):
        raise PermanentError(f"carrier account {name!r}: expected a lower-case name like 'simship'",
                             system="carrier")
    env = re.sub(r"[^A-Z0-9]", "_", name.upper())
    rate = _env_float(f"SITEOPS_CARRIER_{env}_RATE_LIMIT", _env_float("SITEOPS_CARRIER_RATE_LIMIT", 10.0))
    return CarrierAccount(
        name=name, adapter="easypost",
        base_url=(os.environ.get("SITEOPS_EASYPOST_URL") or DEFAULT_EASYPOST_URL).rstrip("/"),
        timeout=_env_float("SITEOPS_CARRIER_TIMEOUT", 20.0),
        rate_per_second=rate, max_wait=_env_float("SITEOPS_CARRIER_MAX_WAIT", 2.0),
        breaker=BreakerConfig(
            window_seconds=_env_float("SITEOPS_CARRIER_BREAKER_WINDOW", 30.0),
            min_calls=int(_env_float("SITEOPS_CARRIER_BREAKER_MIN_CALLS", 10)),
            failure_ratio=_env_float("SITEOPS_CARRIER_BREAKER_FAILURE_RATIO", 0.8),
            cooldown_seconds=_env_float("SITEOPS_CARRIER_BREAKER_COOLDOWN", 30.0)),
        _key_env=(f"SITEOPS_EASYPOST_{env}_API_KEY", "SITEOPS_EASYPOST_API_KEY"),
    )


def account_for_site(site: str) -> CarrierAccount:
    from siteops.config.sites import get_registry

    return account(str(get_registry().get(site).params.get("carrier", "")))


def webhook_secret() -> str:
    secret = _secret("SITEOPS_EASYPOST_WEBHOOK_SECRET")
    if not secret:
        raise AuthError("SITEOPS_EASYPOST_WEBHOOK_SECRET (or _FILE) is not set", system="carrier")
    return secret
