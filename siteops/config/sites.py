"""Policy as code: `sites.toml` -> a validated, immutable site registry.

Central policy, local parameters: `[policy.defaults]` is the enterprise's word, and a
site (`[sites.<CODE>]`) may override only what `policy.site_tunable` lists. Every error
names the file, the site and the key, so a bad edit stops start-up with a pointer to the
line to fix instead of a stack trace in a worker an hour later.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from siteops.config.queues import UnknownSite, site_queue

# Odoo warehouse codes are at most 5 characters; we also keep them upper case so that
# queue names, metric labels and Odoo codes read the same everywhere.
SITE_CODE = re.compile(r"^[A-Z][A-Z0-9]{0,4}$")
SITE_KEYS = frozenset({"name", "odoo_warehouse", "responsible", "escalate_to", "timezone"})
POLICY_KEYS = frozenset({"site_tunable", "defaults", "retry"})
RETRY_DEFAULTS: Mapping[str, float | int] = MappingProxyType(
    {
        "max_retries": 5,
        "backoff_base_seconds": 2.0,
        "backoff_cap_seconds": 300.0,
        "max_redeliveries": 3,
    }
)


class PolicyError(ValueError):
    """sites.toml is malformed; the message names the file, the table and the key."""


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    backoff_base_seconds: float = 2.0
    backoff_cap_seconds: float = 300.0
    max_redeliveries: int = 3


@dataclass(frozen=True)
class Site:
    code: str
    name: str
    odoo_warehouse: str
    responsible: tuple[str, ...]
    params: Mapping[str, Any]
    overrides: frozenset[str] = field(default_factory=frozenset)
    escalate_to: tuple[str, ...] = ()
    timezone: str = "UTC"

    @property
    def queue(self) -> str:
        return site_queue(self.code)

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "queue": self.queue,
            "odoo_warehouse": self.odoo_warehouse,
            "responsible": list(self.responsible),
            "escalate_to": list(self.escalate_to),
            "timezone": self.timezone,
            "params": plain(self.params),
            "overrides": sorted(self.overrides),
        }


@dataclass(frozen=True)
class Registry:
    path: Path
    defaults: Mapping[str, Any]
    site_tunable: frozenset[str]
    retry: RetryPolicy
    sites: Mapping[str, Site]

    def __iter__(self) -> Iterator[Site]:
        return iter(self.sites.values())

    def __len__(self) -> int:
        return len(self.sites)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(self.sites)

    def get(self, code: str) -> Site:
        """The site with this code, or an error that names the known sites."""
        try:
            return self.sites[code]
        except KeyError:
            raise UnknownSite(code, self.codes) from None


def plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    return value


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(
        type(value), "table" if isinstance(value, Mapping) else type(value).__name__
    )


def _check_type(where: str, default: Any, value: Any) -> Any:
    """A site's value must have the type of the enterprise default it replaces."""
    if isinstance(default, bool) or isinstance(value, bool):
        ok = isinstance(default, bool) and isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise PolicyError(f"{where}: expected {_type_name(default)}, got {value!r}")
    return value


def _merge(where: str, default: Any, value: Any) -> Any:
    if isinstance(default, Mapping):
        if not isinstance(value, Mapping):
            raise PolicyError(f"{where}: expected a table, got {value!r}")
        merged = dict(default)
        for key, sub in value.items():
            if key not in default:
                raise PolicyError(
                    f"{where}.{key}: unknown key (known: {', '.join(sorted(default))})"
                )
            merged[key] = _merge(f"{where}.{key}", default[key], sub)
        return merged
    return _check_type(where, default, value)


