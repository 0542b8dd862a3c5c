"""EDI documents: every type round-trips, what we write reads back through independent readers
(pyx12 for X12, pydifact's own Interchange for EDIFACT), the reference samples read, and every
envelope fault is refused with the segment and its position."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal as D
from pathlib import Path

import pytest

from siteops.config.edi import parse_edi
from siteops.config.sites import PolicyError, load_registry
from siteops.connectors.edi import edifact, edifact_docs, x12, x12_docs
from siteops.connectors.edi.errors import EdiError
from siteops.connectors.edi.model import (
    AckLine,
    Acknowledgment,
    FunctionalAck,
    PoLine,
    PurchaseOrder,
    SetResult,
    ShipItem,
    ShipNotice,
    ShipOrder,
    ShipPack,
)

WHEN = dt.datetime(2024, 3, 15, 10, 30)
PO = PurchaseOrder(number="P00042", date=dt.date(2024, 3, 15), ship_to="WH-NORTH", currency="USD",
                   requested_delivery=dt.date(2024, 3, 22), buyer_name="North Branch", lines=(
                       PoLine("101", D("48"), "EA", D("12.50"), "SKU-123", "DC-0001", "012345678905", "Blue widget"),
                       PoLine("102", D("12.5"), "CA", D("80"), buyer_part="DC-0002"),
                       PoLine("103", D("3"), "EA", None)))
ACK = Acknowledgment(po_number="P00042", kind="changed", date=dt.date(2024, 3, 16), ship_to="WH-NORTH",
                     supplier_order="SO-9001", lines=(
                         AckLine("101", "accepted", D("48"), dt.date(2024, 3, 21)),
                         AckLine("102", "changed", D("10"), dt.date(2024, 3, 25)),
                         AckLine("102", "backordered", D("2")),
                         AckLine("103", "rejected")))
ASN = ShipNotice(shipment_id="ASN-77001", shipped=dt.date(2024, 3, 21), ship_to="WH-NORTH",
                 expected_delivery=dt.date(2024, 3, 23), carrier="UPSN", bill_of_lading="BOL-555001",
                 tracking="1Z999AA10123456784", orders=(ShipOrder("P00042", (
                     ShipPack("00354123450000000014", (ShipItem("101", D("48"), "EA", "SKU-123"),)),
                     ShipPack("00354123450000000021", (ShipItem("102", D("10"), "CA", "SKU-456"),
                                                       ShipItem("103", D("1.5"), "EA", "")))),),))
FA = FunctionalAck("2001", "PO", True, (SetResult("850", "0001", True),))


def x12_file(code: str, fid: str, body: list[list[str]], control: int = 1001) -> str:
    return x12.render(sender=x12.Party("ZZ", "DISTRIBCO"), receiver=x12.Party("ZZ", "ACMESUPPLY"), control=control,
                      group_control=2001, functional_id=fid, sets=[(code, "0001", body)], when=WHEN)


def edifact_file(kind: str, body: list[list[object]], control: int = 100001) -> str:
    return edifact.render(sender=("5412345000013", "14"), recipient=("4012345000009", "14"), control=control,
                          when=WHEN, messages=[("1", edifact_docs.S009[kind], body)])


@pytest.mark.parametrize("code,fid,doc,write,read", [
    ("850", "PO", PO, x12_docs.write_850, x12_docs.read_850),
    ("855", "PR", ACK, x12_docs.write_855, x12_docs.read_855),
    ("856", "SH", ASN, x12_docs.write_856, x12_docs.read_856),
    ("997", "FA", FA, x12_docs.write_997, x12_docs.read_997),
])
def test_x12_round_trip(code, fid, doc, write, read):
    text = x12_file(code, fid, write(doc))
    ic = x12.parse(text)
    assert [s.code for g in ic.groups for s in g.sets] == [code]
    assert read(ic.groups[0].sets[0]) == doc


@pytest.mark.parametrize("kind,doc,write,read", [
    ("ORDERS", PO, edifact_docs.write_orders, edifact_docs.read_orders),
    ("ORDRSP", ACK, edifact_docs.write_ordrsp, edifact_docs.read_ordrsp),
    ("DESADV", ASN, edifact_docs.write_desadv, edifact_docs.read_desadv),
])
def test_edifact_round_trip(kind, doc, write, read):
    if kind == "ORDRSP":  # EDIFACT carries one status per line: no split accepted/backordered line
        doc = Acknowledgment(**{**doc.__dict__, "lines": tuple(x for i, x in enumerate(doc.lines) if i != 2)})
    assert read(edifact.parse(edifact_file(kind, write(doc))).messages[0]) == doc


def test_contrl_round_trip_both_ways():
    fa = FunctionalAck("100001", "", False, (SetResult("ORDERS", "1", False),))
    body = edifact_docs.write_contrl(fa, sender=("5412345000013", "14"), recipient=("4012345000009", "14"))
    assert edifact_docs.read_contrl(edifact.parse(edifact_file("CONTRL", body)).messages[0]) == fa


def test_our_850_reads_back_identically_through_pyx12():
    import pyx12.x12file

    text = x12_file("850", "PO", x12_docs.write_850(PO))
    reader = pyx12.x12file.X12Reader(io.StringIO(text))
    theirs = [seg.format().rstrip("~\n") for seg in reader]
    assert reader.pop_errors() == []  # pyx12's own envelope checks (SE/GE/IEA counts, control numbers)
    ours = [x.strip() for x in text.split("~") if x.strip()]
    assert theirs == ours
    po1 = [s for s in theirs if s.startswith("PO1")]
    assert po1[0] == "PO1*101*48*EA*12.5*PE*VP*SKU-123*BP*DC-0001*UP*012345678905"


def test_our_orders_read_back_identically_through_pydifact():
    from pydifact.segmentcollection import Interchange

    text = edifact_file("ORDERS", edifact_docs.write_orders(PO))
    theirs = Interchange.from_str(text)
    assert theirs.control_reference == "100001"
    messages = list(theirs.get_messages())
    assert len(messages) == 1 and messages[0].identifier[0] == "ORDERS"
    mine = edifact.parse(text).messages[0]
    assert [(s.tag, list(s.elements)) for s in messages[0].segments] == [(s.tag, list(s.elements)) for s in
                                                                          mine.segments]
    lins = [s.elements for s in messages[0].segments if s.tag == "QTY"]
    assert lins[0] == [["21", "48", "EA"]]


_ROOT = Path(__file__).resolve().parents[2]
# shared/ sits beside the checkout (CI, the main checkout) or beside the worktrees' folder.
REF = next((p for p in (_ROOT.parent / "shared", _ROOT.parent.parent / "shared") if p.exists()),
           _ROOT.parent / "shared") / "reference" / "edi-carriers.md"


def _reference_sample(header: str) -> str:
    text = REF.read_text()
    block = text[text.index(header):]
    start = block.index("```") + 4
    return block[start:block.index("```", start)]


@pytest.mark.skipif(not REF.exists(), reason="the shared reference notes are not beside this checkout")
def test_reference_samples_read():
    ack = x12_docs.read_855(x12.parse(_reference_sample("**855 — supplier")).groups[0].sets[0])
    assert ack.po_number == "PO45001" and [a.status for a in ack.lines] == ["accepted", "changed", "backordered"]
    asn = x12_docs.read_856(x12.parse(_reference_sample("**856 — SOPI")).groups[0].sets[0])
    assert asn.carrier == "UPSN" and asn.tracking == "1Z999AA10123456784"
    assert [[i.quantity for i in p.items] for p in asn.orders[0].packs] == [[D(48)], [D(10)]]
    fa = x12_docs.read_997(x12.parse(_reference_sample("**997 rejecting")).groups[0].sets[0])
    assert fa.acknowledged_control == "2002" and not fa.accepted


GOOD_850 = x12_file("850", "PO", x12_docs.write_850(PO))


@pytest.mark.parametrize("mutate,code,segment", [
    (lambda t: t.replace("SE*11*0001", "SE*12*0001"), "count_mismatch", "SE"),
    (lambda t: t.replace("SE*11*0001", "SE*11*0002"), "control_mismatch", "SE"),
    (lambda t: t.replace("GE*1*2001", "GE*2*2001"), "count_mismatch", "GE"),
    (lambda t: t.replace("GE*1*2001", "GE*1*2002"), "control_mismatch", "GE"),
    (lambda t: t.replace("IEA*1*000001001", "IEA*1*000001002"), "control_mismatch", "IEA"),
    (lambda t: t.replace("IEA*1*000001001", "IEA*2*000001001"), "count_mismatch", "IEA"),
    (lambda t: t[: t.index("GE*")], "truncated", "SE"),
    (lambda t: t[:-30], "truncated", ""),
    (lambda t: t.replace("CTT*3", "CTT*4"), "count_mismatch", "CTT"),
    (lambda t: t.replace("20240315~\nCUR", "20241315~\nCUR"), "bad_date", "BEG"),
    (lambda t: t.replace("PO1*101*48", "PO1*101*4x8"), "bad_quantity", "PO1"),
    (lambda t: t + "ST*850*0002~\n", "after_iea", "ST"),
])
def test_envelope_and_content_faults_name_segment_and_position(mutate, code, segment):
    bad = mutate(GOOD_850)
    assert bad != GOOD_850
    with pytest.raises(EdiError) as info:
        x12_docs.read_850(x12.parse(bad).groups[0].sets[0])
    assert info.value.code == code
    if segment:
        assert info.value.segment == segment
        lines = [x.strip() for x in bad.split("~")]
        assert lines[info.value.position - 1].startswith(segment)  # the position points at that segment
    assert "position" in str(info.value)


def test_edifact_count_and_reference_faults():
    good = edifact_file("ORDRSP", edifact_docs.write_ordrsp(
        Acknowledgment("P1", "accepted", dt.date(2024, 1, 2), (AckLine("1", "accepted"),), "X")))
    for old, new, code, segment in (("UNT+9+1", "UNT+8+1", "count_mismatch", "UNT"),
                                    ("UNT+9+1", "UNT+9+2", "control_mismatch", "UNT"),
                                    ("UNZ+1+100001", "UNZ+2+100001", "count_mismatch", "UNZ"),
                                    ("UNZ+1+100001", "UNZ+1+100009", "control_mismatch", "UNZ")):
        assert old in good, good
        with pytest.raises(EdiError) as info:
            edifact.parse(good.replace(old, new))
        assert (info.value.code, info.value.segment) == (code, segment)
    with pytest.raises(EdiError) as info:
        edifact.parse(good[: good.index("UNT")])
    assert info.value.code == "truncated"


def test_partner_configuration_errors_name_file_partner_and_key(tmp_path):
    registry = load_registry()
    base = {"interchange_id": "US", "partners": {"P1": {"standard": "x12", "interchange_id": "THEM",
                                                       "odoo_vendor_ref": "V1", "ship_to": {"NORTH": "N"}}}}
    assert parse_edi({"edi": base}, tmp_path / "s.toml", registry).get("P1").site_for("N") == "NORTH"
    cases = [
        ({"standard": "x13"}, "standard: expected 'x12' or 'edifact'"),
        ({"version": "005010"}, "version: x12 version must be one of 004010"),
        ({"ship_to": {"MARS": "M"}}, "ship_to.MARS: unknown site"),
        ({"ship_to": {"NORTH": "N", "SOUTH": "N"}}, "ship_to.SOUTH: code 'N' is already site NORTH's"),
        ({"ack_deadline_hours": -1}, "ack_deadline_hours: expected a positive number"),
        ({"transport": "sftp"}, "sftp: transport is sftp"),
        ({"transport": "sftp", "sftp": {"host": "h", "username": "u", "host_key": "ssh-ed25519 AAAA"}},
         "sftp: give key_file or password_file"),
        ({"interchange_qualifier": "QQ"}, "interchange_qualifier: expected one of"),
        ({"colour": "red"}, "colour: unknown key"),
    ]
    for change, message in cases:
        data = {"edi": {**base, "partners": {"P1": {**base["partners"]["P1"], **change}}}}
        with pytest.raises(PolicyError) as info:
            parse_edi(data, tmp_path / "s.toml", registry)
        assert message in str(info.value) and "[edi.partners.P1]" in str(info.value) and "s.toml" in str(info.value)


def test_a_refused_file_gets_a_rejecting_997_naming_the_segment():
    from siteops.config.edi import load_edi
    from siteops.connectors.edi.inbound import read, rejection

    config = load_edi()
    ack = Acknowledgment(**{**ACK.__dict__, "lines": ACK.lines[:2]})
    text = x12.render(sender=x12.Party("ZZ", "ACMESUPPLY"), receiver=x12.Party("ZZ", "DISTRIBCO"), control=5,
                      group_control=6001, functional_id="PR", sets=[("855", "0001", x12_docs.write_855(ack))],
                      when=WHEN)
    bad = text.replace("ACK*IC*10", "ACK*IC*1O").encode()  # letter O for zero
    with pytest.raises(EdiError) as info:
        read(bad, config)
    assert info.value.code == "bad_quantity" and info.value.segment == "ACK"
    [fa] = rejection(bad, config.get("ACME"), info.value)
    reply = x12_docs.read_997(x12.parse(x12_file("997", "FA", x12_docs.write_997(fa))).groups[0].sets[0])
    assert reply.acknowledged_control == "6001" and not reply.accepted
    assert reply.sets[0].errors == (f"ACK:{info.value.position - 2}",)  # position within the set (ST = 1)
    stranger = bad.replace(b"ACMESUPPLY     ", b"SOMEONEELSE    ")
    assert rejection(stranger, config.get("ACME"), info.value) == []  # we do not answer strangers


def test_inbound_routes_by_ship_to_and_refuses_what_it_cannot_route():
    from siteops.config.edi import load_edi
    from siteops.connectors.edi.inbound import read

    config = load_edi()

    def from_acme(*acks: Acknowledgment, control: int = 5) -> bytes:
        return x12.render(sender=x12.Party("ZZ", "ACMESUPPLY"), receiver=x12.Party("ZZ", "DISTRIBCO"),
                          control=control, group_control=control, functional_id="PR",
                          sets=[("855", f"{i + 1:04d}", x12_docs.write_855(a)) for i, a in enumerate(acks)],
                          when=WHEN).encode()

    north = Acknowledgment(**{**ACK.__dict__, "ship_to": "WH-NORTH"})
    south = Acknowledgment(**{**ACK.__dict__, "ship_to": "WH-SOUTH"})
    assert read(from_acme(north), config, mailbox_partner="ACME").site == "NORTH"
    assert read(from_acme(south), config).site == "SOUTH"
    cases = [
        (from_acme(Acknowledgment(**{**ACK.__dict__, "ship_to": "WH-MARS"})), "unknown_ship_to", None),
        (from_acme(north, south), "mixed_sites", None),
        (from_acme(north), "unknown_partner", "EUROPA"),  # a file in the wrong partner's mailbox
        (from_acme(north).replace(b"DISTRIBCO      ", b"SOMEBODY       "), "wrong_receiver", None),
        (from_acme(north).replace(b"GS*PR", b"GS*SH"), "wrong_group", None),
    ]
    for data, code, mailbox in cases:
        with pytest.raises(EdiError) as info:
            read(data, config, mailbox_partner=mailbox)
        assert info.value.code == code, (code, info.value)
