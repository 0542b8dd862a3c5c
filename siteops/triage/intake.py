"""Inbound messages, checked: a portal/ingress JSON message or an `.eml` file -> `Inbound`.

Pure (bytes in, an `Inbound` or a `BadMessage` naming the field out). The e-mail side uses
only the standard library's `email` package with the modern policy, which decodes MIME
encoded-words and transfer encodings; the text part is preferred to HTML.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
import hashlib
import html
import json
import re
from dataclasses import dataclass
from email.message import EmailMessage

MAX_SUBJECT = 500
MAX_BODY_CHARS = 200_000


class BadMessage(ValueError):
    pass


@dataclass(frozen=True)
class Inbound:
    message_id: str
    source: str
    sender: str
    subject: str
    body: str
    received_at: dt.datetime
    raw: str

    @property
    def text(self) -> str:
        return f"{self.subject}\n{self.body}"


def _derived_id(*parts: str) -> str:
    # No id given: the same message posted twice must still be stored once.
    return "sha256:" + hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def _when(value: object, field: str) -> dt.datetime:
    if value is None or value == "":
        return dt.datetime.now(dt.UTC)
    if not isinstance(value, str):
        raise BadMessage(f"field {field}: must be an ISO 8601 date-time string")
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadMessage(f"field {field}: {value[:40]!r} is not an ISO 8601 date-time") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def parse_json(body: bytes, default_source: str = "portal") -> Inbound:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadMessage(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadMessage(f"body must be a JSON object, got {type(data).__name__}")
    texts = {}
    for key in ("from", "subject", "body", "source", "message_id"):
        value = data.get(key, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise BadMessage(f"field {key}: must be a string")
        texts[key] = value
    if not texts["subject"].strip() and not texts["body"].strip():
        raise BadMessage("fields subject and body: at least one must be non-empty")
    if len(texts["subject"]) > MAX_SUBJECT:
        raise BadMessage(f"field subject: longer than {MAX_SUBJECT} characters")
    received = _when(data.get("received", data.get("received_at")), "received")
    source = texts["source"].strip()[:32] or default_source
    mid = texts["message_id"].strip() or _derived_id(texts["from"], texts["subject"], texts["body"],
                                                     received.isoformat())
    return Inbound(message_id=mid[:255], source=source, sender=texts["from"].strip(), subject=texts["subject"].strip(),
                   body=texts["body"][:MAX_BODY_CHARS], received_at=received,
                   raw=body.decode("utf-8", "replace"))


_TAG = re.compile(r"<[^>]+>")


def _text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    if not isinstance(content, str):
        return ""
    if part.get_content_type() == "text/html":
        content = html.unescape(_TAG.sub(" ", content))
    return content


def parse_eml(data: bytes, source: str = "email") -> Inbound:
    try:
        msg = email.message_from_bytes(data, policy=email.policy.default)
    except Exception as exc:  # the parser is lenient; this is a truly broken file
        raise BadMessage(f"not an e-mail message: {exc}") from None
    if not isinstance(msg, EmailMessage) or not (msg.keys()):
        raise BadMessage("not an e-mail message: no headers")
    if msg.defects and not msg.get("From") and not msg.get("Subject"):
        raise BadMessage(f"not an e-mail message: {', '.join(type(d).__name__ for d in msg.defects[:3])}")
    try:
        subject = str(msg.get("Subject", "") or "").strip()
        sender = str(msg.get("From", "") or "").strip()
        body = _text_of(msg)
    except (LookupError, ValueError) as exc:  # an unknown charset, a broken encoding
        raise BadMessage(f"cannot decode the message: {exc}") from None
    if not subject and not body.strip():
        raise BadMessage("no subject and no text body")
    received = dt.datetime.now(dt.UTC)
    if msg.get("Date"):
        try:
            received = email.utils.parsedate_to_datetime(str(msg["Date"]))
            if received.tzinfo is None:
                received = received.replace(tzinfo=dt.UTC)
        except (TypeError, ValueError):
            pass
    raw = data.decode("utf-8", "replace")
    mid = str(msg.get("Message-ID", "") or "").strip() or _derived_id(raw)
    return Inbound(message_id=mid[:255], source=source, sender=sender, subject=subject[:MAX_SUBJECT],
                   body=body[:MAX_BODY_CHARS], received_at=received, raw=raw)


def parse_text(data: str) -> Inbound:
    """Plain text whose first line is the subject (the `triage classify` input)."""
    subject, _, body = data.strip("\ufeff").partition("\n")
    if not subject.strip() and not body.strip():
        raise BadMessage("empty message")
    return Inbound(message_id=_derived_id(data), source="cli", sender="", subject=subject.strip()[:MAX_SUBJECT],
                   body=body, received_at=dt.datetime.now(dt.UTC), raw=data)


def looks_like_eml(data: bytes) -> bool:
    head = data[:2000].decode("utf-8", "replace")
    return bool(re.match(r"(?:[A-Za-z][A-Za-z0-9-]*:[^\n]*\n)+", head)) and \
        bool(re.search(r"^(From|Subject|Message-ID|Date):", head, re.MULTILINE | re.IGNORECASE))
