"""Inbound ship notices per second: our whole inbound path against the syntax library's bare parse.

856s (X12) and DESADVs (EDIFACT) with 50 lines each. "ours" is what every received file
goes through: decode, tokenize, envelope and count checks, mapping to the neutral ship
notice, partner identification and ship-to routing (`siteops.connectors.edi.inbound.read`).
The floor, in the same run, is the bare parse of the same bytes by a maintained syntax
library: pyx12's X12Reader iterating the segments for X12, pydifact's Parser for EDIFACT.
Goal: ours within 2x of the floor (ratio <= 2).

    python bench/edi_inbound.py [--files 200] [--lines 50]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def notices(n_files: int, n_lines: int, standard: str) -> list[bytes]:
    from siteops.connectors.edi import edifact, edifact_docs, x12, x12_docs
    from siteops.connectors.edi.model import ShipItem, ShipNotice, ShipOrder, ShipPack

    out = []
    when = dt.datetime(2026, 11, 30, 12, 0)
    for i in range(n_files):
        packs = tuple(ShipPack(f"0035412345{i:04d}{j:06d}", (ShipItem(str(1000 + j), Decimal(5 + j % 7), "EA",
                                                                       f"SKU-{j:05d}"),)) for j in range(n_lines))
        ship_to = "WH-NORTH" if standard == "x12" else "5412345000037"
        asn = ShipNotice(f"ASN-{i}", dt.date(2026, 11, 30), ship_to, (ShipOrder(f"P{i:05d}", packs),),
                         dt.date(2026, 12, 3), "SIMF", f"BOL-{i}", f"SIM{i:010d}")
        if standard == "x12":
            text = x12.render(sender=x12.Party("ZZ", "ACMESUPPLY"), receiver=x12.Party("ZZ", "DISTRIBCO"),
                              control=i + 1, group_control=i + 1, functional_id="SH",
                              sets=[("856", "0001", x12_docs.write_856(asn))], when=when)
        else:
            text = edifact.render(sender=("4012345000009", "14"), recipient=("5412345000013", "14"), control=i + 1,
                                  when=when, messages=[("1", edifact_docs.S009["DESADV"],
                                                        edifact_docs.write_desadv(asn))])
        out.append(text.encode("latin-1"))
    return out


def rate(fn, files: list[bytes], rounds: int = 1) -> float:
    best = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        for data in files:
            fn(data)
        best = max(best, len(files) / (time.perf_counter() - t0))
    return best


def paired(ours, floor, files: list[bytes], rounds: int = 5) -> tuple[float, float]:
    """Best rate of each, rounds interleaved: on a shared machine both see the same load."""
    mine = base = 0.0
    for _ in range(rounds):
        mine, base = max(mine, rate(ours, files)), max(base, rate(floor, files))
    return mine, base


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--lines", type=int, default=50)
    args = parser.parse_args()
    import warnings

    warnings.filterwarnings("ignore")
    import pyx12.x12file
    from pydifact.parser import Parser

    from siteops.config.edi import load_edi
    from siteops.connectors.edi import x12
    from siteops.connectors.edi.inbound import read

    config = load_edi(ROOT / "sites.toml")

    def ours(data: bytes) -> None:
        result = read(data, config)
        assert result.site == "NORTH" and len(result.documents[0].doc.orders[0].packs) == args.lines

    def pyx12_bare(data: bytes) -> None:
        reader = pyx12.x12file.X12Reader(io.StringIO(data.decode("ascii")))
        for _ in reader:
            pass

    def pydifact_bare(data: bytes) -> None:
        for _ in Parser().parse(data.decode("latin-1")):
            pass

    def tokenizer_only(data: bytes) -> None:
        x12.tokenize(data.decode("ascii"))

    print(f"{args.files} ship notices of {args.lines} lines each, best of 5 interleaved rounds, one core")
    for standard, floor_name, floor in (("x12", "pyx12 X12Reader", pyx12_bare),
                                        ("edifact", "pydifact Parser", pydifact_bare)):
        files = notices(args.files, args.lines, standard)
        mine, base = paired(ours, floor, files)
        print(f"{standard:8s} parse+validate+map+route: {mine:8.0f}/s   bare parse ({floor_name}): {base:8.0f}/s   "
              f"ours/floor time = {base / mine:.2f}x (goal <= 2)")
        if standard == "x12":
            print(f"{'':8s} our tokenizer alone: {rate(tokenizer_only, files):8.0f}/s")


if __name__ == "__main__":
    main()
