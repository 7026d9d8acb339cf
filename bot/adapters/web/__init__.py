"""The local web playground: chat with the bot in a browser, no platform tokens needed."""

from bot.adapters.web.app import PLAYGROUND_CHANNEL, build_app

__all__ = ["PLAYGROUND_CHANNEL", "build_app"]
