"""`emojibot serve`: compose settings, store, engines, core and the adapters, and run.

With no platform tokens this is the local web playground on 127.0.0.1:8080 with the
SQLite store; the database is migrated on start and must be writable (a one-line error
naming ``EMOJIBOT_DATABASE_URL`` otherwise).

SIGTERM (or Ctrl-C) drains: the listening socket closes, the pipeline takes no new events,
running ones get ``EMOJIBOT_SHUTDOWN_GRACE_S`` seconds to finish and are otherwise handed
back to the store's inbox (the next start replays them), then the adapters, the engines
and the store close, in that order. The exit status is 0 only when no event was dropped.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from aiohttp import web

from bot.core.bot import AdminPolicy, BotCore
from bot.core.config import BotSettings, SettingsError, channel_defaults
from bot.core.engine import EmojiEngine, PictureEngine
from bot.store.repository import ChannelConfig, Store, StoreUnavailable, migrate

log = logging.getLogger("emojibot")


def build_core(
    settings: BotSettings,
    artifacts: str | None = None,
    with_pictures: bool = True,
    default: ChannelConfig | None = None,
) -> BotCore:
    """The bot's core over the settings' store and the shipped (or ``artifacts``) models;
    ``default`` a channel's settings until an admin changes them (from ``settings``)."""
    from models.artifacts import ArtifactError
    from models.ranker import TextRanker

    default = default or channel_defaults(settings)
    salt = settings.user_hash_salt.get_secret_value() if settings.user_hash_salt else None
    store = Store(settings.database_url, default, user_salt=salt, salt_file=settings.user_hash_salt_file)
    text = EmojiEngine(TextRanker(artifacts))
    pictures = None
    if with_pictures:
        try:
            from models.picture import PictureModel

            pictures = PictureEngine(PictureModel(artifacts), max_bytes=int(settings.max_picture_mb * 1024 * 1024))
        except ArtifactError as exc:
            log.warning("no picture model (%s): pictures are answered by their message's text", exc)
    admins = AdminPolicy(
        frozenset(settings.admin_user_ids), frozenset(settings.admin_role_ids), settings.discord_manage_server_is_admin
    )
    from bot.core.models import ModelManager

    models = ModelManager(
        store,
        text,
        models_dir=settings.models_dir,
        shipped=artifacts,
        data_dir=settings.data_dir,
        every_hours=settings.retrain_every_hours,
        poll_s=settings.model_poll_s,
        database_url=settings.database_url,
    )
    return BotCore(store, text, pictures, admins=admins, retention_days=settings.retention_days, models=models)


async def _prepare_playground(core: BotCore) -> None:
    from bot.adapters.web import PLAYGROUND_CHANNEL
    from bot.store.models import ChannelSettings  # noqa: F401  (the table must exist: migrated)

    rows = await core.store.rows("channel_settings")
    if not any(r["platform"] == "web" and r["channel_id"] == PLAYGROUND_CHANNEL for r in rows):
        await core.store.update_channel("web", PLAYGROUND_CHANNEL, auto_react=True, learning=True)


def _migrate(url: str) -> None:
    try:
        migrate(url)
    except Exception as exc:  # unreachable server, read-only or full disk, a path that does not exist
        orig = getattr(exc, "orig", None) or exc
        reason = (str(orig).strip().splitlines() or [type(orig).__name__])[0][:200]
        raise SettingsError(f"EMOJIBOT_DATABASE_URL: the database cannot be migrated ({reason})") from None


async def _check_store(core: BotCore) -> None:
    try:
        await core.store.check_writable()
        await core.store.user_hash("check", "check")  # the salt file can be made or read
    except (StoreUnavailable, OSError) as exc:
        raise SettingsError(
            f"EMOJIBOT_DATABASE_URL: the store is not writable ({exc}); "
            "check the database server, the disk and the file's permissions"
        ) from None


def serve(settings: BotSettings, artifacts: str | None = None) -> int:
    """Run until SIGTERM/SIGINT; the exit status (0: nothing was dropped)."""
    from bot.adapters.web import build_app, check_playground

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.slack_bot_token and not (settings.slack_signing_secret or settings.slack_app_token):
        raise SettingsError(
            "EMOJIBOT_SLACK_BOT_TOKEN is set: set EMOJIBOT_SLACK_SIGNING_SECRET (Events API over HTTP) "
            "or EMOJIBOT_SLACK_APP_TOKEN (Socket Mode) too"
        )
    playground = check_playground(settings)  # SettingsError: reachable from elsewhere without a secret
    default = channel_defaults(settings)  # SettingsError for a never-list of no emojis, before the database
    _migrate(settings.database_url)
    core = build_core(settings, artifacts, default=default)
    app = build_app(core, settings, playground=playground)
    background: list[asyncio.Task] = []
    slack = discord_adapter = None
    cap = int(settings.max_picture_mb * 1024 * 1024)
    if settings.slack_bot_token:
        from bot.adapters.slack import SlackAdapter

        secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else "-"
        slack = SlackAdapter(
            core,
            settings.slack_bot_token.get_secret_value(),
            secret,
            base_url=settings.slack_api_url,
            max_picture_bytes=cap,
        )
        if not settings.slack_app_token:
            slack.add_routes(app)  # POST /slack/events: the Request URL of the Slack app
    if settings.discord_token:
        from bot.adapters.discord import DiscordAdapter

        discord_adapter = DiscordAdapter(
            core,
            settings.discord_token.get_secret_value(),
            shard_count=settings.discord_shard_count,
            shard_ids=settings.discord_shard_ids or None,
            max_picture_bytes=cap,
        )

    async def on_startup(_app):
        await _check_store(core)
        await core.models.sync()  # a version promoted while the bot was down
        await _prepare_playground(core)
        if slack is not None:
            await slack.start()
            if settings.slack_app_token:
                token = settings.slack_app_token.get_secret_value()
                background.append(asyncio.create_task(slack.run_socket_mode(token)))
            log.info("Slack adapter ready (%s)", "Socket Mode" if settings.slack_app_token else "POST /slack/events")
        if discord_adapter is not None:
            background.append(asyncio.create_task(discord_adapter.run()))
            log.info("Discord adapter connecting")
        # The replayer last: an event handed back by the last run (a Slack reaction carries
        # no bot flag) is read only once the adapters know the bot's own user ids; started
        # before `slack.start()`, the bot's own reactions were replayed as a person's feedback
        await core.pipeline.start()

    async def on_shutdown(_app):  # the socket is closed: drain what was accepted
        dropped = await core.pipeline.drain(settings.shutdown_grace_s)
        log.info("drained: %d events dropped, %d handed back pending", dropped, core.pipeline.handed_back)

    async def on_cleanup(_app):
        for task in background:
            task.cancel()
        if discord_adapter is not None:
            await discord_adapter.close()
        if slack is not None:
            await slack.close()
        await core.models.close()
        await core.text.close()
        if core.pictures is not None:
            await core.pictures.close()
        await core.store.close()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    print(f"emojibot on http://{settings.host}:{settings.port}/ (Ctrl-C stops it)", file=sys.stderr)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=None,
        shutdown_timeout=settings.shutdown_grace_s,
        access_log=None,
    )
    if core.pipeline.dropped:
        print(f"emojibot: {core.pipeline.dropped} events were dropped at shutdown", file=sys.stderr)
        return 1
    return 0


__all__ = ["build_core", "serve"]
