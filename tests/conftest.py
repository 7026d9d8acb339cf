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
