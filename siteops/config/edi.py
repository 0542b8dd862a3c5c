"""EDI trading partners from sites.toml (`[edi]`, `[edi.partners.<ID>]`), validated.

Import-light (no Celery). Errors name the file, the table and the key, like the rest of
sites.toml. Per partner: who they are (interchange id and qualifier), which standard
and version they speak, how files travel (mailbox directory or SFTP), how long they
have to acknowledge an order, which Odoo vendor they are, and the ship-to code each of
our sites has at this partner (`N1*ST` / `NAD+DP`): an inbound document is routed to a
site by that code, and a code nobody configured is quarantined, never guessed.

    [edi]
    interchange_id = "DISTRIBCO"          # our ISA06 / UNB sender
    interchange_qualifier = "ZZ"

    [edi.partners.ACME]
    standard = "x12"                      # or "edifact"
    interchange_id = "ACMESUPPLY"
    odoo_vendor_ref = "V0001"             # res.partner.ref of the vendor in Odoo
    ack_deadline_hours = 24
    ship_to = { NORTH = "WH-NORTH", SOUTH = "WH-SOUTH" }
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siteops.config.sites import PolicyError, Registry

PARTNER_ID = re.compile(r"^[A-Z][A-Z0-9_]{0,15}$")
VERSIONS = {"x12": ("004010",), "edifact": ("D96A",)}
X12_QUALIFIERS = {"01", "08", "12", "14", "16", "ZZ"}
EDIFACT_QUALIFIERS = {"14", "ZZZ", "1", "9"}
EDI_KEYS = {"interchange_id", "interchange_qualifier", "gln", "test", "partners"}
PARTNER_KEYS = {"name", "standard", "version", "interchange_id", "interchange_qualifier", "odoo_vendor_ref",
                "transport", "ack_deadline_hours", "ship_to", "sftp", "functional_ack"}
SFTP_KEYS = {"host", "port", "username", "password_file", "key_file", "host_key", "inbox", "outbox"}


@dataclass(frozen=True)
class Sftp:
    host: str
    username: str
    port: int = 22
    password_file: str = ""  # a file holding the password (never the password itself)
    key_file: str = ""
    host_key: str = ""  # "ssh-ed25519 AAAA..." as in known_hosts: pinned, never trusted on first use
    inbox: str = "/outbound"  # where the partner leaves files for us
    outbox: str = "/inbound"  # where we leave files for the partner


@dataclass(frozen=True)
class Partner:
    id: str
    name: str
    standard: str  # x12 | edifact
    version: str
    interchange_id: str
    interchange_qualifier: str
    odoo_vendor_ref: str
    ack_deadline_hours: float
    ship_to: Mapping[str, str]  # site code -> the site's code at this partner
    transport: str = "mailbox"
    sftp: Sftp | None = None
    functional_ack: bool = True  # answer what we receive with a 997 / CONTRL

    def site_for(self, ship_to: str) -> str | None:
        for site, code in self.ship_to.items():
            if code == ship_to:
                return site
        return None


@dataclass(frozen=True)
class EdiConfig:
    interchange_id: str = ""
    interchange_qualifier: str = "ZZ"
    gln: str = ""  # our GS1 location number: the UNB sender towards EDIFACT partners
    test: bool = False
    partners: Mapping[str, Partner] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Partner]:
        return iter(self.partners.values())

    def get(self, partner_id: str) -> Partner:
        try:
            return self.partners[partner_id]
        except KeyError:
            raise PolicyError(f"unknown EDI partner {partner_id!r}; known: {', '.join(self.partners) or 'none'}") \
                from None

    def for_vendor(self, ref: str) -> Partner | None:
        return next((p for p in self if p.odoo_vendor_ref == ref), None)

    def for_site(self, site: str) -> list[Partner]:
        return [p for p in self if site in p.ship_to]

    def our_party(self, partner: Partner) -> tuple[str, str]:
        """Our (qualifier, id) towards this partner."""
        if partner.standard == "edifact":
            return ("14", self.gln) if self.gln else ("ZZZ", self.interchange_id)
        return self.interchange_qualifier, self.interchange_id


def _str(where: str, value: Any, *, max_len: int = 35) -> str:
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise PolicyError(f"{where}: expected a non-empty string of at most {max_len} characters, got {value!r}")
    return value


def parse_edi(data: Mapping[str, Any], path: Path, registry: Registry) -> EdiConfig:
    f = str(path)
    raw = data.get("edi")
    if raw is None:
        return EdiConfig()
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{f}: [edi]: expected a table")
    for key in raw:
        if key not in EDI_KEYS:
            raise PolicyError(f"{f}: [edi] {key}: unknown key (known: {', '.join(sorted(EDI_KEYS))})")
    own_id = _str(f"{f}: [edi] interchange_id", raw.get("interchange_id"), max_len=15)
    own_q = raw.get("interchange_qualifier", "ZZ")
    test = raw.get("test", False)
    if not isinstance(test, bool):
        raise PolicyError(f"{f}: [edi] test: expected true or false")
    partners_raw = raw.get("partners", {})
    if not isinstance(partners_raw, Mapping):
        raise PolicyError(f"{f}: [edi.partners]: expected a table of partners")
    partners: dict[str, Partner] = {}
    vendors: dict[str, str] = {}
    ids: dict[tuple[str, str], str] = {}
    for pid, body in partners_raw.items():
        where = f"{f}: [edi.partners.{pid}]"
        if not PARTNER_ID.match(pid):
            raise PolicyError(f"{where}: partner id must be 1-16 upper-case letters, digits or _")
        if not isinstance(body, Mapping):
            raise PolicyError(f"{where}: expected a table")
        for key in body:
            if key not in PARTNER_KEYS:
                raise PolicyError(f"{where} {key}: unknown key (known: {', '.join(sorted(PARTNER_KEYS))})")
        standard = body.get("standard")
        if standard not in VERSIONS:
            raise PolicyError(f"{where} standard: expected 'x12' or 'edifact', got {standard!r}")
        version = body.get("version", VERSIONS[standard][0])
        if version not in VERSIONS[standard]:
            raise PolicyError(f"{where} version: {standard} version must be one of "
                              f"{', '.join(VERSIONS[standard])}, got {version!r}")
        interchange_id = _str(f"{where} interchange_id", body.get("interchange_id"),
                              max_len=15 if standard == "x12" else 35)
        qualifier = body.get("interchange_qualifier", "ZZ" if standard == "x12" else "14")
        allowed = X12_QUALIFIERS if standard == "x12" else EDIFACT_QUALIFIERS
        if qualifier not in allowed:
            raise PolicyError(f"{where} interchange_qualifier: expected one of {', '.join(sorted(allowed))}, "
                              f"got {qualifier!r}")
        if (standard, interchange_id) in ids:
            raise PolicyError(f"{where} interchange_id: {interchange_id!r} is already partner "
                              f"{ids[(standard, interchange_id)]}'s")
        ids[(standard, interchange_id)] = pid
        vendor = _str(f"{where} odoo_vendor_ref", body.get("odoo_vendor_ref"), max_len=64)
        if vendor in vendors:
            raise PolicyError(f"{where} odoo_vendor_ref: {vendor!r} is already partner {vendors[vendor]}'s")
        vendors[vendor] = pid
        deadline = body.get("ack_deadline_hours", 24)
        if isinstance(deadline, bool) or not isinstance(deadline, int | float) or deadline <= 0:
            raise PolicyError(f"{where} ack_deadline_hours: expected a positive number, got {deadline!r}")
        ship_to = body.get("ship_to")
        if not isinstance(ship_to, Mapping) or not ship_to:
            raise PolicyError(f"{where} ship_to: expected a table of site code = ship-to code, e.g. "
                              "{ NORTH = \"WH-NORTH\" }")
        seen: dict[str, str] = {}
        for site, code in ship_to.items():
            if site not in registry.sites:
                raise PolicyError(f"{where} ship_to.{site}: unknown site (sites: {', '.join(registry.codes)})")
            _str(f"{where} ship_to.{site}", code)
            if code in seen:
                raise PolicyError(f"{where} ship_to.{site}: code {code!r} is already site {seen[code]}'s")
            seen[code] = site
        transport = body.get("transport", "mailbox")
        if transport not in ("mailbox", "sftp"):
            raise PolicyError(f"{where} transport: expected 'mailbox' or 'sftp', got {transport!r}")
        sftp = None
        if transport == "sftp":
            s = body.get("sftp")
            if not isinstance(s, Mapping):
                raise PolicyError(f"{where} sftp: transport is sftp: an [edi.partners.{pid}.sftp] table is required")
            for key in s:
                if key not in SFTP_KEYS:
                    raise PolicyError(f"{where} sftp.{key}: unknown key (known: {', '.join(sorted(SFTP_KEYS))})")
            if "password" in s:
                raise PolicyError(f"{where} sftp.password: secrets do not go in sites.toml; use password_file")
            sftp = Sftp(host=_str(f"{where} sftp.host", s.get("host"), max_len=255),
                        username=_str(f"{where} sftp.username", s.get("username"), max_len=64),
                        port=int(s.get("port", 22)), password_file=str(s.get("password_file", "")),
                        key_file=str(s.get("key_file", "")), host_key=str(s.get("host_key", "")),
                        inbox=str(s.get("inbox", "/outbound")), outbox=str(s.get("outbox", "/inbound")))
            if not sftp.host_key:
                raise PolicyError(f"{where} sftp.host_key: pin the server's host key (a known_hosts line)")
            if not (sftp.key_file or sftp.password_file):
                raise PolicyError(f"{where} sftp: give key_file or password_file (how siteops logs in)")
        functional_ack = body.get("functional_ack", True)
        if not isinstance(functional_ack, bool):
            raise PolicyError(f"{where} functional_ack: expected true or false")
        partners[pid] = Partner(id=pid, name=str(body.get("name", pid)), standard=standard, version=version,
                                interchange_id=interchange_id, interchange_qualifier=qualifier,
                                odoo_vendor_ref=vendor, ack_deadline_hours=float(deadline), ship_to=dict(ship_to),
                                transport=transport, sftp=sftp, functional_ack=functional_ack)
    gln = raw.get("gln", "")
    if gln and not (isinstance(gln, str) and gln.isdigit() and len(gln) == 13):
        raise PolicyError(f"{f}: [edi] gln: expected a 13-digit GS1 location number, got {gln!r}")
    return EdiConfig(interchange_id=own_id, interchange_qualifier=str(own_q), gln=gln, test=test,
                     partners=partners)


def load_edi(path: Path | str | None = None, registry: Registry | None = None) -> EdiConfig:
    from siteops.config.sites import get_registry, load_registry

    if path is None:
        registry = registry or get_registry()
        path = registry.path
    path = Path(path)
    registry = registry or load_registry(path)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read the EDI configuration: {exc}") from None
    return parse_edi(data, path, registry)


_config: EdiConfig | None = None


def get_edi() -> EdiConfig:
    global _config
    if _config is None:
        _config = load_edi()
    return _config


def reset_edi() -> None:
    global _config
    _config = None
