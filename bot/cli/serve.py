"""`serve`, `db upgrade`, `discord invite` and `slack export-csv`: running the bot."""

from __future__ import annotations

import argparse

from bot.cli.common import CLIError, load_cli_settings, quiet_tensorflow


def cmd_serve(args: argparse.Namespace) -> int:
    quiet_tensorflow()
    from bot.core.config import SettingsError
    from bot.serve import serve

    try:
        return serve(load_cli_settings(args), artifacts=args.artifacts)
    except SettingsError as exc:
        raise CLIError(str(exc)) from exc


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from bot.store.repository import current_revision, migrate

    settings = load_cli_settings(args)
    migrate(settings.database_url, args.revision)
    print(f"database at revision {current_revision(settings.database_url)}")
    return 0


def cmd_discord_invite(args: argparse.Namespace) -> int:
    from bot.adapters.discord import invite_url

    if not args.client_id.isdigit():
        raise CLIError("--client-id is the application's numeric id (Developer Portal → General Information)")
    print(invite_url(args.client_id))
    return 0


def cmd_slack_export_csv(args: argparse.Namespace) -> int:
    import csv
    import os
    import sys
    from pathlib import Path

    from bot.adapters.slack.export import SlackExportError, read_slack_export
    from models.catalog import EmojiCatalog

    out = Path(args.out)
    if out.exists() and not args.force:
        raise CLIError(f"{out} exists (it may hold your messages: --force overwrites it)")
    try:
        rows = read_slack_export(args.export, EmojiCatalog.load(), progress=not args.quiet)
    except SlackExportError as exc:
        raise CLIError(str(exc)) from exc
    c = rows.counts
    if not rows.texts:
        raise CLIError(
            f"{args.export}: none of its {c['messages']:,} messages is a person's text with a reaction of the "
            f"catalog ({_left_out(c)})"
        )
    tmp = out.with_name(out.name + ".part")
    tmp.unlink(missing_ok=True)
    # message texts: readable by the owner alone, as the export should be
    try:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["text", "emojis"])
            w.writerows((t, " ".join(g)) for t, g in zip(rows.texts, rows.gold, strict=True))
        tmp.replace(out)
    except BaseException:  # a full disk or ^C leaves no half file of message texts behind
        tmp.unlink(missing_ok=True)
        raise
    print(
        f"wrote {len(rows.texts):,} rows to {out} from {c['messages']:,} messages ({_left_out(c)}); "
        f"measure the ranking on them: emojibot evaluate emojis --csv {out}",
        file=sys.stderr,
    )
    return 0


def _left_out(c) -> str:
    reasons = {
        "not_a_person": "by bots or of other kinds",
        "no_text": "without text",
        "no_reactions": "without reactions",
        "no_catalog_reaction": "with only custom-emoji or bot reactions",
    }
    return "left out: " + ", ".join(f"{c[k]:,} {what}" for k, what in reasons.items())


def register(sub) -> None:
    sv = sub.add_parser(
        "serve",
        help="run the bot (the web playground when no platform token is set)",
        description="Migrate the database and serve the bot. Settings come from EMOJIBOT_* "
        "environment variables or .env (see README).",
    )
    sv.add_argument("--host", help="address to listen on (127.0.0.1)")
    sv.add_argument("--port", type=int, help="port (8080)")
    sv.add_argument("--database-url", dest="database_url", help="sqlite+aiosqlite:///FILE or postgresql+asyncpg://...")
    sv.set_defaults(func=cmd_serve)
    db = sub.add_parser("db", help="database migrations")
    dbsub = db.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    dbu = dbsub.add_parser("upgrade", help="migrate the database to the newest (or the given) revision")
    dbu.add_argument("revision", nargs="?", default="head")
    dbu.add_argument("--database-url", dest="database_url", help="default: $EMOJIBOT_DATABASE_URL or the SQLite file")
    dbu.set_defaults(func=cmd_db_upgrade)

    dc = sub.add_parser("discord", help="Discord helpers")
    dcsub = dc.add_subparsers(dest="discord_command", metavar="COMMAND", required=True)
    di = dcsub.add_parser("invite", help="print the URL that adds the bot to a server with the permissions it needs")
    di.add_argument("--client-id", dest="client_id", required=True, help="the application's id")
    di.set_defaults(func=cmd_discord_invite)

    sl = sub.add_parser("slack", help="Slack helpers")
    slsub = sl.add_subparsers(dest="slack_command", metavar="COMMAND", required=True)
    se = slsub.add_parser(
        "export-csv",
        help="turn a workspace export into a text,emojis CSV of the reactions people added, for evaluate emojis",
        description="Read a Slack workspace export (its ZIP file or unpacked folder: Workspace settings → "
        "Import/Export data) and write every message a person wrote that people reacted to with a catalog "
        "emoji as a row text,emojis (the reactions; skin tones folded; bots' reactions and custom emojis left "
        "out). Then `emojibot evaluate emojis --csv F` measures the ranking on your own channels. The CSV holds "
        "message texts: keep it where the export is kept.",
    )
    se.add_argument("export", help="the export's ZIP file or its unpacked folder")
    se.add_argument("--out", required=True, help="the CSV to write")
    se.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    se.add_argument("--quiet", action="store_true", help="no progress bar")
    se.set_defaults(func=cmd_slack_export_csv)
