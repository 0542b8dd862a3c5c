"""The SFTP transport (paramiko) against a real SFTP server in the test process (asyncssh, chroot
per partner): upload via a temporary name then rename, collect, archive/quarantine locally before
removing remotely, host key pinned, wrong password and a server that is down classified."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from siteops.config.edi import Partner, Sftp
from siteops.connectors.edi.transport import Mailbox, SftpMailbox
from siteops.connectors.errors import PermanentError, RetryableError
from tests.conftest import _free_port

asyncssh = pytest.importorskip("asyncssh")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("sftp-acme")
    (root / "inbound").mkdir()
    (root / "outbound").mkdir()
    key = asyncssh.generate_private_key("ssh-ed25519")
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, object] = {}

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, password: str) -> bool:
            return username == "acme" and password == "s3cret"

    async def main() -> None:
        srv = await asyncssh.create_server(Server, "127.0.0.1", 0, server_host_keys=[key],
                                           sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(root)))
        holder["port"] = srv.sockets[0].getsockname()[1]
        holder["srv"] = srv
        started.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(main()), loop.run_forever()), daemon=True)
    thread.start()
    assert started.wait(30)
    public = key.export_public_key().decode().split()
    yield {"root": root, "port": holder["port"], "host_key": f"{public[0]} {public[1]}"}
    loop.call_soon_threadsafe(holder["srv"].close)  # type: ignore[attr-defined]
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def partner(server, tmp_path: Path, **change) -> Partner:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    values = dict(host="127.0.0.1", port=server["port"], username="acme", password_file=str(secret),
                  host_key=server["host_key"], inbox="/outbound", outbox="/inbound")
    values.update(change)
    return Partner(id="ACME", name="Acme", standard="x12", version="004010", interchange_id="ACMESUPPLY",
                   interchange_qualifier="ZZ", odoo_vendor_ref="V0001", ack_deadline_hours=24,
                   ship_to={"NORTH": "WH-NORTH"}, transport="sftp", sftp=Sftp(**values))


def test_send_collect_archive_and_quarantine(server, tmp_path):
    box = SftpMailbox(partner(server, tmp_path), Mailbox(tmp_path / "local"))
    box.send("850_P1.edi", b"ISA*one")
    assert (server["root"] / "inbound" / "850_P1.edi").read_bytes() == b"ISA*one"
    assert not [p for p in (server["root"] / "inbound").iterdir() if p.name.startswith(".")]  # tmp renamed
    assert box.sent("850_P1.edi")
    (server["root"] / "outbound" / "855_a.edi").write_bytes(b"ISA*ack")
    (server["root"] / "outbound" / "bad.edi").write_bytes(b"\x00junk")
    (server["root"] / "outbound" / ".partial.tmp").write_bytes(b"half")
    assert box.incoming() == ["855_a.edi", "bad.edi"]  # dot files (uploads in progress) are not listed
    data = box.fetch("855_a.edi")
    box.archive("855_a.edi", data)
    assert (tmp_path / "local" / "archive" / "855_a.edi").read_bytes() == b"ISA*ack"
    box.quarantine("bad.edi", box.fetch("bad.edi"), {"code": "binary", "message": "junk"})
    assert json.loads((tmp_path / "local" / "quarantine" / "bad.edi.reason.json").read_text())["code"] == "binary"
    assert box.incoming() == []  # removed remotely only after the local copies exist
    box.close()


def test_a_host_key_that_does_not_match_the_pin_is_refused(server, tmp_path):
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()
    box = SftpMailbox(partner(server, tmp_path, host_key=f"{other[0]} {other[1]}"), Mailbox(tmp_path / "l"))
    with pytest.raises(PermanentError, match="host key"):
        box.incoming()


def test_wrong_password_is_permanent_and_a_server_down_is_retryable(server, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.write_text("nope")
    with pytest.raises(PermanentError, match="authentication"):
        SftpMailbox(partner(server, tmp_path, password_file=str(wrong)), Mailbox(tmp_path / "l")).incoming()
    with pytest.raises(RetryableError):
        SftpMailbox(partner(server, tmp_path, port=_free_port()), Mailbox(tmp_path / "l")).incoming()
    # A password file that is missing or empty is the configuration's fault: permanent, and
    # said with the partner and the file, not sent as an empty password.
    (tmp_path / "empty").write_text("\n")
    for path in (tmp_path / "absent", tmp_path / "empty"):
        with pytest.raises(PermanentError, match=r"ACME sftp\.password_file") as refused:
            SftpMailbox(partner(server, tmp_path, password_file=str(path)), Mailbox(tmp_path / "l")).incoming()
        assert "s3cret" not in str(refused.value)
