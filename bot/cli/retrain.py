"""`retrain`: fine-tune the current model on people's feedback, gate it, promote it.

Runs as its own process (the bot starts one for `/emojify-admin retrain` and for the
schedule) so that the bot keeps answering meanwhile. Only one retrain runs per store (an
advisory lock on PostgreSQL, a file lock beside a SQLite database). Progress and the
verdict are written to the store's ``retrain_runs`` for the admin to read; a promoted
version becomes the store's ``current`` one and every worker switches to it.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time

from bot.cli.common import CLIError, load_cli_settings, open_store, print_json, quiet_tensorflow, require_data_dir

GATE_TOLERANCE = 0.005


def cmd_retrain(args: argparse.Namespace) -> int:
    quiet_tensorflow()
    settings = load_cli_settings(args)
    if not settings.data_dir:
        raise CLIError("retrain needs the training data: pass --data-dir or set EMOJIBOT_DATA_DIR")
    require_data_dir(settings.data_dir)
    store = open_store(settings)  # migrated here: outside the event loop
    result = asyncio.run(_retrain(args, settings, store))
    if args.json:
        print_json(result)
    else:
        print(f"{result['verdict']}: {result.get('candidate_version', '-')}")
        for r in result.get("reasons", []):
            print(f"  - {r}")
    return 0 if result["verdict"] in ("promoted", "rejected", "trained") else 1


async def _retrain(args: argparse.Namespace, settings, store) -> dict:
    from models.artifacts import Registry
    from models.ranker import TextRanker
    from training.feedback import FeedbackSettings, build_feedback
    from training.retrain import RetrainSettings, feedback_metrics, gate, retrain, validation_figures

    s = RetrainSettings(feedback=FeedbackSettings())
    for name in ("epochs", "learning_rate", "feedback_weight", "original_rows", "seed"):
        if getattr(args, name, None) is not None:
            setattr(s, name, getattr(args, name))
    for name in ("person_cap", "negative_window_hours"):
        if getattr(args, name, None) is not None:
            setattr(s.feedback, name, getattr(args, name))
    registry = Registry(settings.models_dir, args.artifacts)
    state = {"progress": "starting", "t0": time.time()}

    def progress(message: str) -> None:
        state["progress"] = message
        if not args.quiet:
            print(f"[{time.time() - state['t0']:6.1f}s] {message}", file=sys.stderr, flush=True)

    try:
        async with store.retrain_lock() as got:
            if not got:
                raise CLIError("another retrain is running on this database; wait for it to finish")
            current = await store.current_model()
            base = registry.folder(current)
            base_version = current or registry.shipped_version
            run_id = await store.start_run(args.trigger, base_version)
            staging = None

            async def report_progress() -> None:
                last = None
                while True:
                    if state["progress"] != last:
                        last = state["progress"]
                        await store.update_run(run_id, progress=last)
                    await asyncio.sleep(1.0)

            ticker = asyncio.create_task(report_progress())
            try:
                progress(f"reading the feedback (current version {base_version})")
                export = await store.export_feedback()
                ranker = TextRanker(base)
                fb = build_feedback(export, lambda e: e in ranker.index.positions, s.feedback)
                staging = registry.stage(base)
                info = await asyncio.to_thread(retrain, base, staging, export, settings.data_dir, s, progress, fb)
                version = registry.commit(staging)
                staging = None
                progress("measuring the current and the new version")
                cur = await asyncio.to_thread(
                    validation_figures, base, settings.data_dir, registry.figures_cache(base_version)
                )
                new_folder = registry.folder(version)
                new = await asyncio.to_thread(
                    validation_figures, new_folder, settings.data_dir, registry.figures_cache(version)
                )
                cur["feedback"] = feedback_metrics(ranker, fb.holdout)
                new["feedback"] = feedback_metrics(TextRanker(new_folder), fb.holdout)
                ok, reasons = gate(cur, new, GATE_TOLERANCE)
                verdict = ("promoted" if not args.no_promote else "trained") if ok else "rejected"
                figures = {"current": cur, "candidate": new}
                registry.set_status(version, "promoted" if verdict == "promoted" else verdict,
                                    parent=base_version, figures=figures, reasons=reasons, run=run_id)  # fmt: skip
                if verdict == "promoted":
                    await store.set_current_model(version)
                result = {
                    "verdict": verdict,
                    "candidate_version": version,
                    "base_version": base_version,
                    "reasons": reasons,
                    "figures": figures,
                    "feedback": info["feedback"],
                    "examples": info["examples"],
                    "triplet_seconds": info["triplet_seconds"],
                    "train_seconds": info["train_seconds"],
                    "seconds": round(time.time() - state["t0"], 1),
                }
                ticker.cancel()
                await store.update_run(
                    run_id, status=verdict if verdict != "trained" else "rejected", candidate_version=version,
                    progress=f"{verdict}: " + "; ".join(reasons), result=_short(result),
                )  # fmt: skip
                return result
            except BaseException as exc:
                ticker.cancel()
                if staging is not None:
                    shutil.rmtree(staging, ignore_errors=True)
                message = str(exc) or type(exc).__name__
                await store.update_run(run_id, status="failed", progress=f"failed: {message}"[:500])
                from training.retrain import NothingToLearn

                if isinstance(exc, NothingToLearn):
                    return {"verdict": "nothing to learn", "reasons": [message]}
                raise
    finally:
        await store.close()


def _short(result: dict) -> dict:
    """What the run's row keeps: the verdict and the figures the admin reads."""
    f = result["figures"]

    def pick(x):
        return {
            "catalog_val_mrr": x["catalog_val"]["mrr"],
            "tweeteval_val_macro_f1": x["tweeteval_val_macro_f1"],
            "feedback_mrr": round(x["feedback"]["mrr"], 4) if x.get("feedback") else None,
        }

    return {
        "verdict": result["verdict"],
        "candidate": result["candidate_version"],
        "base": result["base_version"],
        "current_figures": pick(f["current"]),
        "candidate_figures": pick(f["candidate"]),
        "feedback": result["feedback"],
        "seconds": result["seconds"],
    }


def register(sub) -> None:
    r = sub.add_parser(
        "retrain",
        help="fine-tune the current model on people's reactions; promote it if it passes the gate",
        description="Build triplets from the feedback in the store, fine-tune the current SQAM on them mixed "
        "with its original training tweets, and promote the result only if it keeps the validation figures "
        f"(whole-catalog MRR and TweetEval macro-F1 within {GATE_TOLERANCE}) and ranks the held-out newest "
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
