"""The bot's SQL store: tables, migrations and the repository the core calls."""

from bot.store.repository import ChannelConfig, Store, migrate

__all__ = ["ChannelConfig", "Store", "migrate"]
