"""The bot's SQL store: tables, migrations and the repository the core calls."""

from bot.store.repository import ChannelConfig, Store, StoreUnavailable, clean_text, migrate

__all__ = ["ChannelConfig", "Store", "StoreUnavailable", "clean_text", "migrate"]
