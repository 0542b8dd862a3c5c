"""The inbound path without I/O: bytes -> a checked, mapped, routed interchange, or EdiError.

`read()` is what every received file goes through (and what the property test feeds
with mutated interchanges): decode (the encoding the standard and the UNB declare;
binary junk refused), tokenize, check the envelopes, identify the partner (it must be
the mailbox's partner, writing to us), map every document to the neutral model and
route it to a site by its ship-to code. Anything else than a clean result is an
`EdiError` naming what and where — nothing is guessed, nothing is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from siteops.config.edi import EdiConfig, Partner
from siteops.connectors.edi import edifact, edifact_docs, x12, x12_docs
from siteops.connectors.edi.errors import EdiError
from siteops.connectors.edi.model import Acknowledgment, Document, FunctionalAck, SetResult, ShipNotice

MAX_BYTES = 10 * 1024 * 1024
# What we accept from a partner (what we send is never read back on our side).
X12_INBOUND = {"855": "PR", "856": "SH", "997": "FA"}
EDIFACT_INBOUND = {"ORDRSP", "DESADV", "CONTRL"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # control characters other than tab, CR, LF


@dataclass(frozen=True)
class ReadDoc:
    kind: str  # 855, 856, 997, ORDRSP, DESADV, CONTRL
    control: str  # ST02 / UNH 0062
    doc: Document
    site: str | None  # from the ship-to code; None for acknowledgments (they follow their exchange)


@dataclass
class Inbound:
    standard: str
    partner: Partner
    interchange_control: str
    documents: list[ReadDoc] = field(default_factory=list)
    #: what our 997 / CONTRL acknowledges: (functional id, group control, [(set code, control)])
    groups: list[tuple[str, str, list[tuple[str, str]]]] = field(default_factory=list)

    @property
    def site(self) -> str | None:
        sites = {d.site for d in self.documents if d.site}
        return next(iter(sites)) if sites else None

    @property
    def kinds(self) -> str:
        return ",".join(dict.fromkeys(d.kind for d in self.documents))

    def functional_ack(self) -> list[FunctionalAck]:
        """What we answer: one 997 per group (X12), one CONTRL per interchange (EDIFACT).

        Only for a file we accepted; acknowledgments themselves are not acknowledged.
        """
        acks = []
        for fid, control, sets in self.groups:
            if fid in ("FA", "CONTRL"):
                continue
            acks.append(FunctionalAck(acknowledged_control=control, functional_id=fid, accepted=True,
                                      sets=tuple(SetResult(code=c, control=n, accepted=True) for c, n in sets)))
        return acks


def _decode(data: bytes, encoding: str) -> str:
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise EdiError("encoding", f"byte 0x{data[exc.start]:02x} at offset {exc.start} is not {encoding}") from None
    bad = _CONTROL.search(text)
    if bad:
        raise EdiError("binary", f"control character 0x{ord(bad.group()):02x} at offset {bad.start()}: not a "
                                 "text interchange")
    return text


def detect(data: bytes) -> str:
    if not data:
        raise EdiError("empty", "the file is empty")
    if len(data) > MAX_BYTES:
        raise EdiError("too_large", f"{len(data)} bytes; the limit is {MAX_BYTES}")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:200]:
        raise EdiError("encoding", "UTF-16 or binary content: X12 and EDIFACT files are 8-bit text")
    head = data.lstrip(b"\xef\xbb\xbf \r\n\t")[:3]
    if head == b"ISA":
        return "x12"
    if head in (b"UNA", b"UNB"):
        return "edifact"
    raise EdiError("unknown_format", f"starts with {head!r}: neither X12 (ISA) nor EDIFACT (UNA/UNB)")


def read(data: bytes, config: EdiConfig, *, mailbox_partner: str | None = None) -> Inbound:
    standard = detect(data)
    if standard == "x12":
        return _read_x12(_decode(data, "ascii"), config, mailbox_partner)
    # The syntax level names the character set: UNOA/UNOB ASCII, UNOC Latin-1, UNOY UTF-8.
    probe = data.decode("latin-1")
    level = probe[probe.find("UNB") + 4:probe.find("UNB") + 8] if "UNB" in probe[:200] else ""
    encoding = {"UNOA": "ascii", "UNOB": "ascii", "UNOC": "latin-1", "UNOY": "utf-8"}.get(level)
    if encoding is None:
        raise EdiError("encoding", f"UNB syntax identifier {level!r} is not one we read (UNOA, UNOB, UNOC, UNOY)",
                       segment="UNB", position=1)
    return _read_edifact(_decode(data, encoding), config, mailbox_partner)


def _partner(config: EdiConfig, standard: str, sender: str, receiver: str, segment: str,
             mailbox_partner: str | None) -> Partner:
    partner = next((p for p in config if p.standard == standard and p.interchange_id == sender), None)
    if partner is None:
        raise EdiError("unknown_partner", f"sender {sender[:35]!r} is no configured {standard} partner",
                       segment=segment, position=1)
    if mailbox_partner is not None and partner.id != mailbox_partner:
        raise EdiError("unknown_partner", f"sender {sender!r} is partner {partner.id}, not this mailbox's "
                                          f"partner {mailbox_partner}", segment=segment, position=1)
    ours = {config.interchange_id, config.gln} - {""}
    if receiver not in ours:
        raise EdiError("wrong_receiver", f"addressed to {receiver[:35]!r}, not to us ({', '.join(sorted(ours))})",
                       segment=segment, position=1)
    return partner


def _route(partner: Partner, doc: Document, segment: str, position: int) -> str | None:
    if not isinstance(doc, Acknowledgment | ShipNotice):
        return None
    if not doc.ship_to:
        raise EdiError("unknown_ship_to", "the document names no ship-to (N1*ST / NAD+DP): it cannot be routed "
                                          "to a site", segment=segment, position=position)
    site = partner.site_for(doc.ship_to)
    if site is None:
        raise EdiError("unknown_ship_to", f"ship-to {doc.ship_to[:35]!r} is no site of ours at partner "
                                          f"{partner.id}", segment=segment, position=position)
    return site


def _one_site(result: Inbound) -> Inbound:
    sites = {d.site for d in result.documents if d.site}
    if len(sites) > 1:
        raise EdiError("mixed_sites", f"documents for several sites ({', '.join(sorted(sites))}) in one "
                                      "interchange: send one interchange per ship-to")
    return result


def _read_x12(text: str, config: EdiConfig, mailbox_partner: str | None) -> Inbound:
    ic = x12.parse(text)
    partner = _partner(config, "x12", ic.sender, ic.receiver, "ISA", mailbox_partner)
    if ic.version != "00401":
        raise EdiError("wrong_version", f"ISA12 {ic.version!r}: partner {partner.id} speaks 004010 (00401)",
                       segment="ISA", position=1)
    result = Inbound(standard="x12", partner=partner, interchange_control=ic.control)
    for group in ic.groups:
        if not group.version.startswith(partner.version):
            raise EdiError("wrong_version", f"GS08 {group.version!r}: partner {partner.id} speaks {partner.version}",
                           segment="GS", position=group.position)
        for tset in group.sets:
            fid = X12_INBOUND.get(tset.code)
            if fid is None:
                raise EdiError("unsupported", f"transaction set {tset.code!r} is not one we receive "
                                              f"({', '.join(X12_INBOUND)})", segment="ST", position=tset.position)
            if group.functional_id != fid:
                raise EdiError("wrong_group", f"a {tset.code} in a group of functional id {group.functional_id!r} "
                                              f"(expected {fid})", segment="ST", position=tset.position)
            doc = x12_docs.READERS[tset.code](tset)
            result.documents.append(ReadDoc(tset.code, tset.control, doc,
                                            _route(partner, doc, "ST", tset.position)))
        result.groups.append((group.functional_id, group.control, [(s.code, s.control) for s in group.sets]))
    return _one_site(result)


def _read_edifact(text: str, config: EdiConfig, mailbox_partner: str | None) -> Inbound:
    ic = edifact.parse(text)
    partner = _partner(config, "edifact", ic.sender, ic.recipient, "UNB", mailbox_partner)
    result = Inbound(standard="edifact", partner=partner, interchange_control=ic.control)
    for msg in ic.messages:
        if msg.type not in EDIFACT_INBOUND:
            raise EdiError("unsupported", f"message {msg.type[:10]!r} is not one we receive "
                                          f"({', '.join(sorted(EDIFACT_INBOUND))})", segment="UNH",
                           position=msg.position)
        if msg.type != "CONTRL" and msg.version != "D:96A":
            raise EdiError("wrong_version", f"message version {msg.version!r}: partner {partner.id} speaks D96A",
                           segment="UNH", position=msg.position)
        doc = edifact_docs.READERS[msg.type](msg)
        result.documents.append(ReadDoc(msg.type, msg.reference, doc, _route(partner, doc, "UNH", msg.position)))
    kinds = sorted({m.type for m in ic.messages})
    result.groups.append(("CONTRL" if kinds == ["CONTRL"] else ",".join(kinds), ic.control,
                          [(m.type, m.reference) for m in ic.messages]))
    return _one_site(result)


def rejection(data: bytes, partner: Partner, error: EdiError) -> list[FunctionalAck]:
    """What a refused file of `partner` gets back: a rejecting 997 per group (X12) or a CONTRL
    with action 4 (EDIFACT) — only when its envelope is readable enough to say what we refuse
    and it really comes from this partner. Acknowledgments are never acknowledged."""
    try:
        text = data.decode("latin-1")
        if detect(data) == "x12":
            _, segments = x12.tokenize(text)
            if segments[0].el(6).strip() != partner.interchange_id:
                return []
            acks: list[FunctionalAck] = []
            group: tuple[str, str] | None = None
            sets: list[SetResult] = []
            start = 0
            code, control = "", ""
            for seg in segments:
                if seg.tag == "GS":
                    group, sets = (seg.el(1), seg.el(6)), []
                elif seg.tag == "ST":
                    code, control, start = seg.el(1), seg.el(2), seg.position
                elif seg.tag == "SE" or (seg.tag == "GE" and code):
                    where: tuple[str, ...] = ()
                    if error.position and start <= error.position <= seg.position:
                        where = (f"{error.segment}:{error.position - start + 1}",)
                    sets.append(SetResult(code, control, False, where))
                    code = ""
                if seg.tag == "GE" and group:
                    acks.append(FunctionalAck(group[1], group[0], False, tuple(sets)))
                    group = None
            if group:  # truncated before its GE
                if code:
                    sets.append(SetResult(code, control, False))
                acks.append(FunctionalAck(group[1], group[0], False, tuple(sets)))
            return [a for a in acks if a.functional_id != "FA" and a.acknowledged_control]
        segs = edifact.tokenize(text)
        if not segs or segs[0].tag != "UNB" or segs[0].el(2) != partner.interchange_id or not segs[0].el(5):
            return []
        msgs = tuple(SetResult(s.el(2), s.el(1), False) for s in segs if s.tag == "UNH")
        if any(m.code == "CONTRL" for m in msgs):
            return []
        return [FunctionalAck(segs[0].el(5), "", False, msgs)]
    except EdiError:
        return []  # not even an envelope: the reason file and the finding say why
