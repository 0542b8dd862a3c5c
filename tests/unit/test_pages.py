"""What a person sees: report.html on a grid with a legend and rounded numbers; the webhook
receiver's page, an HTML table of deliveries (JSON for programs)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx

from siteops.connectors.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from siteops.services.report import SiteStats, write_chart
from siteops.sim.webhook import Receiver, serve


def test_report_html_is_a_grid_of_panels_with_legends_and_rounded_numbers(tmp_path: Path) -> None:
    stats = [SiteStats(site="CW", open_by_kind={"aging_transfers": 3, "stock_anomalies": 2}, runs=9,
                       failure_rate=2 / 9, retry_rate=1 / 3, median_transfer_age_h=51.25, stalest_scan_age_s=61.0,
                       approval_cycle_s=5400.0, approvals_pending=4),
             SiteStats(site="WEB", open_by_kind={"aging_transfers": 0, "stock_anomalies": 7}, runs=0)]
    page = write_chart(stats, tmp_path / "report.html").read_text()
    assert "display:grid" in page and page.count("<section class=panel>") == 8
    assert page.count("<ul class=legend>") == 8 and "<li><span" in page and ">failures</li>" in page
    text = re.sub(r"<style>.*?</style>", "", page)
    assert "22.2" in text and "33.3" in text  # 2/9 and 1/3 as percentages, rounded
    assert not re.findall(r"\d\.\d{2,}", re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d", "", text)), "unrounded numbers"
    assert ">5</text>" in text and ">7</text>" in text  # the stacked totals of open findings
    # Approvals side by side: CW's 1.5 h cycle and 4 pending.
    approvals = text[text.index("Approval cycle time (h)"):]
    assert ">1.5</text>" in approvals and ">4</text>" in approvals[approvals.index("Approvals pending"):]


def post(url: str, secret: str, payload: dict[str, object], delivery: str) -> int:
    body = json.dumps(payload).encode()
    stamp = str(int(time.time()))
    return httpx.post(url, content=body, headers={TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(secret, stamp, body),
                                                  DELIVERY_HEADER: delivery}).status_code


def test_the_receivers_page_is_a_table_and_json_stays_for_programs() -> None:
    receiver = Receiver(secret="s3")
    server = serve(receiver)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        finding = {"kind": "aging_transfers", "severity": 2, "title": "CW/INT/0007 open 50 h <late>",
                   "record_name": "CW/INT/0007"}
        opened = {"event": "finding.opened", "site": "CW", "finding": finding}
        assert post(f"{base}/siteops", "s3", opened, "d-1") == 200
        assert post(f"{base}/siteops", "wrong", {"event": "x"}, "d-2") == 401
        page = httpx.get(base + "/", headers={"Accept": "text/html,application/xhtml+xml"})
        assert page.headers["content-type"].startswith("text/html")
        assert "<table>" in page.text and "<td>CW/INT/0007 open 50 h &lt;late&gt;</td>" in page.text
        assert "1 deliveries, 2 attempts (1 with a bad signature)" in page.text
        for url, accept in ((base + "/", "*/*"), (base + "/deliveries.json", "text/html"),
                            (base + "/?format=json", "text/html")):
            data = httpx.get(url, headers={"Accept": accept}).json()
            assert list(data["deliveries"]) == ["d-1"] and data["attempts"] == 2, url
        assert httpx.get(base + "/nope").status_code == 404
    finally:
        server.shutdown()
