"""The README's "run it" step in a real headless browser: `emojibot serve` with no tokens,
Debian's chromium driven by Playwright: type, see reactions, click one, use /emojify."""

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

CHROMIUM = os.environ.get("EMOJIBOT_CHROMIUM", "/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def server(tmp_path):
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.fail("chromium is not installed: run the README's install command (apt-get install -y chromium)")
    port = _free_port()
    db = tmp_path / "play.sqlite"
    env = {**os.environ, "EMOJIBOT_DATABASE_URL": f"sqlite+aiosqlite:///{db}", "EMOJIBOT_PORT": str(port)}
    env.pop("EMOJIBOT_SLACK_BOT_TOKEN", None)
    env.pop("EMOJIBOT_DATA_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                proc.kill()
                pytest.fail(f"emojibot serve did not come up:\n{out[-3000:]}")
            time.sleep(0.5)
    yield url, db
    proc.terminate()
    proc.wait(timeout=30)


def test_playground_in_a_real_browser(server):
    from playwright.sync_api import sync_playwright

    url, db = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(url)
        page.fill("#text", "merry christmas everyone")
        page.click("#send")
        chip = page.locator(".chip").first
        chip.wait_for(timeout=30_000)
        assert chip.inner_text() == "🎄"
        chip.click()
        page.wait_for_selector(".chip.mine", timeout=10_000)
        page.fill("#text", "/emojify pizza night with friends")
        page.click("#send")
        page.wait_for_selector("text=Only you can see this.", timeout=30_000)
        # the admin bar (this browser is on loopback: an admin): retrain status, and a retrain
        # that says why it cannot run here (no training data configured)
        page.click("text=Retrain status")
        page.wait_for_selector("text=No retrain has run yet.", timeout=10_000)
        page.click("text=Retrain from reactions")
        page.wait_for_selector("text=EMOJIBOT_DATA_DIR", timeout=10_000)
        browser.close()

    from bot.store.repository import ChannelConfig, Store

    async def rows():
        store = Store(f"sqlite+aiosqlite:///{db}", ChannelConfig(False, 0, 3))
        try:
            return await store.rows("reaction_events"), await store.rows("predictions")
        finally:
            await store.close()

    reactions, predictions = asyncio.run(rows())
    assert [(r["emoji"], r["added"]) for r in reactions] == [("🎄", True)]
    assert {p["kind"] for p in predictions} == {"text", "command"}
