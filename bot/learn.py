"""Retraining as the bot runs it: the store's feedback in, a gated version out.

:func:`run_retrain` takes the store's retrain lock (one retrain per database), records the
run in ``retrain_runs`` with its progress, fine-tunes the current version
(``training.retrain``), measures the current and the new version, and promotes the new one
(the store's ``current`` pointer, which every worker follows) only if it passes the gate.
`emojibot retrain` and `emojibot bench retrain` call it; the bot starts the former as a
separate process so that it keeps answering meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable

from bot.store.repository import StoreUnavailable

GATE_TOLERANCE = 0.005
log = logging.getLogger("emojibot.learn")


class RetrainBusy(RuntimeError):
    """Another retrain holds this database's lock."""


async def run_retrain(
    store,
    registry,
    data_dir: str,
    settings,
    trigger: str = "cli",
    promote: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Returns the verdict (``promoted``, ``rejected``, ``trained`` when ``promote`` is
    off and it passed, or ``nothing to learn``), the reasons, the figures and the timings."""
    from models.artifacts import verify
    from models.ranker import TextRanker
    from training.feedback import build_feedback
    from training.retrain import NothingToLearn, feedback_metrics, gate, retrain, validation_figures

    state = {"progress": "starting", "t0": time.time()}

    def say(message: str) -> None:
        state["progress"] = message
        if progress is not None:
            progress(message)

    async with store.retrain_lock() as got:
        if not got:
            raise RetrainBusy("another retrain is running on this database; wait for it to finish")
        current = await store.current_model()
        base = registry.folder(current)
        base_version = current or registry.shipped_version
        run_id = await store.start_run(trigger, base_version)
        staging = None

        async def report_progress() -> None:
            last, beat = None, 0.0
            while True:  # the progress when it changes, and a heartbeat at least every 30 s
                if state["progress"] != last or time.time() - beat > 30.0:
                    try:
                        await store.update_run(run_id, progress=state["progress"])
                        last, beat = state["progress"], time.time()
                    except StoreUnavailable:  # the training goes on; the row catches up later
                        pass
                await asyncio.sleep(1.0)

        ticker = asyncio.create_task(report_progress())
        try:
            left = registry.clear_staging()  # the lock is ours: no other retrain is staging
            if left:
                log.warning("removed %d staging folder(s) left by a retrain that was killed", left)
            say(f"checking the current version's files ({base_version})")
            await asyncio.to_thread(verify, base)  # never fine-tune a damaged copy into a new version
            say(f"reading the feedback (current version {base_version})")
            t = time.time()
            export = await store.export_feedback()
            ranker = TextRanker(base)
            fb = build_feedback(export, lambda e: e in ranker.index.positions, settings.feedback)
            triplet_s = time.time() - t
            staging = registry.stage(base)
            info = await asyncio.to_thread(retrain, base, staging, export, data_dir, settings, say, fb)
            version = registry.commit(staging)
            staging = None
            say("measuring the current and the new version")
            t = time.time()
            cur = await asyncio.to_thread(validation_figures, base, data_dir, registry.figures_cache(base_version))
            new_folder = registry.folder(version)
            new = await asyncio.to_thread(validation_figures, new_folder, data_dir, registry.figures_cache(version))
            cur["feedback"] = feedback_metrics(ranker, fb.holdout)
            new["feedback"] = feedback_metrics(TextRanker(new_folder), fb.holdout)
            ok, reasons = gate(cur, new, GATE_TOLERANCE)
            gate_s = time.time() - t
            verdict = ("promoted" if promote else "trained") if ok else "rejected"
            figures = {"current": cur, "candidate": new}
            # promoted only over the version it was gated against: an admin who rolled back
            # or promoted meanwhile is not undone (the pointer moves first, then the verdict
            # is written: the registry never says "promoted" of a version that is not)
            if verdict == "promoted" and not await store.replace_current_model(current, version):
                now = await store.current_model() or registry.shipped_version
                verdict = "rejected"
                reasons = [*reasons, f"the current version changed while it trained ({base_version} → {now}): "
                           "not promoted over it"]  # fmt: skip
            registry.set_status(version, verdict, parent=base_version, figures=figures, reasons=reasons, run=run_id)
            result = {
                "verdict": verdict,
                "candidate_version": version,
                "base_version": base_version,
                "reasons": reasons,
                "figures": figures,
                "feedback": info["feedback"],
                "examples": info["examples"],
                "seconds": {
                    "export_and_triplets": round(triplet_s, 2),
                    "retrain": info["train_seconds"],
                    "gate": round(gate_s, 1),
                    "total": round(time.time() - state["t0"], 1),
                },
            }
            ticker.cancel()
            await store.update_run(
                run_id, status=verdict, candidate_version=version,
                progress=f"{verdict}: " + "; ".join(reasons), result=_short(result),
            )  # fmt: skip
            return result
        except BaseException as exc:
            ticker.cancel()
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            message = str(exc) or type(exc).__name__
            if isinstance(exc, NothingToLearn):
                await store.update_run(run_id, status="skipped", progress=f"nothing to learn: {message}")
                return {"verdict": "nothing to learn", "reasons": [message]}
            await store.update_run(run_id, status="failed", progress=f"failed: {message}")
            raise


def _short(result: dict) -> dict:
    """What the run's row keeps: the verdict and the figures the admin reads."""
    f = result["figures"]

    def pick(x):
        return {
            "catalog_val_mrr": x["catalog_val"]["mrr"],
            "catalog_val_macro_recall_at_5": x["catalog_val"]["macro_recall_at_5"],
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
