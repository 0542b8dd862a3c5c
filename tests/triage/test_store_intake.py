"""Messages stored once by id (SQLite and PostgreSQL), the queue's order, corrections, retention;
the JSON and .eml intake and the mailbox directory (archive, quarantine with a reason)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from siteops.triage.intake import BadMessage, parse_eml, parse_json

pytestmark = pytest.mark.postgres

T0 = dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC)


def _add(store: Any, mid: str, when: dt.datetime = T0, body: str = "text") -> int:
    return int(store.add(message_id=mid, source="portal", sender="Jane <jane@example.com>", subject="s",
                         body=body, raw=body, received_at=when).id)


def test_stored_once_ordered_by_priority_corrected_and_purged(store_url: str) -> None:
    from siteops.services import triage
    from siteops.store import messages as store

    first = store.add(message_id="<a@x>", source="portal", sender="Jane", subject="s", body="b", raw="r",
                      received_at=T0)
    again = store.add(message_id="<a@x>", source="portal", sender="Jane", subject="s", body="b", raw="r",
                      received_at=T0)
    assert first.created and not again.created and again.id == first.id
    low, high = first.id, _add(store, "<b@x>")
    store.save_triage(low, status="review", site="CW", label="other", confidence=0.4, evidence=[], refs=[],
                      priority=5, reasons=[], model_version="v")
    store.save_triage(high, status="routed", site="NORTH", label="shortage", confidence=0.9, evidence=["short"],
                      refs=[], priority=60, reasons=[], model_version="v")
    assert [m.id for m in store.queue()] == [high, low]
    assert [m.id for m in store.queue(status="review")] == [low]
    assert [m.id for m in store.queue(site="NORTH")] == [high]

    c = triage.decide(low, "return", "alice")
    assert (c.predicted, c.corrected, c.decided_by) == ("other", "return", "alice")
    assert store.get(low).status == "decided" and store.get(low).decided_label == "return"
    assert store.labelled_data() == [("s\nb", "return")]
    with pytest.raises(ValueError, match="--class: 'refund'"):
        triage.decide(low, "refund", "alice")

    # Retention: older than the cut-off loses its personal data, keeps its triage.
    recent = _add(store, "<c@x>", when=T0 + dt.timedelta(days=100))
    assert store.purge_before(T0 + dt.timedelta(days=1)) == 2
    gone = store.get(low)
    assert gone.body is None and gone.sender is None and gone.raw is None and gone.label == "other"
    assert store.get(recent).body == "text"
    assert store.labelled_data() == [], "a purged message's text is not kept as training data either"
    assert len(store.corrections(low)) == 1


def test_json_intake_names_the_bad_field() -> None:
    ok = parse_json(b'{"from": "a@b.c", "subject": "Late", "body": "where is S00042", "received": '
                    b'"2026-11-30T10:00:00Z", "source": "portal", "message_id": "m-1"}')
    assert (ok.message_id, ok.received_at.tzinfo is not None, ok.source) == ("m-1", True, "portal")
    same = parse_json(b'{"subject": "x", "body": "y", "received": "2026-11-30T10:00:00Z"}')
    assert same.message_id == parse_json(b'{"subject": "x", "body": "y", "received": "2026-11-30T10:00:00Z"}'
                                         ).message_id, "no id given: derived, so a repost is stored once"
    for body, field in [(b'{"subject": 3}', "field subject"), (b'{"body": "x", "received": "soon"}',
                                                               "field received"),
                        (b'{"subject": "", "body": " "}', "at least one"), (b"[1]", "JSON object"),
                        (b"\xff", "not JSON")]:
        with pytest.raises(BadMessage, match=field):
            parse_json(body)


def test_eml_intake_decodes_mime_and_prefers_text() -> None:
    raw = (b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.com>\r\nSubject: =?utf-8?b?UsO8Y2tzZW5kdW5n?=\r\n"
           b"Date: Mon, 30 Nov 2026 09:00:00 +0100\r\nMessage-ID: <m2@example.com>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/alternative; boundary=xx\r\n\r\n--xx\r\nContent-Type: text/html\r\n\r\n"
           b"<p>html</p>\r\n--xx\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "
           b"quoted-printable\r\n\r\nWrong size, return S00066 pl=C3=A9ase\r\n--xx--\r\n")
    m = parse_eml(raw)
    assert m.subject == "Rücksendung" and "Jürgen" in m.sender and "pléase" in m.body
    assert m.message_id == "<m2@example.com>" and m.received_at == dt.datetime(2026, 11, 30, 8, tzinfo=dt.UTC)


def test_mailbox_archives_stores_once_and_quarantines_with_a_reason(tmp_path: Path, store_ready: None) -> None:
    from siteops.store import messages as store
    from siteops.triage.mailbox import process_inbox

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    good = b"From: a@b.c\r\nSubject: Short delivery\r\nMessage-ID: <mb-1@x>\r\n\r\n2 boxes missing\r\n"
    (inbox / "1.eml").write_bytes(good)
    (inbox / "2.eml").write_bytes(good)  # the same message delivered twice
    (inbox / "3.eml").write_bytes(b"\r\n\r\n")
    sent: list[tuple[str, list[Any]]] = []
    counts = process_inbox(lambda name, args: sent.append((name, args)) or "id", "CW", inbox)
    assert counts == {"stored": 1, "duplicate": 1, "quarantined": 1}
    # The duplicate finds the row; while it is unclassified its task is sent again (the first
    # enqueue may have been lost), and the task itself skips a message already triaged.
    assert {(name, tuple(args)) for name, args in sent} == {("siteops.triage.classify_message", ("CW", sent[0][1][1]))}
    assert store.get(sent[0][1][1]).subject == "Short delivery"
    assert sorted(p.name for p in (inbox / "archive").iterdir()) == ["1.eml", "2.eml"]
    assert (inbox / "quarantine" / "3.eml").exists()
    assert "no headers" in (inbox / "quarantine" / "3.eml.reason").read_text()
    assert not list(inbox.glob("*.eml"))
