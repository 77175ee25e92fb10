#!/usr/bin/env python3
"""Render the HTML report of a real transcript in headless Chromium and save a screenshot.

Usage: scripts/screenshot_report.py TRANSCRIPT.json OUT.png [--click N]
The report is written beside the JSON (so the media's relative path resolves), then shown at
1280 px wide with the N-th segment clicked (the player seeks there and highlights it).
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from toolkit.report import HtmlWriter
from toolkit.transcript import Transcript

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-quic", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("transcript", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--click", type=int, default=3, help="segment to click, from 0")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    report = HtmlWriter().write(Transcript.load(args.transcript), args.transcript.with_suffix(".html"))
    profile = tempfile.mkdtemp()
    try:
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(profile, executable_path=args.chromium, headless=True,
                                                        args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900})
            page = ctx.new_page()
            page.goto(report.as_uri())
            deadline = time.time() + 20
            while not page.evaluate("document.getElementById('media').readyState >= 2"):
                if time.time() > deadline:
                    sys.exit("the media did not load in the report")
                time.sleep(0.05)
            page.locator("tr.seg").nth(args.click).click()
            time.sleep(0.5)
            page.mouse.move(0, 0)
            page.screenshot(path=str(args.out), full_page=True)
            ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    print(args.out)


if __name__ == "__main__":
    main()
