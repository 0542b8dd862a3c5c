"""How EDI files travel: a mailbox directory per partner (default) or the partner's SFTP.

Mailbox layout, from our side (`var/edi/<PARTNER>/`):
    out/         what we send; the partner (or its VAN robot) collects from here
    in/          what the partner sends us
    archive/     inbound files we applied (kept: the audit trail of what came in)
    quarantine/  inbound files we refused, each with `<name>.reason.json` beside it

Every write goes to a dot-prefixed temporary name first and is renamed into place, so a
reader never sees half a file; dot files are never listed. Transport failures (OSError,
SSH errors) are `RetryableError`: the task retries; content is never judged here.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from siteops.config.edi import Partner
from siteops.config.secrets import SecretError, read_secret_file
from siteops.connectors.errors import PermanentError, RetryableError


class Transport(Protocol):
    def send(self, name: str, data: bytes) -> None: ...
    def sent(self, name: str) -> bool: ...
    def incoming(self) -> list[str]: ...
    def fetch(self, name: str) -> bytes: ...
    def archive(self, name: str, data: bytes) -> None: ...
    def quarantine(self, name: str, data: bytes, reason: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


def _safe(name: str) -> str:
    if not name or name.startswith(".") or "/" in name or "\\" in name or name in ("..",):
        raise PermanentError(f"unsafe EDI file name {name!r}", system="edi", operation="transport")
    return name


@contextlib.contextmanager
def _io(what: str) -> Iterator[None]:
    try:
        yield
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise RetryableError(f"{what}: {exc}", system="edi", operation="transport") from None


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Mailbox:
    """The directory mailbox of one partner."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in ("out", "in", "archive", "quarantine"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def send(self, name: str, data: bytes) -> None:
        with _io(f"writing {name} to {self.root / 'out'}"):
            _atomic_write(self.root / "out" / _safe(name), data)

    def sent(self, name: str) -> bool:
        return (self.root / "out" / _safe(name)).exists()

    def close(self) -> None:
        pass

    def incoming(self) -> list[str]:
        with _io(f"listing {self.root / 'in'}"):
            return sorted(e.name for e in os.scandir(self.root / "in") if e.is_file() and not e.name.startswith("."))

    def fetch(self, name: str) -> bytes:
        with _io(f"reading {name}"):
            return (self.root / "in" / _safe(name)).read_bytes()

    def _move(self, name: str, folder: str) -> None:
        target = self.root / folder / name
        if target.exists():  # never overwrite: a second delivery of one name keeps both
            target = target.with_name(f"{name}.{uuid.uuid4().hex[:8]}")
        # FileNotFoundError: another worker moved it first
        with _io(f"moving {name} to {folder}/"), contextlib.suppress(FileNotFoundError):
            os.replace(self.root / "in" / _safe(name), target)

    def archive(self, name: str, data: bytes) -> None:
        self._move(name, "archive")

    def quarantine(self, name: str, data: bytes, reason: dict[str, Any]) -> None:
        with _io(f"writing the reason for {name}"):
            _atomic_write(self.root / "quarantine" / f"{_safe(name)}.reason.json",
                          json.dumps(reason, indent=2, sort_keys=True).encode())
        self._move(name, "quarantine")


