"""EDIFACT syntax: pydifact tokenizes and serializes; the envelope checks are ours.

pydifact (MIT, maintained, used by OCA's base_edifact) handles UNA, release characters
and custom delimiters, but does not check UNT/UNZ counts or references (issue #157), and
silently drops a last segment that lacks its terminator. So everything read goes
through `parse()`: UNB first (after an optional UNA), UNH/UNT nesting with equal
references and the right segment count, UNZ with the message count and the UNB
reference, nothing after UNZ. Errors name the segment and its position (UNB = 1).
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydifact.control import Characters
from pydifact.parser import Parser
from pydifact.segmentcollection import Interchange as PdInterchange
from pydifact.segmentcollection import Message as PdMessage
from pydifact.segments import Segment as PdSegment

from siteops.connectors.edi.errors import EdiError

# pydifact 0.2.3's wheel lacks its XML directory data and warns on every segment; the fix
# is merged upstream (PR #155) but unreleased. Structure checks are ours anyway.
warnings.filterwarnings("ignore", module="pydifact")
warnings.filterwarnings("ignore", message=".*segments.xml not found.*")

CHARACTERS = ":+.? '"  # component, element, decimal POINT (pydifact's default is ','), release, reserved, end


@dataclass(frozen=True, slots=True)
class Segment:
    tag: str
    elements: tuple[Any, ...]  # str or list[str] (a composite)
    position: int

    def el(self, n: int, c: int = 0) -> str:
        """Element n (1-based), component c (0-based) of it; '' when absent."""
        if not 0 < n <= len(self.elements):
            return ""
        value = self.elements[n - 1]
        if isinstance(value, list):
            return str(value[c]) if c < len(value) else ""
        return str(value) if c == 0 else ""

    def require(self, n: int, what: str, c: int = 0) -> str:
        value = self.el(n, c)
        if not value:
            raise EdiError("missing_element", f"{self.tag} element {n}{f'.{c + 1}' if c else ''} ({what}) is "
                                              "required", segment=self.tag, position=self.position)
        return value


@dataclass
class Message:
    reference: str  # UNH 0062
    type: str  # ORDERS, ORDRSP...
    version: str  # D:96A
    segments: list[Segment]  # between UNH and UNT
    position: int


@dataclass
class Interchange:
    syntax: str
    sender: str
    sender_qualifier: str
    recipient: str
    recipient_qualifier: str
    control: str  # UNB 0020
    ack_requested: bool
    messages: list[Message] = field(default_factory=list)


def tokenize(text: str) -> list[Segment]:
    try:
        raw = list(Parser().parse(text.lstrip("\ufeff \r\n\t")))
    except Exception as exc:  # pydifact raises EDISyntaxError, and on odd input also ValueError/IndexError
        raise EdiError("syntax", f"not EDIFACT: {type(exc).__name__}: {exc}"[:300], position=None) from None
    if raw and raw[0].tag == "UNA":
        raw = raw[1:]
    return [Segment(str(s.tag), tuple(s.elements), i) for i, s in enumerate(raw, start=1)]


def parse(text: str) -> Interchange:
    segments = tokenize(text)
    if not segments or segments[0].tag != "UNB":
        first = segments[0] if segments else None
        raise EdiError("not_edifact", "an EDIFACT interchange starts with UNB (after an optional UNA)",
                       segment=first.tag if first else "", position=1)
    unb = segments[0]
    ic = Interchange(syntax=unb.require(1, "syntax identifier"), sender=unb.require(2, "sender"),
                     sender_qualifier=unb.el(2, 1), recipient=unb.require(3, "recipient"),
                     recipient_qualifier=unb.el(3, 1), control=unb.require(5, "interchange control reference"),
                     ack_requested=unb.el(9) == "1")
    if unb.el(4) and not (unb.el(4).isdigit() and len(unb.el(4)) in (6, 8)):
        raise EdiError("bad_date", f"UNB date {unb.el(4)[:12]!r} is not YYMMDD", segment="UNB", position=1)
    msg: Message | None = None
    ended = False
    for seg in segments[1:]:
        if ended:
            raise EdiError("after_unz", "nothing may follow the UNZ", segment=seg.tag, position=seg.position)
        if seg.tag in ("UNB", "UNG", "UNE"):
            raise EdiError("unsupported", f"{seg.tag} inside an interchange (one interchange per file, no "
                                          "functional groups)", segment=seg.tag, position=seg.position)
        if seg.tag == "UNH":
            if msg is not None:
                raise EdiError("missing_unt", f"UNH before the UNT of message {msg.reference}", segment="UNH",
                               position=seg.position)
            ref = seg.require(1, "message reference")
            if any(m.reference == ref for m in ic.messages):
                raise EdiError("duplicate_control", f"message reference {ref} used twice", segment="UNH",
                               position=seg.position)
            msg = Message(reference=ref, type=seg.require(2, "message type"),
                          version=f"{seg.el(2, 1)}:{seg.el(2, 2)}", segments=[], position=seg.position)
        elif seg.tag == "UNT":
            if msg is None:
                raise EdiError("unexpected_unt", "UNT without its UNH", segment="UNT", position=seg.position)
            count = len(msg.segments) + 2
            if seg.el(1) != str(count):
                raise EdiError("count_mismatch", f"UNT says {seg.el(1)!r} segments; message {msg.reference} has "
                                                 f"{count}", segment="UNT", position=seg.position)
            if seg.el(2) != msg.reference:
                raise EdiError("control_mismatch", f"UNT reference {seg.el(2)!r} does not match UNH "
                                                   f"{msg.reference!r}", segment="UNT", position=seg.position)
            ic.messages.append(msg)
            msg = None
        elif seg.tag == "UNZ":
            if msg is not None:
                raise EdiError("missing_unt", f"UNZ before the UNT of message {msg.reference}", segment="UNZ",
                               position=seg.position)
            if seg.el(1) != str(len(ic.messages)):
                raise EdiError("count_mismatch", f"UNZ says {seg.el(1)!r} messages; the interchange has "
                                                 f"{len(ic.messages)}", segment="UNZ", position=seg.position)
            if seg.el(2) != ic.control:
                raise EdiError("control_mismatch", f"UNZ reference {seg.el(2)!r} does not match UNB "
                                                   f"{ic.control!r}", segment="UNZ", position=seg.position)
            ended = True
        elif msg is None:
            raise EdiError("outside_message", "segment outside a message", segment=seg.tag, position=seg.position)
        else:
            msg.segments.append(seg)
    if not ended:
        last = segments[-1]
        raise EdiError("truncated", "the interchange ends without its UNZ", segment=last.tag,
                       position=last.position)
    if not ic.messages:
        raise EdiError("empty", "the interchange holds no message", segment="UNZ", position=segments[-1].position)
    return ic


def _trim(values: list[str]) -> list[str]:
    while values and not values[-1]:
        values.pop()  # no trailing empty UNB elements
    return values


# -- writing ------------------------------------------------------------------------------

def render(*, sender: tuple[str, str], recipient: tuple[str, str], control: int, when: dt.datetime,
           messages: Sequence[tuple[str, Sequence[str], Sequence[Sequence[Any]]]], ack_requested: bool = False,
           test: bool = False) -> str:
    """One interchange; `messages` are (reference, UNH S009 composite, body segments).

    pydifact writes UNH/UNT and UNB/UNZ with their counts; values are escaped with the
    release character by pydifact.
    """
    ic = PdInterchange(sender=list(sender), recipient=list(recipient), control_reference=str(control),
                       syntax_identifier=("UNOC", 3), timestamp=when, characters=Characters.from_str(CHARACTERS),
                       extra_header_elements=_trim(["", "", "", "1" if ack_requested else "", "", "1" if test else ""]))
    ic.has_una_segment = True
    for reference, s009, body in messages:
        message = PdMessage(reference, list(s009))
        for parts in body:
            message.add_segment(PdSegment(parts[0], *parts[1:]))
        ic.add_message(message)
    text: str = ic.serialize(break_lines=True)
    return text + ("\n" if not text.endswith("\n") else "")
