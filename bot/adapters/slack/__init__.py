"""Slack adapter (slack-bolt, async): Events API over HTTP (aiohttp) or Socket Mode."""

from bot.adapters.slack.adapter import SlackAdapter

__all__ = ["SlackAdapter"]
