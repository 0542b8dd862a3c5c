"""`siteops edi exchanges`: lists what the store holds, filtered; a bad --state is a clear error."""

from __future__ import annotations

import json

from typer.testing import CliRunner


def test_exchanges_listed_and_filtered(store_url):
    from siteops.cli import app
    from siteops.store import exchanges

    exchanges.add(direction="out", partner="ACME", site="NORTH", standard="x12", doc_type="850", filename="a.edi",
                  checksum="1", state="sent", business_key="P00001")
    exchanges.add(direction="in", partner="EUROPA", site="SOUTH", standard="edifact", doc_type="ORDRSP",
                  filename="b.edi", checksum="2", state="error", error="count_mismatch")
    runner = CliRunner()
    result = runner.invoke(app, ["edi", "exchanges", "--json", "--site", "NORTH"])
    assert result.exit_code == 0, result.output
    assert [(r["partner"], r["business_key"]) for r in json.loads(result.output)] == [("ACME", "P00001")]
    result = runner.invoke(app, ["edi", "exchanges", "--state", "error"])
    assert result.exit_code == 0 and "EUROPA" in result.output and "ACME" not in result.output
    result = runner.invoke(app, ["edi", "exchanges", "--state", "lost"])
    assert result.exit_code == 2 and "expected one of" in result.output
