"""Settings: defaults, parsing, clear errors, and secrets that never show."""

import subprocess
import sys

import pytest

from bot.core.config import SettingsError, load_settings


def test_defaults_need_no_token(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env here
    s = load_settings()
    assert s.database_url.startswith("sqlite+aiosqlite:///") and s.port == 8080 and s.slack_bot_token is None


def test_lists_and_numbers_parse_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EMOJIBOT_ADMIN_USER_IDS", "U1, U2,,")
    monkeypatch.setenv("EMOJIBOT_DISCORD_SHARD_IDS", "0,1")
    monkeypatch.setenv("EMOJIBOT_THRESHOLD", "0.35")
    s = load_settings()
    assert s.admin_user_ids == ["U1", "U2"] and s.discord_shard_ids == [0, 1] and s.threshold == 0.35


def test_dotenv_file_is_read(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("EMOJIBOT_PORT=9090\n")
    assert load_settings().port == 9090


@pytest.mark.parametrize(
    "name,value,fragment",
    [
        ("EMOJIBOT_PORT", "http", "EMOJIBOT_PORT"),
        ("EMOJIBOT_THRESHOLD", "7", "EMOJIBOT_THRESHOLD"),
        ("EMOJIBOT_DATABASE_URL", "mysql://x", "must start with sqlite"),
    ],
)
def test_malformed_settings_name_the_setting(monkeypatch, tmp_path, name, value, fragment):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=fragment):
        load_settings()


def test_secrets_never_show(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    secret = "xoxb-very-secret-token-123"
    monkeypatch.setenv("EMOJIBOT_SLACK_BOT_TOKEN", secret)
    monkeypatch.setenv("EMOJIBOT_SLACK_SIGNING_SECRET", "signing-secret-456")
    s = load_settings()
    assert secret not in repr(s) and secret not in str(s.model_dump())
    monkeypatch.setenv("EMOJIBOT_PORT", "not-a-port")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert secret not in str(err.value)


def _serve(tmp_path, **settings: str) -> subprocess.CompletedProcess:
    """`emojibot serve` in a clean environment with these settings and a SQLite file in
    ``tmp_path`` (x.sqlite); what it printed and its exit status."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "EMOJIBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite'}",
        **{f"EMOJIBOT_{k.upper()}": v for k, v in settings.items()},
    }
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


def test_serve_refuses_a_slack_token_without_secret(tmp_path):
    r = _serve(tmp_path, slack_bot_token="xoxb-secret-789")
    assert r.returncode == 2 and "EMOJIBOT_SLACK_SIGNING_SECRET" in r.stderr
    assert "xoxb-secret-789" not in r.stderr + r.stdout


def test_the_never_list_default_is_read_as_catalog_emojis(monkeypatch, tmp_path):
    """EMOJIBOT_NEVER_EMOJIS: emojis in any form people type them (with or without U+FE0F,
    skin-toned, :short_names:, run together), folded to the catalog's; anything else stops
    the bot at start, naming the setting."""
    from bot.core.config import channel_defaults

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EMOJIBOT_NEVER_EMOJIS", "😘, :kiss: ❤ 👍🏽🙏 😘")
    cfg = channel_defaults(load_settings())
    assert cfg.never == ("😘", "💋", "❤️", "👍", "🙏")
    refused = {"😘 smooch": "smooch", "😘smooch": "😘smooch", "heart": "heart", "👍\u200d🦀": "👍\u200d🦀"}
    for value, said in refused.items():
        monkeypatch.setenv("EMOJIBOT_NEVER_EMOJIS", value)
        with pytest.raises(SettingsError, match=f"EMOJIBOT_NEVER_EMOJIS: not an emoji: {said}$"):
            channel_defaults(load_settings())
    from models.catalog import EmojiCatalog

    monkeypatch.setenv("EMOJIBOT_NEVER_EMOJIS", " ".join(e.char for e in list(EmojiCatalog.load())[:101]))
    with pytest.raises(SettingsError, match="EMOJIBOT_NEVER_EMOJIS: 101 emojis, at most 100"):
        channel_defaults(load_settings())
    monkeypatch.delenv("EMOJIBOT_NEVER_EMOJIS")
    assert channel_defaults(load_settings()).never == ()


def test_serve_refuses_a_never_list_of_no_emojis_before_touching_the_database(tmp_path):
    r = _serve(tmp_path, never_emojis="😘 smooch")
    assert r.returncode == 2 and "EMOJIBOT_NEVER_EMOJIS: not an emoji: smooch" in r.stderr
    assert not (tmp_path / "x.sqlite").exists()
