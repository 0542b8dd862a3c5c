"""The mailbox directory of `.eml` files, and the retention of message bodies.

`var/triage/inbox/*.eml` (a mail fetcher, or a person, drops files there): each file is
parsed with the standard library's `email` package, stored once by its Message-ID, its
classification enqueued (only the row id travels), and the file moved to `archive/`; a
file that cannot be parsed goes to `quarantine/` with a `.reason` file beside it. A file
is moved only after its row is stored and its task enqueued: a crash in between leaves it
in the inbox, and the next pass finds the row it already made (stored once by id).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from siteops.store import messages as store
from siteops.triage.intake import BadMessage, Inbound, parse_eml

log = logging.getLogger(__name__)

TASK = "siteops.triage.classify_message"
Publish = Callable[[str, list[Any]], str]


def inbox_dir() -> Path:
    from siteops.config.settings import get_settings

    return Path(get_settings().var_dir) / "triage" / "inbox"


def store_and_enqueue(inbound: Inbound, site: str, publish: Publish) -> tuple[int, bool, str | None]:
    """Store the message once; enqueue its classification when the row is new."""
    stored = store.add(message_id=inbound.message_id, source=inbound.source, sender=inbound.sender,
                       subject=inbound.subject, body=inbound.body, raw=inbound.raw,
                       received_at=inbound.received_at)
    task_id = None
    if stored.created:
        task_id = publish(TASK, [site, stored.id])
    else:
        msg = store.get(stored.id)
        # Stored, but the enqueue may have been lost (a crash, a broker outage): a message
        # still "new" with no class is enqueued again; the task skips one already routed.
        if msg is not None and msg.status == "new" and msg.label is None:
            task_id = publish(TASK, [site, stored.id])
    return stored.id, stored.created, task_id


def _move(path: Path, folder: str) -> Path:
    dest_dir = path.parent / folder
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / path.name
    n = 1
    while dest.exists():
        dest = dest_dir / f"{path.stem}.{n}{path.suffix}"
        n += 1
    os.replace(path, dest)
    return dest


def process_inbox(publish: Publish, site: str, inbox: Path | None = None, limit: int = 200) -> dict[str, int]:
    inbox = inbox or inbox_dir()
    counts = {"stored": 0, "duplicate": 0, "quarantined": 0}
    if not inbox.is_dir():
        return counts
    for path in sorted(inbox.glob("*.eml"))[:limit]:
        try:
            inbound = parse_eml(path.read_bytes())
        except BadMessage as exc:
            dest = _move(path, "quarantine")
            dest.with_name(dest.name + ".reason").write_text(f"{exc}\n")
            log.warning("triage inbox: %s quarantined: %s", path.name, exc)
            counts["quarantined"] += 1
            continue
        _, created, _ = store_and_enqueue(inbound, site, publish)
        _move(path, "archive")
        counts["stored" if created else "duplicate"] += 1
    return counts


def retention_cutoff(now: dt.datetime) -> dt.datetime:
    from siteops.services.triage import policy

    return now - dt.timedelta(days=float(policy("triage_retention_days")))


def purge_expired(now: dt.datetime) -> int:
    """Blank the personal data of messages past the policy's retention period."""
    total = 0
    while True:
        n = store.purge_before(retention_cutoff(now))
        total += n
        if n == 0:
            return total


def purge_archive(now: dt.datetime, inbox: Path | None = None) -> int:
    """The archived `.eml` files hold the same personal data: the same retention applies."""
    archive = (inbox or inbox_dir()) / "archive"
    if not archive.is_dir():
        return 0
    cutoff = retention_cutoff(now).timestamp()
    n = 0
    for path in archive.glob("*.eml"):
        if path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            n += 1
    return n
