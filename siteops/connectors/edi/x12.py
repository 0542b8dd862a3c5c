"""X12 syntax: a strict tokenizer, the ISA/GS/ST envelopes with their checks, and a writer.

Why our own and not pyx12's X12Reader (see notes/edi.md): pyx12 is the maintained X12
library, but only its reader and writer are generic (its maps are healthcare ones), its
reader takes a file object and reports envelope errors as a list to pop after the
fact, and per segment it builds objects we would immediately take apart again. The
syntax is small; the risk sits in the checks, so they are ours and tested — and pyx12
stays in the test suite as the independent reader of what we write.

Rules applied to everything read:
- the ISA is 106 characters with 16 elements; the element separator, component
  separator and segment terminator come from it and must differ;
- CR/LF between segments is tolerated, anything else outside a segment is not;
- ISA/IEA, GS/GE and ST/SE nest properly, with matching control numbers, and the
  counts (SE01 segments, GE01 sets, IEA01 groups) are right;
- nothing follows the IEA; a file that stops before it is truncated.
Errors name the segment and its position (ISA = 1).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from siteops.connectors.edi.errors import EdiError

TAG = re.compile(r"^[A-Z][A-Z0-9]{1,2}$")
ISA_LENGTH = 106


@dataclass(frozen=True)
class Delimiters:
    element: str = "*"
    component: str = ">"
    segment: str = "~"


@dataclass(frozen=True, slots=True)
class Segment:
    tag: str
    elements: tuple[str, ...]  # after the tag: elements[0] is XX01
    position: int  # 1-based, in the interchange

    def el(self, n: int) -> str:
        """Element XXnn (1-based), '' when absent."""
        return self.elements[n - 1] if 0 < n <= len(self.elements) else ""

    def require(self, n: int, what: str) -> str:
        value = self.el(n)
        if not value:
            raise EdiError("missing_element", f"{self.tag}{n:02d} ({what}) is required", segment=self.tag,
                           position=self.position)
        return value


@dataclass
class TransactionSet:
    code: str  # ST01
    control: str  # ST02
    segments: list[Segment]  # between ST and SE, exclusive
    position: int  # of the ST


@dataclass
class Group:
    functional_id: str  # GS01
    sender: str
    receiver: str
    control: str  # GS06
    version: str  # GS08
    position: int
    sets: list[TransactionSet] = field(default_factory=list)


@dataclass
class Interchange:
    sender_qualifier: str
    sender: str  # ISA06, padding stripped
    receiver_qualifier: str
    receiver: str
    control: str  # ISA13
    version: str  # ISA12
    date: str  # ISA09 YYMMDD
    test: bool
    delimiters: Delimiters
    groups: list[Group] = field(default_factory=list)


def tokenize(text: str) -> tuple[Delimiters, list[Segment]]:
    """Split an interchange into segments, with the delimiters its ISA declares."""
    start = len(text) - len(text.lstrip(" \r\n\t"))
    body = text[start:]
    if not body.startswith("ISA"):
        raise EdiError("not_x12", "an X12 interchange starts with ISA", segment=body[:3], position=1)
    if len(body) < ISA_LENGTH:
        raise EdiError("truncated", f"the ISA is {ISA_LENGTH} characters; the file has {len(body)}",
                       segment="ISA", position=1)
    d = Delimiters(element=body[3], component=body[104], segment=body[105])
    if len({d.element, d.component, d.segment}) < 3 or any(c.isalnum() or c == " " for c in
                                                            (d.element, d.component, d.segment)):
        raise EdiError("bad_delimiters", f"delimiters {d.element!r} {d.component!r} {d.segment!r} must be "
                                         "three different non-alphanumeric characters", segment="ISA", position=1)
    isa = body[:ISA_LENGTH - 1].split(d.element)
    if len(isa) != 17:
        raise EdiError("bad_isa", f"the ISA must have 16 fixed-width elements, found {len(isa) - 1}",
                       segment="ISA", position=1)
    segments: list[Segment] = []
    raw = body.split(d.segment)
    tail = raw.pop()  # after the last terminator: only whitespace may follow
    if tail.strip("\r\n \t"):
        raise EdiError("truncated", f"the file ends inside a segment ({tail[:20]!r}...)",
                       segment=tail.strip()[:3], position=len(raw) + 1)
    for index, chunk in enumerate(raw, start=1):
        chunk = chunk.strip("\r\n")
        if not chunk:
            raise EdiError("empty_segment", "empty segment (two terminators in a row)", position=index)
        parts = chunk.split(d.element)
        tag = parts[0]
        if not TAG.match(tag):
            raise EdiError("bad_segment", f"{tag[:10]!r} is not a segment identifier", segment=tag[:10],
                           position=index)
        segments.append(Segment(tag, tuple(parts[1:]), index))
    return d, segments


def parse(text: str) -> Interchange:
    """Tokenize and check the envelopes; one interchange per file."""
    d, segments = tokenize(text)
    isa = segments[0]
    ic = Interchange(sender_qualifier=isa.el(5), sender=isa.el(6).strip(), receiver_qualifier=isa.el(7),
                     receiver=isa.el(8).strip(), control=isa.el(13), version=isa.el(12), date=isa.el(9),
                     test=isa.el(15) == "T", delimiters=d)
    if not ic.control.isdigit() or len(ic.control) != 9:
        raise EdiError("bad_control", f"ISA13 must be 9 digits, got {ic.control!r}", segment="ISA", position=1)
    if not ic.sender or not ic.receiver:
        raise EdiError("missing_element", "ISA06 and ISA08 (sender, receiver) are required", segment="ISA",
                       position=1)
    group: Group | None = None
    tset: TransactionSet | None = None
    ended = False
    for seg in segments[1:]:
        if ended:
            raise EdiError("after_iea", "nothing may follow the IEA", segment=seg.tag, position=seg.position)
        if seg.tag == "ISA":
            raise EdiError("nested_isa", "an ISA inside an interchange (one interchange per file)",
                           segment="ISA", position=seg.position)
        if seg.tag == "GS":
            if group is not None:
                raise EdiError("missing_ge", f"GS before the GE of group {group.control}", segment="GS",
                               position=seg.position)
            group = Group(functional_id=seg.require(1, "functional id"), sender=seg.el(2), receiver=seg.el(3),
                          control=seg.require(6, "group control number"), version=seg.el(8),
                          position=seg.position)
            if not group.control.isdigit():
                raise EdiError("bad_control", f"GS06 must be digits, got {group.control!r}", segment="GS",
                               position=seg.position)
        elif seg.tag == "ST":
            if group is None:
                raise EdiError("missing_gs", "ST outside a functional group", segment="ST", position=seg.position)
            if tset is not None:
                raise EdiError("missing_se", f"ST before the SE of set {tset.control}", segment="ST",
                               position=seg.position)
            control = seg.require(2, "transaction set control number")
            if any(s.control == control for s in group.sets):
                raise EdiError("duplicate_control", f"set control number {control} used twice in group "
                                                    f"{group.control}", segment="ST", position=seg.position)
            tset = TransactionSet(code=seg.require(1, "transaction set id"), control=control, segments=[],
                                  position=seg.position)
        elif seg.tag == "SE":
            if tset is None:
                raise EdiError("unexpected_se", "SE without its ST", segment="SE", position=seg.position)
            count = len(tset.segments) + 2
            if seg.el(1) != str(count):
                raise EdiError("count_mismatch", f"SE01 says {seg.el(1)!r} segments; set {tset.control} has "
                                                 f"{count}", segment="SE", position=seg.position)
            if seg.el(2) != tset.control:
                raise EdiError("control_mismatch", f"SE02 {seg.el(2)!r} does not match ST02 {tset.control!r}",
                               segment="SE", position=seg.position)
            assert group is not None
            group.sets.append(tset)
            tset = None
        elif seg.tag == "GE":
            if group is None or tset is not None:
                raise EdiError("unexpected_ge", "GE outside a group or inside a set", segment="GE",
                               position=seg.position)
            if seg.el(1) != str(len(group.sets)):
                raise EdiError("count_mismatch", f"GE01 says {seg.el(1)!r} sets; group {group.control} has "
                                                 f"{len(group.sets)}", segment="GE", position=seg.position)
            if seg.el(2) != group.control:
                raise EdiError("control_mismatch", f"GE02 {seg.el(2)!r} does not match GS06 {group.control!r}",
                               segment="GE", position=seg.position)
            ic.groups.append(group)
            group = None
        elif seg.tag == "IEA":
            if group is not None:
                raise EdiError("missing_ge", f"IEA before the GE of group {group.control}", segment="IEA",
                               position=seg.position)
            if seg.el(1) != str(len(ic.groups)):
                raise EdiError("count_mismatch", f"IEA01 says {seg.el(1)!r} groups; the interchange has "
                                                 f"{len(ic.groups)}", segment="IEA", position=seg.position)
            if seg.el(2) != ic.control:
                raise EdiError("control_mismatch", f"IEA02 {seg.el(2)!r} does not match ISA13 {ic.control!r}",
                               segment="IEA", position=seg.position)
            ended = True
        elif tset is None:
            raise EdiError("outside_set", "segment outside a transaction set", segment=seg.tag,
                           position=seg.position)
        else:
            tset.segments.append(seg)
    if not ended:
        last = segments[-1]
        raise EdiError("truncated", "the interchange ends without its IEA", segment=last.tag,
                       position=last.position)
    if not ic.groups:
        raise EdiError("empty", "the interchange holds no functional group", segment="IEA",
                       position=segments[-1].position)
    return ic


# -- writing ------------------------------------------------------------------------------

Elements = Sequence[str]


@dataclass(frozen=True)
class Party:
    qualifier: str  # ISA05/07: ZZ, 01, 08...
    id: str


def _segment(parts: Elements, d: Delimiters) -> str:
    values = list(parts)
    while len(values) > 1 and values[-1] == "":
        values.pop()  # trailing empty elements are omitted
    for value in values:
        for ch in (d.element, d.segment, d.component):
            if ch in value:
                raise ValueError(f"{values[0]}: value {value!r} contains the delimiter {ch!r}")
    return d.element.join(values)


def render(*, sender: Party, receiver: Party, control: int, group_control: int, functional_id: str,
           sets: Iterable[tuple[str, str, Sequence[Elements]]], when: dt.datetime, test: bool = False,
           version: str = "004010", d: Delimiters | None = None, newline: bool = True) -> str:
    """One interchange with one group; `sets` are (ST01, ST02, body segments without ST/SE).

    The trailers (SE, GE, IEA) and their counts are computed here, never by hand.
    """
    d = d or Delimiters()
    if not 0 < control <= 999_999_999:
        raise ValueError(f"interchange control number {control} out of range 1..999999999")
    end = d.segment + ("\n" if newline else "")
    isa = d.element.join([
        "ISA", "00", " " * 10, "00", " " * 10, sender.qualifier.ljust(2)[:2], sender.id.ljust(15)[:15],
        receiver.qualifier.ljust(2)[:2], receiver.id.ljust(15)[:15], when.strftime("%y%m%d"),
        when.strftime("%H%M"), "U", "00401", f"{control:09d}", "0", "T" if test else "P", d.component])
    out = [isa, _segment(["GS", functional_id, sender.id, receiver.id, when.strftime("%Y%m%d"),
                          when.strftime("%H%M"), str(group_control), "X", version], d)]
    n_sets = 0
    for code, set_control, body in sets:
        out.append(_segment(["ST", code, set_control], d))
        out.extend(_segment(s, d) for s in body)
        out.append(_segment(["SE", str(len(body) + 2), set_control], d))
        n_sets += 1
    out.append(_segment(["GE", str(n_sets), str(group_control)], d))
    out.append(_segment(["IEA", "1", f"{control:09d}"], d))
    return end.join(out) + end
