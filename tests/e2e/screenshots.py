"""Screenshots of what a person looks at, taken in a real headless Chromium.

report.html, Flower's Workers page and the webhook receiver's page: the e2e test of
`siteops run` takes them (tests/e2e/test_make_run.py) so that a layout regression is seen,
and checks each PNG exists and is not blank. Chromium is Debian's `chromium` package
(.ci/deploy-deps installs it). Set SITEOPS_SCREENSHOTS=<folder> to keep the PNGs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

#: A blank or error page has a handful of colours; a page with text and charts has hundreds.
MIN_COLOURS = 64


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    reason = "chromium not found: install the Debian package chromium (.ci/deploy-deps)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def take(pages: dict[str, str], out: Path, size: tuple[int, int] = (1400, 1000)) -> dict[str, Path]:
    """Screenshot every `name: url` at once (one headless browser each, in parallel)."""
    exe = chromium()
    out.mkdir(parents=True, exist_ok=True)
    procs = {}
    for name, url in pages.items():
        png = out / f"{name}.png"
        profile = out / f".profile-{name}"
        procs[name] = (png, subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
             "--virtual-time-budget=4000", f"--screenshot={png}", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True))
    shots = {}
    for name, (png, proc) in procs.items():
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(10)
        shutil.rmtree(out / f".profile-{name}", ignore_errors=True)
        shots[name] = png
    keep = os.environ.get("SITEOPS_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for png in shots.values():
            if png.exists():
                shutil.copy(png, Path(keep) / png.name)
    return shots


def distinct_colours(png: Path) -> int:
    from PIL import Image

    with Image.open(png) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    return len(colours or [])


def assert_not_blank(shots: dict[str, Path]) -> None:
    for name, png in shots.items():
        assert png.exists() and png.stat().st_size > 0, f"no screenshot of {name}"
        n = distinct_colours(png)
        assert n >= MIN_COLOURS, f"the {name} screenshot looks blank ({n} colours): {png}"


def shoot_the_stack(tmp: Path, env: dict[str, str], var: Path, flower_port: int, webhook_port: int) -> dict[str, Path]:
    """The three pages of a running `siteops run`, screenshotted and checked not blank."""
    import sys

    from tests.conftest import ROOT

    report = tmp / "report.html"
    made = subprocess.run([sys.executable, "-m", "siteops.cli", "report", "sites", "--out", str(report)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stdout + made.stderr
    user, password = (var / "flower-auth").read_text().strip().split(":", 1)
    shots = take({"report": report.as_uri(),
                  "flower": f"http://{user}:{password}@127.0.0.1:{flower_port}/",
                  "webhook-receiver": f"http://127.0.0.1:{webhook_port}/"}, tmp / "screenshots")
    assert_not_blank(shots)
    return shots
