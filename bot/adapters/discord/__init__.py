"""Discord adapter (discord.py 2.x): gateway events and application commands."""

from bot.adapters.discord.adapter import DiscordAdapter, invite_url

__all__ = ["DiscordAdapter", "invite_url"]
