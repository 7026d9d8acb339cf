"""The `emojibot` command line: one module per command group, each with a
``register(subparsers)``.

Heavy imports (TensorFlow, scikit-learn) happen inside the subcommands that need them, so
`emojibot emojify` starts in a fraction of a second.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from bot.cli import bench, evaluate, model, rank, retrain, serve, train
from bot.cli.common import CLIError

EXIT_USAGE = 2
GROUPS = (rank, serve, train, retrain, model, evaluate, bench)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="emojibot",
        description="An emoji bot for Slack and Discord: rank emojis for text, train and evaluate its models.",
    )
    p.add_argument("--artifacts", help="model artifact folder (default: the shipped one, or $EMOJIBOT_ARTIFACTS)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from models.artifacts import ArtifactError
    from models.catalog import UnknownEmojiError
    from models.minilm import MiniLMUnavailable
    from training.data import DataError

    try:
        return int(args.func(args) or 0)
    except (CLIError, ArtifactError, DataError, UnknownEmojiError, MiniLMUnavailable) as exc:
        print(f"emojibot: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("emojibot: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:
        print(f"emojibot: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # one line for the user; the traceback on request
        if os.environ.get("EMOJIBOT_DEBUG"):
            raise
        print(f"emojibot: error: {type(exc).__name__}: {exc} (set EMOJIBOT_DEBUG=1 for details)", file=sys.stderr)
        return 1
