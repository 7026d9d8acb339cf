"""Pictures arrive whole and cost bounded memory: the shared capped download against real
loopback servers, the Slack and Discord adapters against their fakes with multi-MB photos
(streamed in pieces, as file hosts send them), the bot token kept to Slack's file hosts,
and the decode memory of picture bombs measured in a subprocess."""

import asyncio
import hashlib
import io
import json
import logging
import re
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from PIL import Image, ImageOps

from bot.adapters.download import CHUNK, TooLarge, fetch_capped, read_capped
from bot.adapters.slack import SlackAdapter
from bot.adapters.slack.adapter import _origin, token_allowed
from bot.core.bot import BotCore
from bot.core.engine import EmojiEngine, PictureEngine
from bot.store.repository import ChannelConfig, Store, migrate_async
from bot.testing.fake_slack import FakeSlack, SlackSender
from models.picture import MAX_PIXELS, decode_picture

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
REPO = Path(__file__).resolve().parents[2]
MB = 1024 * 1024


def photo_jpeg(w: int = 2600, h: int = 1800, seed: int = 0) -> bytes:
    """A photo-like JPEG of several MB: smooth colour gradients under sensor-like noise, q95."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([128 + 90 * np.sin(xx / 170 + yy / 390), 60 + 150 * yy / h, 200 - 150 * xx / w], axis=-1)
    arr = np.clip(base + rng.normal(0, 28, (h, w, 3)).astype(np.float32), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=95)
    return buf.getvalue()


async def _serve(handler) -> TestServer:
    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    server = TestServer(app)
    await server.start_server()
    return server


async def _until(cond, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("condition never held")
        await asyncio.sleep(0.02)


# -- the shared capped download ------------------------------------------------------------
async def test_a_body_sent_in_pieces_arrives_whole_with_or_without_content_length():
    body = photo_jpeg(1200, 900, seed=3)

    async def pieces(request):
        resp = web.StreamResponse()
        if request.query.get("sized"):
            resp.content_length = len(body)
        await resp.prepare(request)
        for i in range(0, len(body), 16 * 1024):
            await resp.write(body[i : i + 16 * 1024])
            await asyncio.sleep(0)
        await resp.write_eof()
        return resp

    server = await _serve(pieces)
    try:
        async with ClientSession() as s:
            async with s.get(server.make_url("/f")) as r:  # what a single read gets: the bug this fixes
                assert len(await r.content.read(len(body) + 1)) < len(body)
            for url in (server.make_url("/f"), server.make_url("/f?sized=1")):
                got = await fetch_capped(s, str(url), cap=len(body))
                assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()
    finally:
        await server.close()


async def test_a_body_over_the_cap_is_dropped_after_at_most_cap_plus_one_chunk():
    piece = b"\xab" * (64 * 1024)
    cap = 4 * MB

    async def endless(request):  # 64 MB, no Content-Length (chunked), or declared
        resp = web.StreamResponse()
        if request.query.get("sized"):
            resp.content_length = 1024 * len(piece)
        await resp.prepare(request)
        try:
            for _ in range(1024):
                await resp.write(piece)
        except ConnectionError:
            pass
        return resp

    server = await _serve(endless)
    try:
        async with ClientSession() as s:
            tracemalloc.start()
            try:
                async with s.get(server.make_url("/big")) as r:
                    with pytest.raises(TooLarge) as streamed:
                        await read_capped(r, cap)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert not streamed.value.declared and cap < streamed.value.size <= cap + CHUNK
            assert peak < 2 * cap  # reading the 64 MB would trace 64 MB
            with pytest.raises(TooLarge, match="declares 67,108,864 bytes") as declared:
                await fetch_capped(s, str(server.make_url("/big?sized=1")), cap)
            assert declared.value.declared
    finally:
        await server.close()


def test_the_token_goes_only_to_slack_file_hosts_over_https():
    fake = frozenset({_origin("http://127.0.0.1:8123")})
    assert token_allowed("https://files.slack.com/files-pri/T1-F1/frog.jpg")
    assert token_allowed("https://files.slack.com/files-pri/T1-F1/download/frog.jpg")
    assert token_allowed("http://127.0.0.1:8123/files/frog.jpg", fake)
    for url in (
        "http://files.slack.com/files-pri/T1-F1/frog.jpg",  # not https
        "https://files.slack.com:8443/frog.jpg",
        "https://files.slack.com.evil.example/frog.jpg",
        "https://evilslack.com/frog.jpg",
        "https://files.slack.com@evil.example/frog.jpg",
        "https://user:pw@files.slack.com/frog.jpg",
        "http://127.0.0.1:8124/files/frog.jpg",  # another port than the allowed origin
        "/files/frog.jpg",
        "not a url",
    ):
        assert not token_allowed(url, fake), url


# -- Slack -----------------------------------------------------------------------------------
@pytest.fixture()
async def slack(tmp_path, ranker, catalog):
    from models.picture import PictureModel

    fake = FakeSlack(known_emoji_names={n for e in catalog for n in e.short_names})
    api = await fake.start()
    url = f"sqlite+aiosqlite:///{tmp_path / 'slack.sqlite'}"
    await migrate_async(url)
    store = Store(url, ChannelConfig(True, 0.0, 3))
    core = BotCore(store, EmojiEngine(ranker), PictureEngine(PictureModel()), catalog=catalog)
    adapter = SlackAdapter(core, fake.token, SECRET, base_url=api)  # its own origin may get the token
    await adapter.start()
    app = web.Application()
    adapter.add_routes(app)
    server = TestServer(app)
    await server.start_server()
    async with SlackSender(str(server.make_url("/slack/events")), SECRET) as sender:
        yield fake, sender, adapter
    await server.close()
    await adapter.close()
    await core.text.close()
    await core.pictures.close()
    await store.close()
    await fake.close()


def _file_share(fake: FakeSlack, name: str, size: int, url: str | None = None, channel: str = "C1") -> dict:
    f = {"id": "F" + name.split(".")[0].upper(), "name": name, "mimetype": "image/jpeg", "size": size}
    f["url_private"] = url or fake.file_url(name)
    ts = f"{time.time():.6f}"
    return {
        "type": "message",
        "subtype": "file_share",
        "channel": channel,
        "user": "U1",
        "text": "",
        "ts": ts,
        "files": [f],
    }


async def test_a_slack_photo_of_several_mb_arrives_whole_and_is_answered(slack):
    fake, sender, _ = slack
    photo = photo_jpeg()
    assert 3 * MB < len(photo) < 5 * MB
    fake.files["photo.jpg"] = photo
    ev = _file_share(fake, "photo.jpg", len(photo))
    await sender.event(ev)
    await fake.wait_for("files.completeUploadExternal", 1, timeout=60)
    share = fake.shared[0]
    assert share["thread_ts"] == ev["ts"] and share["initial_comment"].startswith("What I see")
    assert share["bytes"][0].startswith(b"\x89PNG")
    assert not [c for c in fake.calls_of("chat.postMessage") if "couldn't read" in c.args["text"]]
    [req] = fake.file_requests
    assert req["authorization"] == f"Bearer {fake.token}"
    assert req["whole"] and req["sent"] == len(photo)  # every byte went out, in 16 KB pieces, and was read


async def test_a_slack_file_over_the_cap_is_dropped_without_reading_it_all(slack, caplog):
    fake, sender, adapter = slack
    caplog.set_level(logging.INFO, logger="emojibot.slack")
    cap = adapter.max_picture_bytes
    big = bytes(range(256)) * (40 * MB // 256)  # 40 MB, more than the kernel's socket buffers hold
    fake.files["huge.jpg"] = big
    fake.unsized_files.add("huge.jpg")  # chunked: only reading tells the size
    await sender.event(_file_share(fake, "huge.jpg", size=1000))  # Slack's "size" understated
    await _until(lambda: fake.file_requests and fake.file_requests[0]["done"])
    req = fake.file_requests[0]
    assert not req["whole"] and req["sent"] < len(big)  # the bot hung up early
    await _until(lambda: "not downloaded" in caplog.text)
    read = int(re.search(r"sent more than ([\d,]+) bytes", caplog.text).group(1).replace(",", ""))
    assert cap < read <= cap + CHUNK
    assert fake.token not in caplog.text
    await asyncio.sleep(0.5)
    assert fake.calls_of("files.completeUploadExternal") == []


async def test_url_private_on_another_host_gets_no_token_and_is_not_used(slack, caplog):
    fake, sender, _ = slack
    caplog.set_level(logging.INFO, logger="emojibot.slack")
    seen: list[dict] = []

    async def elsewhere(request):
        seen.append(dict(request.headers))
        return web.Response(body=photo_jpeg(640, 480), content_type="image/jpeg")

    other = await _serve(elsewhere)  # a second loopback server: another origin than the fake Slack
    try:
        url = str(other.make_url("/files-pri/T1-F9/frog.jpg"))
        await sender.event(_file_share(fake, "frog.jpg", 100_000, url=url))
        await _until(lambda: "not a Slack file host" in caplog.text)
        await asyncio.sleep(0.3)
        assert seen == []  # never asked: no request, so no Authorization header either
        assert fake.file_requests == [] and fake.token not in caplog.text
        assert fake.calls_of("files.completeUploadExternal") == []
    finally:
        await other.close()


# -- Discord ---------------------------------------------------------------------------------
@pytest.fixture()
async def discord_bot(tmp_path, ranker, catalog, caplog):
    from bot.adapters.discord import DiscordAdapter
    from bot.testing.fake_discord import FakeDiscord
    from models.picture import PictureModel

    caplog.set_level(logging.INFO, logger="emojibot.discord")
    fake = FakeDiscord()
    await fake.start()
    fake.patch_discord()
    url = f"sqlite+aiosqlite:///{tmp_path / 'discord.sqlite'}"
    await migrate_async(url)
    store = Store(url, ChannelConfig(True, 0.0, 3))
    core = BotCore(store, EmojiEngine(ranker), PictureEngine(PictureModel()), catalog=catalog)
    adapter = DiscordAdapter(core, fake.token, sync_commands=False)
    task = asyncio.create_task(adapter.run())
    try:
        await fake.wait_ready()
        yield fake, adapter
    finally:
        await adapter.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await core.text.close()
        await core.pictures.close()
        await store.close()
        await fake.close()


async def test_a_discord_attachment_of_several_mb_arrives_whole_and_is_answered(discord_bot):
    from bot.testing.fake_discord import CHANNEL_ID, user

    fake, _ = discord_bot
    photo = photo_jpeg(seed=7)
    assert 3 * MB < len(photo) < 5 * MB
    msg = fake.message(CHANNEL_ID, "", author=user("2002", "alice"), attachments=[fake.attachment("big.jpg", photo)])
    await fake.dispatch("MESSAGE_CREATE", msg)
    sent = (await fake.wait_for("message", 1, timeout=60))[0].data
    assert sent["payload"]["content"].startswith("What I see")
    assert sent["files"] and sent["files"][0][1].startswith(b"\x89PNG")
    [got] = fake.of("attachment")
    assert got.data["whole"] and got.data["sent"] == len(photo)
    assert got.data["authorization"] is None  # the CDN needs no token, and gets none


async def test_a_discord_attachment_over_the_cap_is_not_read_into_memory(discord_bot, caplog):
    from bot.testing.fake_discord import CHANNEL_ID, user

    fake, adapter = discord_bot
    big = bytes(range(256)) * (40 * MB // 256)
    att = fake.attachment("huge.jpg", big)
    att["size"] = 1000  # what the message declares is not what the CDN sends
    await fake.dispatch("MESSAGE_CREATE", fake.message(CHANNEL_ID, "", author=user("2002", "alice"), attachments=[att]))
    await _until(lambda: "picture huge.jpg not downloaded" in caplog.text)
    assert f"over the cap of {adapter.max_picture_bytes:,} bytes" in caplog.text  # Content-Length, before the body
    await fake.wait_for("attachment", 1)
    assert not fake.of("attachment")[0].data["whole"]
    await asyncio.sleep(0.5)
    assert fake.of("message") == []  # no picture, no text: nothing to answer


# -- decode memory ---------------------------------------------------------------------------
PEAK_LIMIT_MIB = 100  # what one picture may cost to decode, above the interpreter's baseline

# Runs in a fresh interpreter: imports and Pillow's plugins first, then the picture's peak
# resident memory above that (Pillow's C buffers are invisible to tracemalloc). The kernel's
# own high-water mark of this process (VmHWM, reset by writing 5 to clear_refs), not
# getrusage's ru_maxrss, which after exec starts from the parent's (pytest's) peak.
MEASURE = r"""
import io, json, sys
from PIL import Image
from models.picture import PictureError, decode_picture

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":")) / 1024

