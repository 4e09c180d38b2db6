"""Take the screenshots of the web pages that docs/pages.md and the README show.

    .venv/bin/python docs/screenshots.py [--chromium /usr/bin/chromium]

It builds a throwaway SQLite store from the conformance stories (tests/data), serves it
with `relledger serve` on a free loopback port, signs in with a fresh auditor key in
Chromium (driven by Playwright, as the page tests do) and writes docs/images/*.png.
Run it again after changing a template or the stylesheet.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
STORIES = ROOT / "tests" / "data" / "events.jsonl"
SHOTS = {
    "relationships.png": ("/", "", None),
    "relationship.png": ("/relationships/rnd%2F0009", "#trust-table-title", 15),
    "relationship-as-of.png": (
        "/relationships/acme%2Fsteady?as_of=2025-03-15&policy=v1",
        "#trust-table-title",
        None,
    ),
}
"""Image: the page, where the picture stops ("": the whole page), the point to focus."""
WIDTH, HEIGHT = 1200, 1000


def relledger(store: str, *arguments: str) -> str:
    command = [sys.executable, "-m", "relledger", "--db", store, *arguments]
    done = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    return done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"relledger serve did not answer at {url}")


def shoot(page: Page, url: str, stop: str, point: int | None, image: Path) -> None:
    page.goto(url)
    if point is not None:
        page.locator(".series-1 .point").nth(point).focus()
    if not stop:
        page.screenshot(path=image, full_page=True)
        return
    bottom = page.locator(stop).bounding_box()
    assert bottom is not None, stop
    page.screenshot(
        path=image, full_page=True, clip={"x": 0, "y": 0, "width": WIDTH, "height": bottom["y"]}
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    chromium = parser.parse_args().chromium
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        store = f"sqlite:///{folder}/ledger.db"
        relledger(store, "migrate")
        relledger(store, "ingest", "--max-future-skew", "3650", str(STORIES))
        relledger(store, "project")
        key = relledger(store, "keys", "create", "--role", "auditor", "--name", "docs")
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "relledger", "--db", store, "serve", "--port", str(port)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "NO_COLOR": "1"},
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(base)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium)
                page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
                page.goto(base + "/login")
                page.fill("#key", key.strip().splitlines()[-1])
                page.click("form.login button[type=submit]")
                for name, (path, stop, point) in SHOTS.items():
                    shoot(page, base + path, stop, point, IMAGES / name)
                    print(IMAGES / name)
                browser.close()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)


if __name__ == "__main__":
    main()
