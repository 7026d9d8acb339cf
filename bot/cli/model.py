"""`model list|promote VERSION|rollback|verify [VERSION ...]`: the model registry.

Versions live in folders (the shipped one in the package, retrained ones under
``EMOJIBOT_MODELS_DIR``); which one the bot answers with is the store's ``current`` pointer,
so a promotion or rollback here reaches every running worker within its poll interval.
"""

from __future__ import annotations

import argparse
import asyncio

from bot.cli.common import CLIError, load_cli_settings, open_store, print_json


def _registry(args, settings):
    from models.artifacts import Registry

    return Registry(settings.models_dir, args.artifacts)


async def _current(store) -> tuple[str | None, list[str]]:
    try:
        return await store.current_model(), await store.model_history()
    finally:
        await store.close()


def cmd_list(args: argparse.Namespace) -> int:
    settings = load_cli_settings(args)
    registry = _registry(args, settings)
    current, _ = asyncio.run(_current(open_store(settings)))
    rows = registry.summaries(current)
    if args.json:
        print_json(rows)
        return 0
    print(f"{'':2}{'version':<20} {'status':<10} {'cat. MRR':>8} {'cat. mR@5':>9} {'TE F1':>7} {'fb MRR':>7}  parent")
    for r in rows:
        fmt = lambda x: f"{x:.4f}" if isinstance(x, float) else "-"  # noqa: E731
        print(
            f"{'*' if r['current'] else ' ':2}{r['version']:<20} {r['status']:<10} {fmt(r['catalog_val_mrr']):>8} "
            f"{fmt(r['catalog_val_macro_recall_at_5']):>9} {fmt(r['tweeteval_val_macro_f1']):>7} "
            f"{fmt(r['feedback_mrr']):>7}  {r['parent'] or ''}"
        )
    print(
        "(* the version the bot answers with; figures: measured by the gate on the validation sets and on "
        "the held-out feedback of the retrain that made the version; - : not measured yet, as for the shipped "
        "version until a retrain compares against it)"
    )
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    settings = load_cli_settings(args)
    registry = _registry(args, settings)
    status = registry.status(args.version)["status"]  # ArtifactError: unknown version
    from models.artifacts import verify

    verify(registry.folder(args.version))  # ArtifactError: its files are not that version's
    if status == "rejected" and not args.force:
        raise CLIError(
            f"{args.version} was rejected by the gate (see `emojibot model list`); add --force to promote it"
        )

    store = open_store(settings)

    async def run() -> None:
        try:
            await store.set_current_model(args.version)
        finally:
            await store.close()

    asyncio.run(run())
    if status != "shipped":
        registry.set_status(args.version, "promoted", promoted_by="cli")
    print(f"current model: {args.version} (running bots switch within {settings.model_poll_s:g} s)")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Each version's files against its name (``models.artifacts.verify``); exit 2 if one differs."""
    from models.artifacts import ArtifactError, verify

    settings = load_cli_settings(args)
    registry = _registry(args, settings)
    versions = args.versions or [v["version"] for v in registry.versions()]
    rows = []
    for version in versions:
        try:
            verify(registry.folder(version))
            rows.append({"version": version, "ok": True})
        except ArtifactError as exc:
            rows.append({"version": version, "ok": False, "reason": str(exc)})
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            print(f"{r['version']:<20} " + ("ok" if r["ok"] else f"DAMAGED: {r['reason']}"))
    return 0 if all(r["ok"] for r in rows) else 2


def cmd_rollback(args: argparse.Namespace) -> int:
    settings = load_cli_settings(args)
    registry = _registry(args, settings)

    store = open_store(settings)

    async def run():
        try:
            if not await store.model_history():
                raise CLIError("nothing to roll back: the bot answers with the shipped model")
            return await store.pop_current_model()
        finally:
            await store.close()

    left, now = asyncio.run(run())
    print(f"rolled back from {left}; current model: {now or registry.shipped_version}")
    return 0


def register(sub) -> None:
    m = sub.add_parser("model", help="the model registry: list versions, promote one, roll back, verify their files")
    msub = m.add_subparsers(dest="model_command", metavar="COMMAND", required=True)
    for name, func, help_ in (
        ("list", cmd_list, "every version with its status and gate figures; * marks the current one"),
        ("promote", cmd_promote, "make VERSION the one every worker answers with"),
        ("rollback", cmd_rollback, "go back to the version that was current before"),
        ("verify", cmd_verify, "check that each version's files are the ones its name stands for (exit 2 if not)"),
    ):
        p = msub.add_parser(name, help=help_)
        if name == "promote":
            p.add_argument("version")
            p.add_argument("--force", action="store_true", help="promote a version the gate rejected")
        if name == "verify":
            p.add_argument("versions", nargs="*", metavar="VERSION", help="the versions to check (default: all)")
        if name in ("list", "verify"):
            p.add_argument("--json", action="store_true", help="print the rows as JSON")
        p.add_argument("--models-dir", dest="models_dir", help="where model versions are kept ($EMOJIBOT_MODELS_DIR)")
        if name != "verify":  # the only one that reads no database
            p.add_argument("--database-url", dest="database_url", help="the bot's database ($EMOJIBOT_DATABASE_URL)")
        p.set_defaults(func=func)
