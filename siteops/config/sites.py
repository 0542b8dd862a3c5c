"""Policy as code: `sites.toml` -> a validated, immutable site registry.

Central policy, local parameters: `[policy.defaults]` is the enterprise's word, and a
site (`[sites.<CODE>]`) may override only what `policy.site_tunable` lists. Every error
names the file, the site and the key, so a bad edit stops start-up with a pointer to the
line to fix instead of a stack trace in a worker an hour later.
"""

from __future__ import annotations

import math
import re
import tomllib
import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from siteops.config.limits import MAX_BACKOFF_CAP, TASK_TIME_LIMIT, VISIBILITY_TIMEOUT
from siteops.config.queues import TASKS, UnknownSite, site_queue

# Odoo warehouse codes are at most 5 characters; we also keep them upper case so that
# queue names, metric labels and Odoo codes read the same everywhere.
SITE_CODE = re.compile(r"^[A-Z][A-Z0-9]{0,4}$")
SITE_KEYS = frozenset({"name", "odoo_warehouse", "responsible", "escalate_to", "timezone"})
POLICY_KEYS = frozenset({"site_tunable", "defaults", "retry", "approvals"})
RETRY_DEFAULTS: Mapping[str, float | int] = MappingProxyType(
    {
        "max_retries": 5,
        "backoff_base_seconds": 2.0,
        "backoff_cap_seconds": 300.0,
        "max_redeliveries": 3,
    }
)


class PolicyError(ValueError):
    """sites.toml is malformed; the message names the file, the table and the key.

    The message is plain text: print it without markup interpretation (Rich would take
    `[sites.NORTH]` for a style tag and drop it).
    """


#: The scan kinds a `schedules` table may name: the scan tasks of the task table.
SCAN_KINDS: tuple[str, ...] = tuple(
    name.removeprefix("siteops.scan.") for name in TASKS if name.startswith("siteops.scan.")
)
#: The other periodic jobs a `schedules` table times (their beat entries: siteops/schedules/).
PERIODIC_JOBS: tuple[str, ...] = ("ship_ready", "sync_tracking")
SCHEDULE_NAMES: tuple[str, ...] = SCAN_KINDS + PERIODIC_JOBS


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
    approvals: Any = None  # siteops.config.approvals.ApprovalPolicy

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


def _check_numbers(where: str, value: Any) -> None:
    """Every number in the policy is a count, an amount, a duration or a threshold:
    finite and not negative (TOML accepts `nan`, `inf` and `-3`; none of them means
    anything here, and a negative schedule would silently switch a scan off)."""
    if isinstance(value, Mapping):
        for key, sub in value.items():
            _check_numbers(f"{where}.{key}", sub)
    elif isinstance(value, list | tuple):
        for i, sub in enumerate(value):
            _check_numbers(f"{where}[{i}]", sub)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise PolicyError(f"{where}: must be a finite number, got {value!r}")
        if value < 0:
            raise PolicyError(f"{where}: must not be negative, got {value!r}")


def _check_schedules(where: str, value: Any) -> None:
    """A schedules table names known scan kinds only: a misspelt kind would switch the
    real one off without a word (a kind left out is off, like 0)."""
    if not isinstance(value, Mapping):
        raise PolicyError(f"{where}: expected a table of scan kind = minutes, got {value!r}")
    for kind, minutes in value.items():
        if kind not in SCHEDULE_NAMES:
            raise PolicyError(f"{where}.{kind}: unknown scan kind or job (known: {', '.join(SCHEDULE_NAMES)})")
        if isinstance(minutes, bool) or not isinstance(minutes, int | float):
            raise PolicyError(f"{where}.{kind}: expected minutes between scans (a number, 0 = off), "
                              f"got {minutes!r}")


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
    for key, value in defaults.items():
        _check_numbers(f"{f}: [policy.defaults] {key}", value)
    if "schedules" in defaults:
        _check_schedules(f"{f}: [policy.defaults] schedules", defaults["schedules"])
    tunable = _string_list(f"{f}: [policy] site_tunable", policy.get("site_tunable", []))
    for key in tunable:
        if key not in defaults:
            raise PolicyError(f"{f}: [policy] site_tunable: {key!r} has no default in [policy.defaults]")

    retry = _parse_retry(f, policy.get("retry", {}))

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
            _check_numbers(f"{where} {key}", params[key])
            if key == "schedules":
                _check_schedules(f"{where} schedules", value)
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
        try:
            zoneinfo.ZoneInfo(timezone)
        except (ValueError, zoneinfo.ZoneInfoNotFoundError):
            raise PolicyError(f"{where} timezone: {timezone!r} is not an IANA time zone "
                              "(e.g. 'Europe/Brussels', 'UTC')") from None
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
    from siteops.config.approvals import parse_approvals

    return Registry(
        path=path,
        defaults=_freeze(dict(defaults)),
        site_tunable=frozenset(tunable),
        retry=retry,
        sites=MappingProxyType(sites),
        approvals=parse_approvals(f, policy.get("approvals"), defaults, tuple(sites)),
    )


def _parse_retry(f: str, raw: Any) -> RetryPolicy:
    where = f"{f}: [policy.retry]"
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where}: expected a table, got {raw!r}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in RETRY_DEFAULTS:
            raise PolicyError(f"{where} {key}: unknown key (known: {', '.join(RETRY_DEFAULTS)})")
        value = _check_type(f"{where} {key}", RETRY_DEFAULTS[key], value)
        _check_numbers(f"{where} {key}", value)
        values[key] = value
    retry = RetryPolicy(**values)
    if retry.backoff_base_seconds <= 0:
        raise PolicyError(f"{where} backoff_base_seconds: must be above 0, got {retry.backoff_base_seconds!r}")
    if retry.backoff_cap_seconds < retry.backoff_base_seconds:
        raise PolicyError(f"{where} backoff_cap_seconds: must be at least backoff_base_seconds "
                          f"({retry.backoff_base_seconds:g}), got {retry.backoff_cap_seconds:g}")
    if retry.backoff_cap_seconds >= MAX_BACKOFF_CAP:
        raise PolicyError(
            f"{where} backoff_cap_seconds: must be below {MAX_BACKOFF_CAP}s, got {retry.backoff_cap_seconds:g}: "
            f"Redis hands a message still held after the visibility timeout ({VISIBILITY_TIMEOUT}s) to a "
            f"second worker, and a task may run {TASK_TIME_LIMIT}s before its retry countdown starts"
        )
    if retry.max_redeliveries < 1:
        raise PolicyError(f"{where} max_redeliveries: must be at least 1, got {retry.max_redeliveries}")
    return retry


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
