"""The local web playground: chat with the bot in a browser, no platform tokens needed."""

from bot.adapters.web.app import PLAYGROUND_CHANNEL, add_playground_routes, build_app, check_playground

__all__ = ["PLAYGROUND_CHANNEL", "add_playground_routes", "build_app", "check_playground"]
