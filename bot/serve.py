"""`emojibot serve`: compose settings, store, engines, core and the adapters, and run.

With no platform tokens this is the local web playground on 127.0.0.1:8080 with the
SQLite store; the database is migrated on start.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from aiohttp import web

from bot.core.bot import AdminPolicy, BotCore
from bot.core.config import BotSettings
from bot.core.engine import EmojiEngine, PictureEngine
from bot.store.repository import ChannelConfig, Store, migrate

log = logging.getLogger("emojibot")


def build_core(settings: BotSettings, artifacts: str | None = None, with_pictures: bool = True) -> BotCore:
    from models.artifacts import ArtifactError
    from models.ranker import TextRanker

    default = ChannelConfig(settings.auto_react, settings.threshold, settings.reaction_count)
    salt = settings.user_hash_salt.get_secret_value() if settings.user_hash_salt else None
    store = Store(settings.database_url, default, user_salt=salt)
    text = EmojiEngine(TextRanker(artifacts))
    pictures = None
    if with_pictures:
        try:
            from models.picture import PictureModel

            pictures = PictureEngine(PictureModel(artifacts), max_bytes=int(settings.max_picture_mb * 1024 * 1024))
        except ArtifactError as exc:
            log.warning("no picture model (%s): pictures are answered by their message's text", exc)
    admins = AdminPolicy(frozenset(settings.admin_user_ids), frozenset(settings.admin_role_ids),
                         settings.discord_manage_server_is_admin)  # fmt: skip
    return BotCore(store, text, pictures, admins=admins)


async def _prepare_playground(core: BotCore) -> None:
    from bot.adapters.web import PLAYGROUND_CHANNEL
    from bot.store.models import ChannelSettings  # noqa: F401  (the table must exist: migrated)

    rows = await core.store.rows("channel_settings")
    if not any(r["platform"] == "web" and r["channel_id"] == PLAYGROUND_CHANNEL for r in rows):
        await core.store.update_channel("web", PLAYGROUND_CHANNEL, auto_react=True)


def serve(settings: BotSettings, artifacts: str | None = None) -> None:
    from bot.adapters.web import build_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    migrate(settings.database_url)
    core = build_core(settings, artifacts)
    if settings.slack_bot_token or settings.discord_token:
        log.warning("Slack/Discord tokens are set, but this build has no Slack or Discord adapter yet: "
                    "serving the web playground only")  # fmt: skip
    app = build_app(core, settings.max_picture_mb)

    async def on_startup(_app):
        await _prepare_playground(core)

    async def on_cleanup(_app):
        await core.text.close()
        if core.pictures is not None:
            await core.pictures.close()
        await core.store.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    print(f"emojibot playground on http://{settings.host}:{settings.port}/ (Ctrl-C stops it)", file=sys.stderr)
    web.run_app(app, host=settings.host, port=settings.port, print=None)


__all__ = ["build_core", "serve", "asyncio"]
