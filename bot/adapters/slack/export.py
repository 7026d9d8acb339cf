"""A Slack workspace export as whole-catalog test rows: what people in *your* channels
reacted with, to measure the ranking on your own messages before switching auto-react on.

A workspace owner downloads the export (Workspace settings → Import/Export data) as a ZIP:
``channels.json``, ``users.json`` (``org_users.json`` on Enterprise Grid) and a folder per
conversation holding one JSON file per day, each a list of message objects as the Web API
gives them (``text``, ``subtype``, ``bot_id``, ``reactions: [{name, users, count}]``).
Each message a person wrote (the subtypes the bot answers) that people reacted to with a
catalog emoji becomes a row ``(text, emojis)``: the text as the bot reads it live (Slack's
markup made plain, :func:`bot.adapters.slack.markup.plain_text`), the reactions as
catalog emojis (skin tones folded). Reactions only bots added (this bot's own, for one)
are not counted, nor a workspace's custom emojis.
"""

from __future__ import annotations

import json
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.adapters.slack.adapter import ANSWERED_SUBTYPES
from bot.adapters.slack.markup import plain_text

_DAY_FILE = re.compile(r"^[^/]+/[^/]+\.json$")  # <conversation>/<day>.json, one folder deep
_USER_FILES = ("users.json", "org_users.json")
_ROOT_FILES = ("channels.json", *_USER_FILES)  # what marks the export's root
MAX_MEMBER_BYTES = 256 * 1024 * 1024  # one JSON file of the export, unpacked (a day of a busy channel: a few MB)


def _hidden(name: str) -> bool:
    """macOS's metadata (``__MACOSX/``, ``._users.json``) and other hidden files: not the export's."""
    return any(part.startswith(("__MACOSX", ".")) for part in name.split("/"))


class SlackExportError(ValueError):
    """The path is not a readable Slack export; the message says what is wrong."""


@dataclass
class ExportRows:
    """The rows of an export and what was left out, by reason."""

    texts: list[str] = field(default_factory=list)
    gold: list[list[str]] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)


class _Export:
    """The JSON members of an export, from its ZIP file or its unpacked folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._zip: zipfile.ZipFile | None = None
        if self.path.is_dir():
            members = [p.relative_to(self.path).as_posix() for p in self.path.rglob("*.json") if p.is_file()]
        elif self.path.is_file():
            try:
                self._zip = zipfile.ZipFile(self.path)
            except zipfile.BadZipFile as exc:
                raise SlackExportError(f"{self.path}: not a ZIP file (give the export's ZIP or its folder)") from exc
            members = self._zip.namelist()
        else:
            raise SlackExportError(f"{self.path}: no such file or folder")
        members = [n for n in members if not _hidden(n)]
        # The export's root: where channels.json / users.json are; one folder down when the ZIP
        # holds the unpacked folder itself, or the path is the folder above the export
        roots = {n.rsplit("/", 1)[0] + "/" if "/" in n else "" for n in members if n.rsplit("/", 1)[-1] in _ROOT_FILES}
        self.root = "" if "" in roots or len(roots) != 1 else roots.pop()
        self.names = sorted(
            n[len(self.root) :] for n in members if n.startswith(self.root) and _DAY_FILE.match(n[len(self.root) :])
        )
        self._members = set(members)

    def has(self, name: str) -> bool:
        return self.root + name in self._members

    def load(self, name: str) -> Any:
        """One JSON member, by its name under the export's root; any reading fault (a damaged
        or encrypted member, a compression Python lacks, one over MAX_MEMBER_BYTES unpacked)
        is a :class:`SlackExportError` that names it."""
        full = self.root + name
        try:
            if self._zip is not None:
                size = self._zip.getinfo(full).file_size
            else:
                size = (self.path / full).stat().st_size
            if size > MAX_MEMBER_BYTES:
                raise SlackExportError(
                    f"{self.path}: {full} is {size / 2**20:,.0f} MiB unpacked, over the "
                    f"{MAX_MEMBER_BYTES / 2**20:,.0f} MiB a file of an export may be"
                )
            raw = self._zip.read(full) if self._zip is not None else (self.path / full).read_bytes()
            return json.loads(raw.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SlackExportError(f"{self.path}: {full} is not JSON: {exc}") from exc
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, OSError, KeyError) as exc:
            raise SlackExportError(f"{self.path}: {full} cannot be read ({type(exc).__name__}: {exc})") from exc

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _bot_users(export: _Export) -> set[str]:
    """The user ids of the workspace's bots and apps (``is_bot``), from its member list."""
    out: set[str] = set()
    for name in _USER_FILES:
        if export.has(name):
            users = export.load(name)
            if isinstance(users, list):
                out |= {str(u.get("id")) for u in users if isinstance(u, dict) and u.get("is_bot")}
    return out


def _messages(export: _Export, progress: bool) -> Iterator[dict[str, Any]]:
    names = export.names
    if progress:
        from tqdm import tqdm

        names = tqdm(names, desc="export days", unit="file")
    for name in names:
        day = export.load(name)
        if not isinstance(day, list):
            raise SlackExportError(f"{export.path}: {name} is not a day of messages (a JSON list)")
        yield from (m for m in day if isinstance(m, dict))


def read_slack_export(path: str | Path, catalog, progress: bool = False) -> ExportRows:
    """The rows of a Slack export (its ZIP file or unpacked folder), see the module's text.
    ``counts`` says how many messages were read and why the others were left out."""
    export = _Export(path)
    try:
        if not export.names:
            raise SlackExportError(
                f"{export.path}: no conversation folders with day files (<channel>/<YYYY-MM-DD>.json): "
                "is this a Slack export?"
            )
        bots = _bot_users(export)
        rows = ExportRows()
        c = rows.counts
        for m in _messages(export, progress):
            if m.get("type", "message") != "message":
                continue
            c["messages"] += 1
            if m.get("subtype") not in ANSWERED_SUBTYPES or m.get("bot_id") or str(m.get("user")) in bots:
                c["not_a_person"] += 1
                continue
            text = m.get("text")
            if not isinstance(text, str) or not text.strip():
                c["no_text"] += 1
                continue
            reactions = m.get("reactions")
            if not isinstance(reactions, list) or not reactions:
                c["no_reactions"] += 1
                continue
            gold: dict[str, None] = {}
            for r in reactions:
                if not isinstance(r, dict):
                    continue
                users = r.get("users") if isinstance(r.get("users"), list) else []
                people = [u for u in users if str(u) not in bots]
                if not people and users:
                    c["reactions_by_bots_only"] += 1
                    continue
                name = str(r.get("name", ""))
                if name not in catalog:
                    c["custom_emoji_reactions"] += 1
                    continue
                gold.setdefault(catalog.lookup(name).char, None)
            if not gold:
                c["no_catalog_reaction"] += 1
                continue
            rows.texts.append(plain_text(text, catalog))
            rows.gold.append(list(gold))
        c["rows"] = len(rows.texts)
        return rows
    finally:
        export.close()
