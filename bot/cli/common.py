"""What every command group shares: the user-facing error, JSON and report printing,
argument types."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2, never a traceback."""


def print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))


def read_stdin_text() -> str:
    raw = sys.stdin.buffer.read()
    text = raw.decode("utf-8", errors="replace")
    if "\ufffd" in text and b"\xef\xbf\xbd" not in raw:
        print("emojibot: note: stdin was not valid UTF-8; undecodable bytes were replaced", file=sys.stderr)
    return text


def quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def require_data_dir(path: str) -> None:
    if not os.path.isdir(path):
        raise CLIError(f"data directory {path!r} does not exist (pass --data-dir, e.g. ../shared/data)")


def report(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(result)
    else:
        flat: dict[str, Any] = {}

        def add(prefix: str, d: dict[str, Any]) -> None:  # nested keys dotted: `auto_react.precision`
            for k, v in d.items():
                add(f"{prefix}{k}.", v) if isinstance(v, dict) else flat.update({f"{prefix}{k}": v})

        add("", result)
        width = max(16, *(len(k) for k in flat)) if flat else 16
        for k, v in flat.items():
            print(f"{k:>{width}}: {v:.4f}" if isinstance(v, float) else f"{k:>{width}}: {v}")


def positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from exc
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from exc


def positive_number(value: str) -> float:
    x = _number(value)
    if not x > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return x


def non_negative(value: str) -> float:
    x = _number(value)
    if not 0 <= x < float("inf"):
        raise argparse.ArgumentTypeError("must be 0 or more")
    return x


def unit_interval(value: str) -> float:
    x = _number(value)
    if not 0 <= x <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return x


def share(value: str) -> float:
    x = _number(value)
    if not 0 < x < 1:
        raise argparse.ArgumentTypeError("a share of rows: more than 0 and less than 1")
    return x


def fit_value(value: str) -> float:
    x = _number(value)
    if not -1 <= x <= 1:
        raise argparse.ArgumentTypeError("a fit is a cosine: between -1 and 1")
    return x


def abc_triple(value: str) -> tuple[str, str, str]:
    parts = value.replace(",", " ").split()
    if len(parts) != 3:
        raise argparse.ArgumentTypeError("a grid is three emojis or short names, e.g. 'smile,heart,fire'")
    return parts[0], parts[1], parts[2]


def load_cli_settings(args: argparse.Namespace):
    """The bot's settings (environment, .env) with the command line's overrides."""
    from bot.core.config import SettingsError, load_settings

    overrides = {
        k: v
        for k in ("host", "port", "database_url", "models_dir", "data_dir")
        if (v := getattr(args, k, None)) is not None
    }
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        raise CLIError(str(exc)) from exc


def open_store(settings):
    """A store on the settings' database (migrated to the newest revision first)."""
    from bot.core.config import SettingsError, channel_defaults
    from bot.store.repository import Store, migrate

    try:
        default = channel_defaults(settings)  # a malformed setting stops before the database is touched
    except SettingsError as exc:
        raise CLIError(str(exc)) from None
    try:
        migrate(settings.database_url)
    except Exception as exc:
        orig = getattr(exc, "orig", None) or exc
        raise CLIError(f"the database cannot be opened: {(str(orig).splitlines() or [''])[0][:200]}") from None
    salt = settings.user_hash_salt.get_secret_value() if settings.user_hash_salt else None
    return Store(settings.database_url, default, user_salt=salt, salt_file=settings.user_hash_salt_file)


def progress_printer(enabled: bool = True):
    """A ``progress(message)`` for long commands: each message on stderr with the seconds
    since the start."""
    import time

    t0 = time.time()

    def progress(message: str) -> None:
        if enabled:
            print(f"[{time.time() - t0:6.1f}s] {message}", file=sys.stderr, flush=True)

    return progress
