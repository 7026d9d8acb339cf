"""The README's "run it" step in a real headless browser: `emojibot serve` with no tokens,
Debian's chromium driven by Playwright, through every state of the playground."""

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from functools import partial

import pytest

CHROMIUM = os.environ.get("EMOJIBOT_CHROMIUM", "/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def server(tmp_path, data_dir):
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.fail("chromium is not installed: run the README's install command (apt-get install -y chromium)")
    port = _free_port()
    db = tmp_path / "play.sqlite"
    env = {**os.environ, "EMOJIBOT_DATABASE_URL": f"sqlite+aiosqlite:///{db}", "EMOJIBOT_PORT": str(port)}
    env.pop("EMOJIBOT_SLACK_BOT_TOKEN", None)
    env["EMOJIBOT_DATA_DIR"] = str(data_dir)  # the admin view can start a retrain
    env["EMOJIBOT_MODELS_DIR"] = str(tmp_path / "models")
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


SHOTS = os.environ.get("EMOJIBOT_SCREENSHOTS")  # also keep the screenshots there (docs/)


def _shot(page, tmp_path, name: str) -> None:
    png = page.screenshot(full_page=False)
    assert len(png) > 1000
    (tmp_path / f"{name}.png").write_bytes(png)
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        with open(os.path.join(SHOTS, f"playground-{name}.png"), "wb") as f:
            f.write(png)


_NOT_LOADED = """() => [...document.querySelectorAll("img.emoji")]
    .filter((i) => i.offsetParent !== null)
    .filter((i) => !(i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width > 0))
    .map((i) => i.alt)"""


def _emoji_images_loaded(page) -> int:
    """Every visible emoji picture on the page loads with a real size (given 10 s); returns
    how many there are."""
    try:
        page.wait_for_function(f"() => ({_NOT_LOADED})().length === 0", timeout=10_000)
    except Exception:
        pass
    bad = page.evaluate(_NOT_LOADED)
    assert bad == [], f"emoji pictures that did not load: {bad}"
    return page.evaluate("() => document.querySelectorAll('img.emoji').length")


def _rows(db):
    from bot.store.repository import ChannelConfig, Store

    async def rows():
        store = Store(f"sqlite+aiosqlite:///{db}", ChannelConfig(False, 0, 3))
        try:
            return (
                await store.rows("reaction_events"),
                await store.rows("predictions"),
                await store.rows("channel_settings"),
            )
        finally:
            await store.close()

    return asyncio.run(rows())


def test_playground_in_a_real_browser(server, tmp_path, data_dir):
    """Every state a newcomer sees, in Debian's Chromium (no colour-emoji font installed):
    each emoji is a Twemoji picture that loaded, replies show no raw markup, the picker's
    reaction reaches the store, the admin view reads the registry, all with the keyboard
    and at phone width."""
    import numpy as np
    from playwright.sync_api import sync_playwright

    url, db = server
    z = np.load(data_dir / "tinyimagenet_emoji" / "train.npz")
    photo = tmp_path / "frog.jpg"
    photo.write_bytes(z["jpeg"][z["offsets"][0] : z["offsets"][1]].tobytes())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 760})
        with page.expect_response("**/api/catalog"):
            page.goto(url)
        # a message, typed and sent with the keyboard alone (the page puts the cursor in the box)
        page.wait_for_function("() => document.activeElement && document.activeElement.id === 'text'")
        # (with :tada: the bot's ranking puts 🎉 😂 ❤️ 😍 before 🎄 since the sentence term,
        # and adds nothing: README, "What a user sees")
        page.keyboard.type("merry christmas everyone :santa:")
        page.keyboard.press("Enter")
        page.locator(".chip:not(.add)").first.wait_for(timeout=30_000)
        chip = page.locator(".chip[data-emoji='🎄']")
        assert chip.locator("img.emoji").get_attribute("alt") == "🎄"
        assert "fit 0." in chip.get_attribute("title")  # the score, on hover
        mine = page.locator(".msg.mine .body").first
        assert mine.locator("img.emoji").get_attribute("alt") == "🎅" and ":santa:" not in mine.inner_text()
        assert _emoji_images_loaded(page) >= 2  # the message's :santa: and the reactions
        _shot(page, tmp_path, "message")
        chip.click()
        page.wait_for_selector(".chip.mine", timeout=10_000)

        # the picker, from the keyboard: Shift+Tab from the message box reaches the "+" of
        # the last message (past the picture button)
        page.focus("#text")
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Shift+Tab")
        assert page.evaluate("() => document.activeElement.classList.contains('add')")
        page.keyboard.press("Enter")
        page.wait_for_selector("#picker:not([hidden])")
        page.keyboard.type("pizza")
        page.wait_for_selector("#picker .grid img[alt='🍕']")
        _emoji_images_loaded(page)
        _shot(page, tmp_path, "picker")
        page.keyboard.press("Enter")
        page.wait_for_selector(".chip.mine[data-emoji='🍕']", timeout=10_000)
        page.click(".chip[data-emoji='🎄']")  # a second click takes the reaction back
        page.wait_for_selector(".chip[data-emoji='🎄']:not(.mine)", timeout=10_000)

        # /emojify: the bot's formatting rendered, never shown as markup
        page.fill("#text", "/emojify pizza night with friends")
        page.keyboard.press("Enter")
        page.wait_for_selector("text=Only you can see this.", timeout=30_000)
        reply = page.locator(".msg.bot .body").last
        text = reply.inner_text()
        assert "`" not in text and "*" not in text and ":pizza:" not in text, text
        assert reply.locator("code").count() == 5 and reply.locator("img.emoji").count() >= 10
        _emoji_images_loaded(page)
        _shot(page, tmp_path, "emojify")

        # a picture: a preview before sending, then the emojis with their probabilities
        # and the novel emoji drawn for it
        page.set_input_files("#picture", str(photo))
        page.wait_for_selector("#preview:not([hidden])")
        assert page.evaluate("() => document.querySelector('#preview img').naturalWidth") > 0
        _shot(page, tmp_path, "picture-preview")
        page.click("#send")
        page.wait_for_selector("img.novel", timeout=60_000)
        page.wait_for_function("() => document.querySelector('img.novel').naturalWidth > 0")
        assert page.locator(".probs li").count() >= 1
        assert page.evaluate("() => document.querySelector('img.sent').naturalWidth") > 0
        _emoji_images_loaded(page)
        _shot(page, tmp_path, "picture")

        # the admin view (this browser is on loopback: the machine's own user)
        page.click("#tab-admin")
        page.wait_for_selector("#versions tbody tr")
        assert "shipped" in page.locator("#versions tbody tr").first.inner_text()
        assert "current" in page.locator("#versions tbody tr").first.inner_text()
        page.wait_for_function("() => /\\d+ messages/.test(document.querySelector('#stored').textContent)")
        # a retrain from the button, followed live: two people's reactions are not enough
        # to learn an emoji (three must agree), and the admin is told so
        page.click("#retrain")
        page.wait_for_selector("#admin-log >> text=Retraining started", timeout=10_000)
        page.wait_for_selector("#progress:not([hidden])", timeout=10_000)
        page.wait_for_selector("#retrain:disabled", timeout=10_000)  # one at a time
        _shot(page, tmp_path, "admin-retraining")
        page.wait_for_selector("#runs .badge.skipped", timeout=120_000)
        assert "nothing to learn" in page.locator("#runs li").first.inner_text()
        page.wait_for_selector("#progress", state="hidden", timeout=30_000)  # the process has ended
        assert page.locator("#retrain").is_enabled()

        def save(field: str, typed: str) -> None:  # the form posts its commands, then reads the settings back
            page.fill(field, typed)
            with page.expect_response("**/api/admin"):
                page.click("#settings button[type=submit]")

        save("#s-count", "2")
        page.wait_for_selector("#admin-log >> text=Done.", timeout=10_000)
        # the never-list from the form: emojis and names in, the list as stored back out;
        # a word that is no emoji is named and changes nothing; the field replaces the list
        save_never = partial(save, "#s-never")

        save_never("😘 :kiss:")
        page.wait_for_selector("#admin-log >> text=Never used in this channel", timeout=10_000)
        page.wait_for_function("() => document.querySelector('#s-never').value === '😘 💋'", timeout=10_000)
        save_never("😘 smooch")
        page.wait_for_selector("#admin-log >> text=Not an emoji: smooch. Nothing changed.", timeout=10_000)
        page.wait_for_function("() => document.querySelector('#s-never').value === '😘 💋'", timeout=10_000)
        save_never("💋 🍕")
        page.wait_for_function("() => document.querySelector('#s-never').value === '💋 🍕'", timeout=10_000)
        save_never("")
        page.wait_for_selector("#admin-log >> text=No emoji is kept out of this channel.", timeout=10_000)
        assert page.input_value("#s-never") == ""
        _shot(page, tmp_path, "admin")

        # what people type is never markup: HTML stays text, *stars* stay stars
        page.click("#tab-chat")
        page.fill("#text", "<img src=x onerror=alert(1)> *not bold* <b>hi</b>")
        page.keyboard.press("Enter")
        page.wait_for_selector(".msg.mine >> text=*not bold*", timeout=30_000)
        last = page.locator(".msg.mine .body").last
        assert last.inner_text() == "<img src=x onerror=alert(1)> *not bold* <b>hi</b>"
        assert last.locator("img, b, strong").count() == 0

        # a phone-width window: nothing wider than the screen
        phone = browser.new_page(viewport={"width": 390, "height": 800})
        with phone.expect_response("**/api/catalog"):
            phone.goto(url)
        phone.fill("#text", "just landed in Barcelona, the beach is unreal")
        phone.keyboard.press("Enter")
        phone.locator(".msg.mine .chips").first.wait_for(timeout=30_000)
        assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390
        _emoji_images_loaded(phone)
        _shot(phone, tmp_path, "phone")
        phone.click("#tab-admin")  # the settings form, the never-list field included, wraps too
        phone.wait_for_selector("#s-never", state="visible", timeout=10_000)
        assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390
        _shot(phone, tmp_path, "phone-admin")
        browser.close()

    reactions, predictions, channels = _rows(db)
    assert sorted((r["emoji"], r["added"]) for r in reactions) == [("🍕", True), ("🎄", False), ("🎄", True)]
    assert {p["kind"] for p in predictions} == {"text", "picture", "command"}
    assert [c["count"] for c in channels if c["platform"] == "web"] == [2]
