"""Connection settings from the environment; secrets never come from task arguments."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from siteops.config.secrets import SecretError, read_secret
from siteops.connectors.errors import PermanentError

PROTOCOLS = ("auto", "jsonrpc", "json2")


@dataclass(frozen=True)
class OdooConfig:
    url: str
    db: str
    login: str
    password: str = field(default="", repr=False)
    api_key: str = field(default="", repr=False)
    protocol: str = "auto"  # auto | jsonrpc | json2
    timeout: float = 30.0  # seconds, on every call
    version: str | None = None  # e.g. "17.0": skips the version probe

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise PermanentError(f"SITEOPS_ODOO_PROTOCOL must be one of {PROTOCOLS}, not {self.protocol!r}",
                                 system="odoo", operation="config")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PermanentError(f"SITEOPS_ODOO_URL must be http(s)://host[:port], not {self.url!r}",
                                 system="odoo", operation="config")
        if parts.path.strip("/"):
            # odoorpc joins paths onto host:port; a reverse-proxy prefix would be silently lost.
            raise PermanentError("SITEOPS_ODOO_URL must not have a path (odoorpc does not support a prefix)",
                                 system="odoo", operation="config")

    @property
    def secret(self) -> str:
        """What authenticates RPC calls: the API key when there is one (needed with 2FA)."""
        return self.api_key or self.password

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OdooConfig:
        env = os.environ if env is None else env
        missing = [k for k in ("SITEOPS_ODOO_URL", "SITEOPS_ODOO_DB", "SITEOPS_ODOO_LOGIN") if not env.get(k)]
        if missing:
            raise PermanentError(f"Odoo connection not configured: {', '.join(missing)} not set",
                                 system="odoo", operation="config")
        try:
            password = read_secret("SITEOPS_ODOO_PASSWORD", environ=env) or ""
        except SecretError as exc:
            raise PermanentError(str(exc), system="odoo", operation="config") from None
        api_key = env.get("SITEOPS_ODOO_API_KEY", "")
        if not (password or api_key):
            raise PermanentError("Odoo connection not configured: set SITEOPS_ODOO_API_KEY, "
                                 "SITEOPS_ODOO_PASSWORD or SITEOPS_ODOO_PASSWORD_FILE",
                                 system="odoo", operation="config")
        return cls(url=env["SITEOPS_ODOO_URL"].rstrip("/"), db=env["SITEOPS_ODOO_DB"],
                   login=env["SITEOPS_ODOO_LOGIN"], password=password, api_key=api_key,
                   protocol=env.get("SITEOPS_ODOO_PROTOCOL", "auto").lower(),
                   timeout=float(env.get("SITEOPS_ODOO_TIMEOUT", "30")),
                   version=env.get("SITEOPS_ODOO_VERSION") or None)