Image.init()
buf = io.BytesIO(); Image.new("RGB", (8, 8)).save(buf, "PNG"); decode_picture(buf.getvalue())
data = open(sys.argv[1], "rb").read()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the high-water mark starts again from the present
before = status("VmRSS")
try:
    out = decode_picture(data)
    result = {"shape": list(out.shape), "dtype": str(out.dtype), "mean": float(out.mean())}
except PictureError as exc:
    result = {"refused": str(exc)}
result["peak_mib"] = status("VmHWM") - before
print(json.dumps(result))
"""


def _bombs(folder: Path) -> dict[str, tuple[Path, str]]:
    """name → (file, what must happen: "decodes" or a phrase of the refusal)."""
    s = int(MAX_PIXELS**0.5)  # 3999 × 3999: just under the pixel cap
    assert s * s <= MAX_PIXELS < (s + 1) * (s + 1)
    out: dict[str, tuple[Path, str]] = {}

    def save(name, img, expect, **kw):
        path = folder / name
        img.save(path, **kw)
        out[name] = (path, expect)

    palette = Image.new("P", (s, s), 3)
    palette.putpalette([(i * 7) % 256 for i in range(768)])
    save("palette.png", palette, "decodes")  # ~10 KB that widen to 64 MB of RGB
    grey16 = np.zeros((s, s), np.uint16)
    grey16[:, : s // 2] = 40000
    save("grey16.png", Image.fromarray(grey16), "decodes")
    flt = np.zeros((s, s), np.float32)
    flt[: s // 2] = 1.5
    save("float.tif", Image.fromarray(flt), "decoding it would take", compression="tiff_adobe_deflate")
    flt9 = np.zeros((3000, 3000), np.float32)
    flt9[:1500] = -2.5
    one_strip = {"compression": "tiff_adobe_deflate", "strip_size": 2**31}  # libtiff decodes it in one piece
    save("float_9mp_one_strip.tif", Image.fromarray(flt9), "decodes", **one_strip)
    save("rgba.png", Image.new("RGBA", (s, s), (10, 200, 30, 128)), "decodes")
    cmyk = Image.new("CMYK", (s, s), (10, 200, 30, 0))
    save("cmyk_progressive.jpg", cmyk, "decoding it would take", progressive=True)
    save("lossless.webp", Image.new("RGB", (s, s), (10, 200, 30)), "decoding it would take", lossless=True, method=0)
    # the attack's size, 40 MP, now over the pixel cap
    save("palette_40mp.png", Image.new("P", (6300, 6300), 3), "over the limit of 16,000,000 pixels")
    return out


def test_picture_bombs_decode_or_are_refused_within_100_mb(tmp_path):
    peaks = {}
    for name, (path, expect) in _bombs(tmp_path).items():
        assert path.stat().st_size < 1 * MB  # all of them pass the download cap easily
        run = subprocess.run(
            [sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, cwd=REPO, timeout=60
        )
        assert run.returncode == 0, run.stderr[-2000:]
        result = json.loads(run.stdout.strip().splitlines()[-1])
        peaks[name] = round(result["peak_mib"], 1)
        if expect == "decodes":
            assert result.get("shape") == [64, 64, 3] and result["dtype"] == "uint8", (name, result)
        else:
            assert expect in result.get("refused", ""), (name, result)
        assert result["peak_mib"] < PEAK_LIMIT_MIB, (name, result)
    print("decode peaks (MiB):", peaks)


def test_a_large_picture_reduced_early_looks_the_same_as_one_converted_whole():
    """The band-by-band reduction of big pictures gives what converting the whole picture
    to RGB and scaling it would (the old way, which cost 4 bytes a pixel more)."""
    rgb = Image.open(io.BytesIO(photo_jpeg(2400, 1600, seed=5))).convert("RGB")
    rgba = rgb.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(rgb.size))
    for img in (rgb, rgba):
        buf = io.BytesIO()
        img.save(buf, "PNG", compress_level=1)
        got = decode_picture(buf.getvalue(), max_bytes=64 * MB).astype(int)
        whole = img if img.mode == "RGB" else Image.alpha_composite(Image.new("RGBA", img.size, "white"), img)
        want = np.asarray(ImageOps.fit(whole.convert("RGB"), (64, 64), Image.BILINEAR)).astype(int)
        assert np.abs(got - want).mean() < 1.5, img.mode
