"""Property test: mutated interchanges through the inbound path (decode, tokenize, envelopes,
mapping, routing). Every input ends as a routed, mapped interchange or as an EdiError with a
code and a message — never another exception (a worker crash), never silently nothing."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siteops.config.edi import load_edi
from siteops.connectors.edi import edifact, edifact_docs, x12, x12_docs
from siteops.connectors.edi.errors import EdiError
from siteops.connectors.edi.inbound import read
from siteops.sim.edi import answer
from tests.unit.test_edi_documents import PO

CONFIG = load_edi()
WHEN = dt.datetime(2024, 3, 15, 10, 30)


def _x12(code: str, fid: str, body: list[list[str]]) -> bytes:
    return x12.render(sender=x12.Party("ZZ", "ACMESUPPLY"), receiver=x12.Party("ZZ", "DISTRIBCO"), control=7,
                      group_control=7, functional_id=fid, sets=[(code, "0001", body)], when=WHEN).encode()


def _edifact(kind: str, body: list[list[object]]) -> bytes:
    return edifact.render(sender=("4012345000009", "14"), recipient=("5412345000013", "14"), control=9, when=WHEN,
                          messages=[("1", edifact_docs.S009[kind], body)]).encode("latin-1")


ack, asn = answer(PO, dt.date(2024, 3, 16))
x_po = type(PO)(**{**PO.__dict__, "ship_to": "WH-NORTH"})
x_ack, x_asn = answer(x_po, dt.date(2024, 3, 16))
e_po = type(PO)(**{**PO.__dict__, "ship_to": "5412345000037"})
e_ack, e_asn = answer(e_po, dt.date(2024, 3, 16))
SEEDS = [
    _x12("855", "PR", x12_docs.write_855(x_ack)),
    _x12("856", "SH", x12_docs.write_856(x_asn)),
    _x12("997", "FA", x12_docs.write_997(x12_docs.FunctionalAck("2001", "PO", True, ()))),
    _edifact("ORDRSP", edifact_docs.write_ordrsp(e_ack)),
    _edifact("DESADV", edifact_docs.write_desadv(e_asn)),
]


def test_seeds_read_cleanly():
    for seed in SEEDS:
        result = read(seed, CONFIG)
        assert result.documents


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "delete", "insert", "truncate", "duplicate", "swap_digit", "junk"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] = draw(st.integers(0, 255))
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 20))]
        elif op == "insert":
            data[i:i] = draw(st.sampled_from([b"*", b"~", b"+", b"'", b"?", b":", b"\n", b"\x00", b"\xe9", b"99",
                                              b"SE*1*0001~", b"UNT+2+1'", b"HL*9*77*I~", b"ACK*ZZ~"]))
        elif op == "truncate":
            del data[i:]
        elif op == "duplicate":
            j = draw(st.integers(i, min(len(data), i + 60)))
            data[j:j] = data[i:j]
        elif op == "swap_digit" and chr(data[i]).isdigit():
            data[i] = ord(str((int(chr(data[i])) + draw(st.integers(1, 9))) % 10))
        elif op == "junk":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


@settings(max_examples=1200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_interchanges_never_crash_and_never_vanish(data):
    try:
        result = read(data, CONFIG)
    except EdiError as exc:
        assert exc.code and exc.message  # quarantined with a reason
        return
    # Accepted: it must still be a whole, routed interchange (not a silently shortened one).
    assert result.documents, "an accepted file must carry documents"
    assert result.partner.id in ("ACME", "EUROPA")
    for doc in result.documents:
        assert doc.site in (None, "NORTH")
