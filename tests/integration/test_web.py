"""The web playground over real HTTP on loopback, with the real core, engines and SQLite store."""

import numpy as np
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from bot.adapters.web import build_app
from bot.core.bot import BotCore
from bot.core.engine import EmojiEngine, PictureEngine
from bot.serve import _prepare_playground
from bot.store.repository import ChannelConfig, Store, migrate_async


@pytest.fixture()
async def client(tmp_path, ranker, catalog):
    from models.picture import PictureModel

    url = f"sqlite+aiosqlite:///{tmp_path / 'web.sqlite'}"
    await migrate_async(url)
    store = Store(url, ChannelConfig(False, 0.0, 3))
    core = BotCore(store, EmojiEngine(ranker), PictureEngine(PictureModel()), catalog=catalog)
    await _prepare_playground(core)
    async with TestClient(TestServer(build_app(core))) as c:
        c.core = core
        yield c
    await core.text.close()
    await core.pictures.close()
    await store.close()


async def test_page_and_health(client):
    page = await client.get("/")
    assert page.status == 200 and "emojibot" in await page.text()
    health = await (await client.get("/healthz")).json()
    assert health["status"] == "ok" and health["model_version"] and health["pictures"] is True


async def test_a_message_gets_reactions_and_a_click_is_feedback(client):
    res = await client.post("/api/messages", json={"text": "merry christmas everyone"})
    body = await res.json()
    assert res.status == 200 and body["reactions"][0]["emoji"] == "🎄"
    click = await client.post("/api/reactions", json={"message_id": body["message_id"], "emoji": "🎄", "added": True})
    assert click.status == 200
    rows = await client.core.store.rows("reaction_events")
    assert [(r["emoji"], r["added"], r["platform"]) for r in rows] == [("🎄", True, "web")]


async def test_emojify_command_and_admin_status(client):
    body = await (await client.post("/api/commands", json={"command": "/emojify", "text": "pizza night"})).json()
    reply = body["replies"][0]
    assert reply["ephemeral"] and len(reply["emojis"]) == 5
    status = await (await client.post("/api/commands", json={"command": "emojify-admin", "text": "status"})).json()
    assert "Auto-react is on" in status["replies"][0]["text"]


async def test_picture_upload_gets_reactions_and_a_novel_emoji(client, data_dir):
    z = np.load(data_dir / "tinyimagenet_emoji" / "train.npz")
    photo = z["jpeg"][z["offsets"][0] : z["offsets"][1]].tobytes()
    form = FormData()
    form.add_field("text", "")
    form.add_field("picture", photo, filename="frog.jpg", content_type="image/jpeg")
    body = await (await client.post("/api/messages", data=form)).json()
    assert body["reactions"] and body["replies"][0]["image"].startswith("data:image/png;base64,")


@pytest.mark.parametrize(
    "kwargs,status,fragment",
    [
        ({"json": {"text": "  "}}, 400, "type a message"),
        ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "JSON"),
        ({"json": {"text": 5}}, 400, "string"),
    ],
)
async def test_bad_requests_get_clear_errors(client, kwargs, status, fragment):
    res = await client.post("/api/messages", **kwargs)
    assert res.status == status and fragment in (await res.json())["error"]


async def test_emoji_pictures_are_served_with_caching_and_nothing_else_is(client):
    res = await client.get("/emoji/1f355.png")
    assert res.status == 200 and res.content_type == "image/png"
    assert (await res.read())[:8] == b"\x89PNG\r\n\x1a\n"
    assert "max-age=604800" in res.headers["Cache-Control"] and res.headers["ETag"]
    again = await client.get("/emoji/1f355.png", headers={"If-None-Match": res.headers["ETag"]})
    assert again.status == 304
    for bad in ("/emoji/..%2F..%2Fetc%2Fpasswd", "/emoji/ffffff.png", "/emoji/1f355.svg", "/emoji/1F355.PNG"):
        assert (await client.get(bad)).status == 404, bad


async def test_the_catalog_names_a_served_picture_for_every_emoji(client, catalog):
    res = await client.get("/api/catalog")
    rows = await res.json()
    assert res.status == 200 and "max-age" in res.headers["Cache-Control"]
    assert len(rows) == len(catalog) and {"c", "n", "a", "d", "f"} <= set(rows[0])
    pizza = next(r for r in rows if r["c"] == "🍕")
    assert pizza["n"] == "pizza" and (await client.get("/emoji/" + pizza["f"])).status == 200
    assert (await client.get("/api/catalog", headers={"If-None-Match": res.headers["ETag"]})).status == 304


async def test_the_admin_view_reads_settings_versions_runs_and_counts_for_admins_only(client):
    await client.post("/api/messages", json={"text": "merry christmas everyone"})
    body = await (await client.get("/api/admin")).json()  # loopback, no proxy: the machine's own user
    assert body["channel"] == {"auto_react": True, "threshold": 0.0, "count": 3, "learning": True, "never": []}
    (shipped,) = body["versions"]
    assert shipped["status"] == "shipped" and shipped["current"] and shipped["serving"]
    assert body["stored"]["predictions"] == 1 and body["retention_days"] == 30.0
    assert body["runs"] == [] and body["retrain_running"] is False and body["retrain_available"] is False
    proxied = await client.get("/api/admin", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status == 403 and "admin view" in (await proxied.json())["error"]
