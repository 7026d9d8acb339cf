"""`retrain`: fine-tune the current model on people's feedback, gate it, promote it.

The work is :func:`bot.learn.run_retrain`; this is its command line. The bot starts the
same command for `/emojify-admin retrain` and for the schedule.
"""

from __future__ import annotations

import argparse
import asyncio

from bot.cli.common import (
    CLIError,
    load_cli_settings,
    open_store,
    print_json,
    progress_printer,
    quiet_tensorflow,
    require_data_dir,
)


def cmd_retrain(args: argparse.Namespace) -> int:
    quiet_tensorflow()
    from bot.learn import RetrainBusy, run_retrain
    from models.artifacts import Registry
    from training.feedback import FeedbackSettings
    from training.retrain import RetrainSettings

    settings = load_cli_settings(args)
    if not settings.data_dir:
        raise CLIError("retrain needs the training data: pass --data-dir or set EMOJIBOT_DATA_DIR")
    require_data_dir(settings.data_dir)
    s = RetrainSettings(feedback=FeedbackSettings())
    for name in ("epochs", "learning_rate", "feedback_weight", "original_rows", "seed"):
        if getattr(args, name, None) is not None:
            setattr(s, name, getattr(args, name))
    for name in ("person_cap", "negative_window_hours"):
        if getattr(args, name, None) is not None:
            setattr(s.feedback, name, getattr(args, name))
    progress = progress_printer(not args.quiet)
    store = open_store(settings)  # migrated here: outside the event loop
    registry = Registry(settings.models_dir, args.artifacts)

    async def run() -> dict:
        try:
            return await run_retrain(store, registry, settings.data_dir, s, args.trigger, not args.no_promote, progress)
        finally:
            await store.close()

    try:
        result = asyncio.run(run())
    except RetrainBusy as exc:
        raise CLIError(str(exc)) from None
    if args.json:
        print_json(result)
    else:
        print(f"{result['verdict']}: {result.get('candidate_version', '-')}")
        for r in result.get("reasons", []):
            print(f"  - {r}")
    return 0 if result["verdict"] in ("promoted", "rejected", "trained") else 1


def register(sub) -> None:
    r = sub.add_parser(
        "retrain",
        help="fine-tune the current model on people's reactions; promote it if it passes the gate",
        description="Build triplets from the feedback in the store, fine-tune the current SQAM on them mixed "
        "with its original training tweets, and promote the result only if it keeps the validation figures "
        "(whole-catalog MRR and TweetEval macro-F1 within 0.005) and ranks the held-out newest "
        "feedback better. Settings come from EMOJIBOT_* like `serve`.",
    )
    r.add_argument("--data-dir", dest="data_dir", help="the training data folder (default: $EMOJIBOT_DATA_DIR)")
    r.add_argument("--models-dir", dest="models_dir", help="where model versions are kept ($EMOJIBOT_MODELS_DIR)")
    r.add_argument("--database-url", dest="database_url", help="the bot's database ($EMOJIBOT_DATABASE_URL)")
    r.add_argument("--epochs", type=int, help="epochs over feedback + original tweets (2)")
    r.add_argument("--learning-rate", dest="learning_rate", type=float, help="Adam rate (1e-3)")
    r.add_argument("--feedback-weight", dest="feedback_weight", type=float, help="a feedback example's weight (1)")
    r.add_argument("--original-rows", dest="original_rows", type=int, help="original tweets mixed in (all)")
    r.add_argument("--person-cap", dest="person_cap", type=float, help="most reactions one person weighs (20)")
    r.add_argument(
        "--negative-window-hours", dest="negative_window_hours", type=float,
        help="a suggestion nobody endorsed within this long is a wrong answer (24)",
    )  # fmt: skip
    r.add_argument("--seed", type=int)
    r.add_argument("--no-promote", dest="no_promote", action="store_true", help="gate it, but leave it a candidate")
    r.add_argument("--trigger", default="cli", choices=["cli", "admin", "schedule"], help=argparse.SUPPRESS)
    r.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    r.add_argument("--json", action="store_true", help="the full result as JSON")
    r.set_defaults(func=cmd_retrain)
