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
