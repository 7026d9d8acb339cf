"""`emojibot slack export-csv`: a Slack workspace export (its layout and message objects as
Slack writes them) becomes the text,emojis rows `evaluate emojis` reads."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from bot.adapters.slack.export import SlackExportError, read_slack_export
from bot.cli import main


def _msg(text, user="U1", reactions=(), **extra):
    m = {"type": "message", "user": user, "text": text, "ts": "1764000000.000100"}
    if reactions:
        m["reactions"] = [{"name": n, "users": list(us), "count": len(us)} for n, us in reactions]
    m.update(extra)
    return m


DAYS = {
    "general/2026-11-24.json": [
        _msg("pizza party at noon :pizza:", reactions=[("pizza", ["U2", "U3"]), ("tada", ["U3"])]),
        _msg("ship it", reactions=[("shipit", ["U2"])]),  # a workspace's custom emoji
        _msg("good morning", reactions=[("wave", ["UBOT"])]),  # only the bot reacted
        _msg("Deploy finished", user="", bot_id="B1", subtype="bot_message", reactions=[("rocket", ["U1"])]),
        _msg("<@U9> has joined the channel", user="U9", subtype="channel_join"),
        _msg("nice work <@U2>", reactions=[("+1::skin-tone-3", ["U2"]), ("thumbsup", ["U3", "UBOT"])]),
    ],
    "random/2026-11-25.json": [
        _msg("no one reacted to this"),
        _msg("love this team", subtype="thread_broadcast", reactions=[("heart", ["U1"])]),
        _msg("", subtype="file_share", reactions=[("camera", ["U2"])]),
        _msg("posted by an app as a user", user="UBOT", reactions=[("eyes", ["U1"])]),
    ],
}


@pytest.fixture
def export(tmp_path):
    root = tmp_path / "Acme Slack export Nov 1 2026 - Nov 25 2026"
    root.mkdir()
    (root / "channels.json").write_text(json.dumps([{"id": "C1", "name": "general"}, {"id": "C2", "name": "random"}]))
    users = [
        {"id": "U1", "name": "ana"},
        {"id": "U2", "name": "bo"},
        {"id": "UBOT", "name": "emojibot", "is_bot": True},
    ]
    (root / "users.json").write_text(json.dumps(users))
    (root / "integration_logs.json").write_text(json.dumps({"logs": []}))
    for name, messages in DAYS.items():
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_text(json.dumps(messages, ensure_ascii=False), encoding="utf-8")
    return root


def test_people_s_reactions_to_people_s_messages_are_the_rows(export, catalog):
    rows = read_slack_export(export, catalog)
    pizza, tada, thumbs, heart = (catalog.lookup(x).char for x in ("pizza", "tada", "+1", "heart"))
    assert rows.texts == ["pizza party at noon 🍕", "nice work @U2", "love this team"]  # as the bot reads them live
    assert rows.gold == [[pizza, tada], [thumbs], [heart]]  # skin tone folded, 👍 once
    c = rows.counts
    assert (c["messages"], c["rows"], c["not_a_person"], c["no_text"], c["no_reactions"]) == (10, 3, 3, 1, 1)
    assert c["no_catalog_reaction"] == 2 and c["custom_emoji_reactions"] == 1 and c["reactions_by_bots_only"] == 1


def test_the_zip_reads_as_its_folder(export, catalog, tmp_path):
    z = shutil.make_archive(str(tmp_path / "export"), "zip", export)
    assert read_slack_export(z, catalog).texts == read_slack_export(export, catalog).texts


def test_the_command_writes_a_csv_that_evaluate_reads(export, tmp_path, capsys, monkeypatch):
    out = tmp_path / "reactions.csv"
    assert main(["slack", "export-csv", str(export), "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "wrote 3 rows" in err and "from 10 messages" in err and "emojibot evaluate emojis --csv" in err
    with out.open(encoding="utf-8", newline="") as f:
        assert list(csv.reader(f))[0] == ["text", "emojis"]
    assert out.stat().st_mode & 0o777 == 0o600  # message texts: the owner's alone
    assert main(["evaluate", "emojis", "--csv", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 3
    # it never overwrites a file unasked (it may hold someone's messages)
    assert main(["slack", "export-csv", str(export), "--out", str(out), "--quiet"]) == 2
    assert "--force overwrites it" in capsys.readouterr().err
    assert main(["slack", "export-csv", str(export), "--out", str(out), "--quiet", "--force"]) == 0
    # a write that fails at the end leaves no half file of message texts, and the old one as it was
    before = out.read_bytes()

    def disk_full(self, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", disk_full)
    assert main(["slack", "export-csv", str(export), "--out", str(out), "--quiet", "--force"]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_bytes() == before and not out.with_name(out.name + ".part").exists()


def test_what_is_not_an_export_is_a_one_line_error(tmp_path, capsys, catalog):
    not_zip = tmp_path / "notes.zip"
    not_zip.write_text("hello")
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = tmp_path / "bad"
    (bad / "general").mkdir(parents=True)
    (bad / "general" / "2026-11-24.json").write_text("{not json")
    for path, message in [
        (tmp_path / "missing", "no such file or folder"),
        (not_zip, "not a ZIP file"),
        (empty, "is this a Slack export?"),
        (bad, "general/2026-11-24.json is not JSON"),
    ]:
        with pytest.raises(SlackExportError, match=message.replace("?", r"\?")):
            read_slack_export(path, catalog)
        assert main(["slack", "export-csv", str(path), "--out", str(tmp_path / "o.csv"), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("emojibot: error:") and message in err and "\n" not in err
    assert not (tmp_path / "o.csv").exists()


def test_a_zip_from_a_mac_or_of_the_folder_itself_reads_as_the_export(export, catalog, tmp_path):
    """Finder's ZIP carries __MACOSX/._*.json metadata (binary: the whole export failed on
    it), and a ZIP made of the unpacked folder holds everything one folder down (its
    users.json and channels.json were read as days, and no bot was known)."""
    import zipfile

    want = read_slack_export(export, catalog)
    mac = tmp_path / "mac.zip"
    with zipfile.ZipFile(mac, "w") as z:
        for f in export.rglob("*.json"):
            z.write(f, f.relative_to(export).as_posix())
        z.writestr("__MACOSX/._users.json", b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X\xff\xfe")
        z.writestr("__MACOSX/general/._2026-11-24.json", b"\x00\x05\x16\x07\xff")
    assert read_slack_export(mac, catalog).texts == want.texts
    nested = tmp_path / "nested.zip"
    with zipfile.ZipFile(nested, "w") as z:
        for f in export.rglob("*.json"):
            z.write(f, "Acme export/" + f.relative_to(export).as_posix())
    got = read_slack_export(nested, catalog)
    assert got.texts == want.texts and got.counts == want.counts
    above = tmp_path / "above"  # the command pointed at the folder that holds the export
    shutil.copytree(export, above / "export")
    assert read_slack_export(above, catalog).counts == want.counts


def test_a_member_that_cannot_be_read_is_named_in_one_line(export, catalog, tmp_path, capsys):
    """A damaged or encrypted member, or one compressed as Python cannot (Windows' Deflate64
    for large files), escaped as a bare decompression error without the file's name."""
    import zipfile

    z = shutil.make_archive(str(tmp_path / "export"), "zip", export)
    data = bytearray(Path(z).read_bytes())
    with zipfile.ZipFile(z) as zf:
        info = zf.getinfo("general/2026-11-24.json")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start, start + min(info.compress_size, 40)):
        data[i] ^= 0xFF  # the compressed bytes of one day, damaged
    broken = tmp_path / "broken.zip"
    broken.write_bytes(bytes(data))
    with pytest.raises(SlackExportError, match="general/2026-11-24.json cannot be read"):
        read_slack_export(broken, catalog)
    assert main(["slack", "export-csv", str(broken), "--out", str(tmp_path / "o.csv"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "general/2026-11-24.json" in err and "\n" not in err