class SftpMailbox:
    """The partner's SFTP server (paramiko), host key pinned; a local mailbox keeps our copies.

    Remote: we upload to `outbox` (tmp name, then rename) and collect from `inbox`; a
    collected file is removed remotely only after its local copy is archived or
    quarantined, so a crash in between collects it again (the checksum dedupes it).
    """

    def __init__(self, partner: Partner, local: Mailbox, *, timeout: float = 15.0) -> None:
        assert partner.sftp is not None
        self.cfg = partner.sftp
        self.partner_id = partner.id
        self.local = local
        self.timeout = timeout
        self._client: Any = None

    def _sftp(self) -> Any:
        if self._client is not None:
            return self._client
        import paramiko

        cfg = self.cfg
        try:
            sock = __import__("socket").create_connection((cfg.host, cfg.port), timeout=self.timeout)
            transport = paramiko.Transport(sock)
            transport.banner_timeout = self.timeout
            transport.start_client(timeout=self.timeout)
            key = transport.get_remote_server_key()
            pinned = cfg.host_key.split()
            if len(pinned) < 2 or (key.get_name(), key.get_base64()) != (pinned[0], pinned[1]):
                transport.close()
                raise PermanentError(f"SFTP {cfg.host}:{cfg.port}: host key {key.get_name()} does not match the "
                                     "pinned host_key", system="edi", operation="sftp")
            if cfg.key_file:
                transport.auth_publickey(cfg.username, paramiko.PKey.from_path(cfg.key_file))
            else:
                # The one reader of secret files: a missing, unreadable or empty file is a
                # configuration error (permanent, naming the file), not a connection blip.
                try:
                    password = read_secret_file(f"{self.partner_id} sftp.password_file", cfg.password_file)
                except SecretError as exc:
                    transport.close()
                    raise PermanentError(f"SFTP {cfg.host}: {exc}", system="edi", operation="sftp") from None
                transport.auth_password(cfg.username, password)
            self._client = paramiko.SFTPClient.from_transport(transport)
            self._client.get_channel().settimeout(self.timeout)
        except paramiko.AuthenticationException as exc:
            raise PermanentError(f"SFTP {cfg.host}: authentication refused: {exc}", system="edi",
                                 operation="sftp") from None
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise RetryableError(f"SFTP {cfg.host}:{cfg.port}: {type(exc).__name__}: {exc}", system="edi",
                                 operation="sftp") from None
        return self._client

    @contextlib.contextmanager
    def _remote(self, what: str) -> Iterator[Any]:
        import paramiko

        try:
            yield self._sftp()
        except (OSError, paramiko.SSHException, EOFError) as exc:
            self.close()
            if isinstance(exc, FileNotFoundError):
                raise
            raise RetryableError(f"SFTP {what}: {type(exc).__name__}: {exc}", system="edi",
                                 operation="sftp") from None

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.get_channel().get_transport().close()
            self._client = None

    def send(self, name: str, data: bytes) -> None:
        self.local.send(name, data)  # our copy, and the record of what went out
        target = posixpath.join(self.cfg.outbox, _safe(name))
        tmp = posixpath.join(self.cfg.outbox, f".{name}.tmp")
        with self._remote(f"upload {name}") as sftp:
            with sftp.open(tmp, "wb") as fh:
                fh.write(data)
            sftp.posix_rename(tmp, target)

    def sent(self, name: str) -> bool:
        with self._remote(f"stat {name}") as sftp:
            try:
                sftp.stat(posixpath.join(self.cfg.outbox, _safe(name)))
                return True
            except FileNotFoundError:
                return self.local.sent(name)

    def incoming(self) -> list[str]:
        with self._remote("list") as sftp:
            return sorted(n for n in sftp.listdir(self.cfg.inbox) if not n.startswith("."))

    def fetch(self, name: str) -> bytes:
        with self._remote(f"download {name}") as sftp, sftp.open(posixpath.join(self.cfg.inbox, _safe(name)),
                                                                 "rb") as fh:
            data: bytes = fh.read()
        return data

    def _done(self, name: str) -> None:
        with self._remote(f"remove {name}") as sftp, contextlib.suppress(FileNotFoundError):
            sftp.remove(posixpath.join(self.cfg.inbox, name))

    def archive(self, name: str, data: bytes) -> None:
        _atomic_write(self.local.root / "archive" / _safe(name), data)
        self._done(name)

    def quarantine(self, name: str, data: bytes, reason: dict[str, Any]) -> None:
        _atomic_write(self.local.root / "quarantine" / _safe(name), data)
        _atomic_write(self.local.root / "quarantine" / f"{name}.reason.json",
                      json.dumps(reason, indent=2, sort_keys=True).encode())
        self._done(name)


def mailbox_root(partner_id: str) -> Path:
    from siteops.config.settings import get_settings

    return get_settings().var / "edi" / partner_id


def open_transport(partner: Partner) -> Transport:
    local = Mailbox(mailbox_root(partner.id))
    if partner.transport == "sftp":
        return SftpMailbox(partner, local)
    return local
