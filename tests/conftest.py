import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("EMOJIBOT_DATA_DIR", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def catalog():
    from models.catalog import EmojiCatalog

    return EmojiCatalog.load()


@pytest.fixture(scope="session")
def ranker():
    from models.ranker import TextRanker

    return TextRanker()


@pytest.fixture(scope="session")
def data_dir():
    if not (DATA_DIR / "tweeteval_emoji").is_dir():
        pytest.fail(f"shared data not found at {DATA_DIR}; set EMOJIBOT_DATA_DIR")
    return DATA_DIR


@pytest.fixture()
async def make_core(tmp_path):
    """``make_core(**kw)`` → a ``BotCore`` over a migrated SQLite file (or ``url=``) and the
    model-free ``FakeEngine`` (pass ``text=``/``pictures=`` for real engines); closed after the test."""
    from bot.core.bot import AdminPolicy, BotCore
    from bot.store.repository import ChannelConfig, Store, migrate_async
    from bot.testing.fake_engine import FakeEngine

    made = []

    async def make(url=None, default=None, text=None, pictures=None, admins=(), salt="test-salt", **kw):
        if url is None:
            url = f"sqlite+aiosqlite:///{tmp_path / f'core{len(made)}.sqlite'}"
        await migrate_async(url)
        store = Store(url, default or ChannelConfig(True, 0.0, 3), user_salt=salt)
        core = BotCore(
            store,
            text or FakeEngine(),
            pictures,
            admins=AdminPolicy(user_ids=frozenset(admins)),
            **kw,
        )
        made.append(core)
        return core

    yield make
    for core in made:
        await core.text.close()
        if core.pictures is not None:
            await core.pictures.close()
        await core.store.close()
