"""`serve`, `db upgrade` and `discord invite`: running the bot."""

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