def _string_list(where: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PolicyError(f"{where}: expected a list of non-empty strings, got {value!r}")
    return tuple(value)


def parse_registry(data: Mapping[str, Any], path: Path) -> Registry:
    f = str(path)
    policy = data.get("policy")
    if not isinstance(policy, Mapping):
        raise PolicyError(f"{f}: missing [policy] table")
    for key in set(data) - {"policy", "sites", "edi"}:  # [edi]: siteops.config.edi validates it
        raise PolicyError(f"{f}: {key}: unknown top-level table (expected [policy], [sites], [edi])")
    for key in set(policy) - POLICY_KEYS:
        raise PolicyError(f"{f}: [policy] {key}: unknown key (known: {', '.join(sorted(POLICY_KEYS))})")
    defaults = policy.get("defaults")
    if not isinstance(defaults, Mapping):
        raise PolicyError(f"{f}: missing [policy.defaults] table")
    tunable = _string_list(f"{f}: [policy] site_tunable", policy.get("site_tunable", []))
    for key in tunable:
        if key not in defaults:
            raise PolicyError(f"{f}: [policy] site_tunable: {key!r} has no default in [policy.defaults]")

    retry_raw = policy.get("retry", {})
    retry_values: dict[str, Any] = {}
    for key, value in retry_raw.items():
        if key not in RETRY_DEFAULTS:
            raise PolicyError(f"{f}: [policy.retry] {key}: unknown key (known: {', '.join(RETRY_DEFAULTS)})")
        value = _check_type(f"{f}: [policy.retry] {key}", RETRY_DEFAULTS[key], value)
        if value < 0:
            raise PolicyError(f"{f}: [policy.retry] {key}: must not be negative, got {value!r}")
        retry_values[key] = value
    retry = RetryPolicy(**retry_values)

    sites_raw = data.get("sites")
    if not isinstance(sites_raw, Mapping) or not sites_raw:
        raise PolicyError(f"{f}: no [sites.<CODE>] tables: at least one site is required")
    sites: dict[str, Site] = {}
    warehouses: dict[str, str] = {}
    for code, body in sites_raw.items():
        where = f"{f}: [sites.{code}]"
        if not SITE_CODE.match(code):
            raise PolicyError(f"{where}: site code must be 1-5 upper-case letters or digits, starting with a letter")
        if not isinstance(body, Mapping):
            raise PolicyError(f"{where}: expected a table")
        params = dict(defaults)
        overrides: set[str] = set()
        for key, value in body.items():
            if key in SITE_KEYS:
                continue
            if key not in defaults:
                raise PolicyError(f"{where} {key}: unknown parameter (parameters: {', '.join(sorted(defaults))})")
            if key not in tunable:
                raise PolicyError(
                    f"{where} {key}: not site-tunable; policy lets sites override only: {', '.join(tunable)}"
                )
            params[key] = _merge(f"{where} {key}", defaults[key], value)
            overrides.add(key)
        name = body.get("name", code)
        if not isinstance(name, str) or not name:
            raise PolicyError(f"{where} name: expected a non-empty string")
        warehouse = body.get("odoo_warehouse", code)
        if not isinstance(warehouse, str) or not 0 < len(warehouse) <= 5:
            raise PolicyError(f"{where} odoo_warehouse: expected an Odoo warehouse code of 1-5 characters")
        if warehouse in warehouses:
            raise PolicyError(f"{where} odoo_warehouse: {warehouse!r} is already used by site {warehouses[warehouse]}")
        warehouses[warehouse] = code
        responsible = _string_list(f"{where} responsible", body.get("responsible", []))
        if not responsible:
            raise PolicyError(f"{where} responsible: at least one responsible user is required")
        timezone = body.get("timezone", "UTC")
        if not isinstance(timezone, str):
            raise PolicyError(f"{where} timezone: expected a string")
        sites[code] = Site(
            code=code,
            name=name,
            odoo_warehouse=warehouse,
            responsible=responsible,
            escalate_to=_string_list(f"{where} escalate_to", body.get("escalate_to", [])),
            timezone=timezone,
            params=_freeze(params),
            overrides=frozenset(overrides),
        )
    return Registry(
        path=path,
        defaults=_freeze(dict(defaults)),
        site_tunable=frozenset(tunable),
        retry=retry,
        sites=MappingProxyType(sites),
    )


def load_registry(path: Path | str | None = None) -> Registry:
    """Read and validate a sites file; `PolicyError` names what is wrong."""
    if path is None:
        from siteops.config.settings import get_settings

        path = get_settings().effective_sites_file
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the sites file: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: not valid TOML: {exc}") from None
    return parse_registry(data, path)


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded once (the sites file is read at start-up)."""
    global _registry
    if _registry is None:
        _registry = load_registry()
    return _registry
