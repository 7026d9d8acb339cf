"""`emojibot evaluate emojis`: whole-catalog metrics, folding of emoji forms, file errors."""

import json
import re

import numpy as np
import pytest

from bot.cli import main
from training.data import DataError, read_emoji_csv, read_emojis_in_text
from training.metrics import CatalogTally, catalog_metrics


def test_catalog_metrics_by_hand():
    scores = np.array(
        [
            [0.9, 0.1, 0.5, 0.0, 0.2, 0.3, 0.4],  # gold 0: first
            [0.9, 0.1, 0.5, 0.0, 0.2, 0.3, 0.4],  # gold 1 ranks 7th, gold 2 ranks 2nd: best is 2
            [0.1, 0.9, 0.5, 0.0, 0.2, 0.3, 0.4],  # gold 3 ranks 7th
        ]
    )
    gold = [np.array([0]), np.array([1, 2]), np.array([3])]
    m = catalog_metrics(scores, gold)
    assert m["top1_accuracy"] == pytest.approx(1 / 3)
    assert m["top5_accuracy"] == pytest.approx(2 / 3)
    assert m["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 7) / 3)
    # per emoji: 0 → 1/1, 1 → 0/1, 2 → 1/1, 3 → 0/1
    assert m["macro_recall_at_5"] == pytest.approx(0.5)
    assert m["distinct_top1"] == 2


def test_the_tally_of_chunks_is_the_metrics_of_the_whole():
    """`evaluate emojis` keeps a few numbers per row, not a file's scores: the figures
    gathered chunk by chunk, ties and emojis gold in several chunks included, are those of
    all the rows at once."""
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 6, size=(50, 12)).astype(np.float32)  # many ties
    gold = [rng.choice(12, size=rng.integers(1, 4), replace=False) for _ in range(50)]
    tally = CatalogTally()
    for i in (0, 7, 8, 30):
        j = {0: 7, 7: 8, 8: 30, 30: 50}[i]
        tally.add(scores[i:j], gold[i:j])
    assert tally.figures() == catalog_metrics(scores, gold)
    with pytest.raises(ValueError, match="no examples"):
        CatalogTally().figures()
    with pytest.raises(ValueError, match="3 rows of scores for 2"):
        CatalogTally().add(scores[:3], gold[:2])


def test_emoji_forms_are_folded_and_rows_without_a_catalog_emoji_skipped(tmp_path, catalog):
    f = tmp_path / "e.csv"
    f.write_text(
        'text,emojis\nlove it,❤️\n"great, thanks",👍🏽 :tada:\nnothing known,notanemoji\nsame twice,❤ ❤️\n'
        "run together,❤️❤️👍🏿\n",
        encoding="utf-8",
    )
    rows = read_emoji_csv(f, catalog)
    heart, thumbs, tada = (catalog.lookup(x).char for x in ("❤", "👍", "🎉"))
    assert rows.texts == ["love it", "great, thanks", "same twice", "run together"]
    assert rows.gold == [[heart], [thumbs, tada], [heart], [heart, thumbs]]
    assert rows.skipped == 1


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-8-sig"])
def test_a_file_with_a_byte_order_mark_is_read_in_its_encoding(tmp_path, catalog, encoding):
    """A spreadsheet's "Unicode text" is UTF-16 with a byte-order mark (read as UTF-8 its
    header was '��t\x00e\x00x\x00t…'); UTF-8 with one is read as well."""
    f = tmp_path / "e.csv"
    text = 'text,emojis\nlove it,❤️\n"great, thanks",👍🏽 :tada:\n'
    f.write_bytes(("\ufeff" + text).encode(encoding) if encoding == "utf-16-le" else text.encode(encoding))
    rows = read_emoji_csv(f, catalog)
    assert rows.texts == ["love it", "great, thanks"]
    assert rows.gold == [[catalog.lookup("❤").char], [catalog.lookup("👍").char, catalog.lookup("🎉").char]]


def test_emojis_in_text_are_the_gold_and_leave_the_text(tmp_path, catalog, capsys):
    f = tmp_path / "export.csv"
    f.write_text(
        "user,text,ts\n"
        "a,I ❤️ flying ☺️👍,1\n"
        "b,pizza party :pizza::pizza: at noon,2\n"
        "c,no emoji here,3\n"
        "d,😂😂,4\n"  # nothing but emojis: nothing to rank
        "e,good ❤️ and ❤ again 🎂,5\n",
        encoding="utf-8",
    )
    rows = read_emojis_in_text(f, catalog)
    heart, smile, thumbs, pizza, cake = (catalog.lookup(x).char for x in ("❤", "☺", "👍", "🍕", "🎂"))
    assert rows.texts == ["I flying", "pizza party at noon", "good and again"]
    assert rows.gold == [[heart, smile, thumbs], [pizza], [heart, cake]]
    assert rows.skipped == 2
    # the command: the same rows, ranked against the whole catalog
    assert main(["evaluate", "emojis", "--csv", str(f), "--emojis-in-text", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"] == 3 and out["rows_skipped"] == 2
    # a file read as text,emojis would find no emojis column
    assert main(["evaluate", "emojis", "--csv", str(f), "--json"]) == 2
    assert "missing column(s) emojis" in capsys.readouterr().err
    # --emojis-in-text without a file, and a file with no text column, are one-line errors
    assert main(["evaluate", "emojis", "--emojis-in-text", "--data-dir", str(tmp_path), "--split", "val"]) == 2
    assert "--emojis-in-text reads the texts of a CSV" in capsys.readouterr().err
    g = tmp_path / "no_text.csv"
    g.write_text("body\nhi 🎉\n", encoding="utf-8")
    assert main(["evaluate", "emojis", "--csv", str(g), "--emojis-in-text"]) == 2
    assert "missing column(s) text" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, message",
    [
        ("words,labels\nhi,🎉\n", "missing column(s) emojis, text"),
        ("Words,Labels\nhi,🎉\n", "; its first line reads 'Words,Labels'"),
        ("text;emojis\nhi;🎉\n", "columns must be separated by commas, not ';'"),
        ("text\temojis\nhi\t🎉\n", "columns must be separated by commas, not '\\t'"),
        ("", "the file is empty"),
        ("text,emojis\nonly one column\n", "expected 2 columns"),
        ("text,emojis\nhi,nothing\n", "no row has an emoji of the catalog"),
    ],
)
def test_a_malformed_file_is_one_line_with_exit_2(tmp_path, capsys, content, message):
    f = tmp_path / "bad.csv"
    f.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(message)):
        read_emoji_csv(f)
    assert main(["evaluate", "emojis", "--csv", str(f), "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("emojibot: error:") and "\n" not in err


def test_the_command_ranks_the_whole_catalog(tmp_path, capsys):
    f = tmp_path / "e.csv"
    f.write_text("text,emojis\nmerry christmas everyone,🎄\nhappy birthday to you,🎂 🎉\nzzz,notanemoji\n")
    assert main(["evaluate", "emojis", "--csv", str(f), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"] == 2 and out["rows_skipped"] == 1
    assert set(out) >= {"top1_accuracy", "top5_accuracy", "mrr", "macro_recall_at_5", "distinct_top1"}
    assert 0 <= out["top1_accuracy"] <= out["top5_accuracy"] <= 1 and 0 < out["mrr"] <= 1


def test_auto_react_figures_are_what_the_bot_would_add(tmp_path, capsys):
    """`auto_react` counts the reactions the bot's rule gives each row (the same function
    the core calls) and which of them the writer used; the count and threshold are the
    channel's settings."""
    from models.ranker import TextRanker
    from models.reactions import reactions

    texts = ["we're ordering sushi, want some?", "lunch anyone?", "rest in peace, you will be missed", "zzz"]
    gold = ["🍣", "🍕", "😢 😭", "😂"]
    f = tmp_path / "e.csv"
    f.write_text("text,emojis\n" + "".join(f'"{t}",{g}\n' for t, g in zip(texts, gold, strict=True)), encoding="utf-8")
    ranker = TextRanker()
    for count, threshold in ((3, 0.2), (1, -1.0), (5, 0.3)):
        added = [[r.emoji for r in reactions(row, threshold)] for row in ranker.rank(texts, k=count)]
        argv = ["evaluate", "emojis", "--csv", str(f), "--react-count", str(count), "--react-threshold", str(threshold)]
        assert main([*argv, "--json"]) == 0
        got = json.loads(capsys.readouterr().out)["auto_react"]
        right = sum(e in g.split() for a, g in zip(added, gold, strict=True) for e in a)
        n = sum(map(len, added))
        assert got == {
            "count": count,
            "threshold": threshold,
            "messages_reacted": sum(map(bool, added)),
            "reactions": n,
            "right": right,
            "precision": round(right / n, 4) if n else None,
        }
        if threshold == -1.0:  # every message gets exactly `count`
            assert got["reactions"] == len(texts) * count
    assert got["right"] >= 1  # 🍣 for the sushi order fits well (0.49) and comes first
    assert main(["evaluate", "emojis", "--csv", str(f)]) == 0
    assert "auto_react.precision:" in capsys.readouterr().out  # nested figures, one per line


def test_never_takes_a_channels_emojis_out_of_the_rankings_and_reactions(tmp_path, capsys):
    """`--never`: the emojis a channel keeps out are ranked last for every row (a writer's
    😘 is then found only through their other emojis) and auto_react takes the ranking's
    next ones, by the rule the core uses (models.reactions.without)."""
    from models.ranker import TextRanker
    from models.reactions import reactions, without

    texts = ["see you tonight babe", "happy birthday my love", "merry christmas everyone", "miss you so much"]
    gold = ["😘", "😘 🎂", "🎄", "😘"]
    f = tmp_path / "e.csv"
    f.write_text("text,emojis\n" + "".join(f'"{t}",{g}\n' for t, g in zip(texts, gold, strict=True)), encoding="utf-8")
    ranker = TextRanker()
    ranked = ranker.rank(texts, k=8)
    assert any(r.emoji == "😘" for row in ranked for r in row[:3])  # the list has something to take out
    plain = _figures(capsys, f, "--react-threshold", "-1")
    kept = _figures(capsys, f, "--react-threshold", "-1", "--never", ":kissing_heart: 💋")
    assert kept["never"] == "😘 💋" and "never" not in plain
    added = [[r.emoji for r in reactions(without(row, ("😘", "💋"), 3), -1.0)] for row in ranked]
    assert kept["auto_react"]["reactions"] == 12  # 3 a row still: the next emojis fill in
    assert kept["auto_react"]["right"] == sum(e in g.split() for a, g in zip(added, gold, strict=True) for e in a)
    assert kept["auto_react"]["right"] < plain["auto_react"]["right"]  # the writers' 😘 is added no more
    # the whole-catalog figures read the ranking without them: a row whose only emoji is 😘
    # is found no more
    top5 = [[r.emoji for r in without(row, ("😘", "💋"), 5)] for row in ranker.rank(texts, k=20)]
    found = [any(e in t for e in g.split()) for t, g in zip(top5, gold, strict=True)]
    assert kept["top5_accuracy"] == pytest.approx(sum(found) / 4) and not found[0] and not found[3]
    assert kept["mrr"] < plain["mrr"]
    assert main(["evaluate", "emojis", "--csv", str(f), "--never", "😘 smooch"]) == 2
    assert "--never: not an emoji: smooch" in capsys.readouterr().err


def test_without_takes_the_list_out_and_keeps_k():
    from models.ranker import Ranked
    from models.reactions import without

    row = [Ranked(e, 1.0 - i / 10, 0.5) for i, e in enumerate("😘😂😍💋🎉🍕")]
    assert [r.emoji for r in without(row, ("😘", "💋"), 3)] == ["😂", "😍", "🎉"]
    assert [r.emoji for r in without(row, (), 2)] == ["😘", "😂"]
    pairs = [("🐸", 0.6), ("🐍", 0.3), ("🐢", 0.1)]  # a picture's answer
    assert without(pairs, ("🐸",), 3, emoji=lambda p: p[0]) == [("🐍", 0.3), ("🐢", 0.1)]


@pytest.mark.parametrize("flag, value", [("--react-threshold", "1.5"), ("--react-count", "0")])
def test_auto_react_settings_out_of_range_are_refused(tmp_path, capsys, flag, value):
    f = tmp_path / "e.csv"
    f.write_text("text,emojis\nlove it,❤️\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "emojis", "--csv", str(f), flag, value])
    assert exc.value.code == 2 and flag in capsys.readouterr().err


def _figures(capsys, f, *flags: str) -> dict:
    """`evaluate emojis --csv F [flags] --json`, read back."""
    assert main(["evaluate", "emojis", "--csv", str(f), *flags, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_heads_on_catalog_is_an_ablation_of_the_same_rows(tmp_path, capsys):
    f = tmp_path / "e.csv"
    f.write_text("text,emojis\nmerry christmas everyone,🎄\nlove you so much,❤️\nmy flight got cancelled,😡\n")
    plain, heads = _figures(capsys, f), _figures(capsys, f, "--heads-on-catalog")
    assert heads["rows"] == plain["rows"] == 3
    assert heads["model_version"] == plain["model_version"] + "+heads"


@pytest.mark.parametrize(
    "flags, suffix",
    [(["--no-prior"], "-prior"), (["--no-names", "--no-catalog-head"], "-names-catalog-head")],
)
def test_ablations_rank_the_same_rows_and_say_what_they_left_out(tmp_path, capsys, flags, suffix):
    from models.ranker import TextRanker
    from training.metrics import catalog_metrics

    f = tmp_path / "e.csv"
    f.write_text("text,emojis\nmerry christmas everyone,🎄\nok see you,😂\nmy flight got cancelled,✈️\n")
    plain, ablated = _figures(capsys, f), _figures(capsys, f, *flags)
    assert ablated["rows"] == plain["rows"] == 3
    assert ablated["model_version"] == plain["model_version"] + suffix
    r = TextRanker()  # the figures are those of the ranking with that part left out
    left_out = {"prior": "--no-prior" not in flags, "names": "--no-names" not in flags}
    left_out["catalog_head"] = "--no-catalog-head" not in flags
    s = r.scores(["merry christmas everyone", "ok see you", "my flight got cancelled"], **left_out)
    expected = catalog_metrics(s, [np.asarray([r.index.positions[e]]) for e in ("🎄", "😂", "✈️")])
    assert ablated["mrr"] == pytest.approx(expected["mrr"])


def test_no_grave_reports_the_ranking_without_the_grave_message_guard(tmp_path, capsys):
    f = tmp_path / "e.csv"
    f.write_text("text,emojis\nsad news: our colleague Tom died this morning,😂\nmy dog died today,🐶\n")
    guarded, plain = _figures(capsys, f), _figures(capsys, f, "--no-grave")
    assert plain["model_version"] == guarded["model_version"] + "-grave"
    # 😂 was the writer's emoji for the first: held back (models.grave), it leaves the top 5
    assert guarded["top5_accuracy"] < plain["top5_accuracy"]


def test_no_complaint_reports_the_ranking_without_the_complaint_guard(tmp_path, capsys):
    f = tmp_path / "e.csv"
    f.write_text('text,emojis\ntraffic was terrible this morning,😍\n"the deploy failed again, rolling back",😭\n')
    guarded, plain = _figures(capsys, f), _figures(capsys, f, "--no-complaint")
    assert plain["model_version"] == guarded["model_version"] + "-complaint"
    assert guarded["rows"] == plain["rows"] == 2
    # 😍 was the writer's emoji for the first: held back (models.complaint), it leaves the top 5
    assert guarded["top5_accuracy"] < plain["top5_accuracy"]


def test_the_whole_catalog_split_is_fixed_and_a_fifth(data_dir):
    from training.data import load_twemoji_tweets

    whole = load_twemoji_tweets(data_dir)
    train, val = load_twemoji_tweets(data_dir, "train"), load_twemoji_tweets(data_dir, "val")
    assert load_twemoji_tweets(data_dir, "val").texts == val.texts  # the same rows on every run
    assert len(train.texts) + len(val.texts) == len(whole.texts)
    assert sorted(train.texts + val.texts) == sorted(whole.texts)  # every row on exactly one side
    assert abs(len(val.texts) / len(whole.texts) - 0.2) < 0.001


def test_a_model_trained_on_every_tweet_holds_out_its_tune_rows(data_dir, tmp_path):
    """``rows="all"``: the pool is both sides; what such a model never trained on is its
    tune rows, and its val figures are refused as in-sample."""
    from training.data import require_unseen, shipped_pool, trained_rows, twemoji_pool

    train, val = twemoji_pool(data_dir, "train")
    everything, none = twemoji_pool(data_dir, "all")
    assert none is None and everything.texts == train.texts + val.texts
    with pytest.raises(DataError, match="rows must be one of train, all"):
        twemoji_pool(data_dir, "val")
    for rows in ("train", "all"):
        folder = tmp_path / rows
        folder.mkdir()
        folder.joinpath("manifest.json").write_text(json.dumps({"sqam": {"settings": {"rows": rows, "seed": 13}}}))
        assert trained_rows(folder) == rows
        draw = shipped_pool(data_dir, folder)
        assert len(draw.tune) + len(draw.rest) == len(draw.pool.texts)
        name, held = draw.held_out()
        trained = draw.trained()
        if rows == "train":
            assert (name, held.texts, trained.texts) == ("val side", val.texts, train.texts)
            require_unseen(folder, "val")  # its val side is unseen: allowed
        else:
            assert name == "tune rows" and held.texts == [everything.texts[i] for i in draw.tune]
            assert len(trained.texts) == len(draw.rest) and not set(draw.tune) & set(draw.rest)
            with pytest.raises(DataError, match="in-sample"):
                require_unseen(folder, "val")
        require_unseen(folder, "train")  # the train side was never promised unseen
    assert trained_rows(tmp_path) == "train"  # no manifest: what every model before this option did


def test_split_tune_scores_the_rows_the_retrain_gate_reads(data_dir, capsys):
    """`--split tune` of the shipped model (trained on every tweet) is its tune rows: the
    figures the retrain gate compares, by the same ranking; a yardstick is refused there
    (it trains on the train side, which holds most of those rows)."""
    from models.ranker import TextRanker
    from training.data import shipped_pool
    from training.retrain import validation_figures

    assert main(["evaluate", "emojis", "--data-dir", str(data_dir), "--split", "tune", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    folder = TextRanker().folder
    gate = validation_figures(folder, data_dir)
    assert gate["catalog_val_rows"] == "tune rows" and out["rows"] == len(shipped_pool(data_dir, folder).tune)
    for k in ("top1_accuracy", "top5_accuracy", "mrr", "macro_recall_at_5"):
        assert round(out[k], 4) == gate["catalog_val"][k]
    argv = ["evaluate", "emojis", "--data-dir", str(data_dir), "--split", "tune", "--baseline", "svm"]
    assert main(argv) == 2 and "holds the tune rows" in capsys.readouterr().err
    argv = ["evaluate", "emojis", "--data-dir", str(data_dir), "--split", "tune", "--read-at", "0.4", "0.2", "0.4"]
    assert main([*argv, "0.3"]) == 2 and "holds the tune rows" in capsys.readouterr().err
    argv = ["evaluate", "emojis", "--data-dir", str(data_dir), "--split", "train", "--baseline", "popularity"]
    assert main(argv) == 2 and "in-sample" in capsys.readouterr().err  # the yardstick's own training rows


def test_a_share_of_the_training_rows_keeps_the_tune_rows():
    from training.data import tune_split

    tune, rest = tune_split(1000, 13, 0.1)
    tune_part, part = tune_split(1000, 13, 0.1, share=0.8)
    assert np.array_equal(tune, tune_part) and len(part) == 720 and set(part) < set(rest)
    assert np.array_equal(part, tune_split(1000, 13, 0.1, share=0.8)[1])  # seeded


def test_evaluate_refuses_val_for_a_model_trained_on_it(capsys, data_dir, tmp_path, monkeypatch):
    import shutil

    from models.artifacts import artifacts_dir, read_manifest, update_manifest

    folder = tmp_path / "artifacts"
    shutil.copytree(artifacts_dir(None), folder)
    settings = read_manifest(folder)["sqam"]["settings"]
    update_manifest(folder, "sqam", {**read_manifest(folder)["sqam"], "settings": {**settings, "rows": "all"}})
    monkeypatch.setenv("EMOJIBOT_ARTIFACTS", str(folder))
    for command in ("emojis", "tweeteval"):
        code = main(["evaluate", command, "--data-dir", str(data_dir), "--split", "val", "--json"])
        err = capsys.readouterr().err
        assert code != 0 and "in-sample" in err and "--rows train" in err, err
    # the model is read too with --read-at: refused before the yardsticks train
    read_at = ["--read-at", "0.4", "0.2", "0.4", "0.3"]
    assert main(["evaluate", "emojis", "--data-dir", str(data_dir), "--split", "val", *read_at]) == 2
    assert "in-sample" in capsys.readouterr().err
    # the yardsticks never trained on the val side: they still score it
    code = main(
        ["evaluate", "emojis", "--data-dir", str(data_dir), "--split", "val", "--baseline", "popularity", "--json"]
    )
    assert code == 0 and json.loads(capsys.readouterr().out)["rows"] > 4000


@pytest.mark.parametrize("baseline", ["popularity", "svm"])
def test_baselines_train_on_the_train_side_and_score_any_file(tmp_path, capsys, baseline):
    folder = tmp_path / "data" / "twemoji_tweets"
    folder.mkdir(parents=True)
    rows = [("pizza for dinner tonight", "🍕"), ("so happy today", "😂"), ("love you", "❤"), ("haha lol", "😂")]
    folder.joinpath("tweets.csv").write_text(
        "text,emojis\n" + "".join(f"{t} {i},{e}\n" for i in range(60) for t, e in rows), encoding="utf-8"
    )
    probe = tmp_path / "probe.csv"
    probe.write_text("text,emojis\npizza for dinner,🍕\nhaha so funny lol,😂\n", encoding="utf-8")
    argv = ["evaluate", "emojis", "--csv", str(probe), "--data-dir", str(tmp_path / "data"), "--baseline", baseline]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model_version"] == f"baseline:{baseline}" and out["rows"] == 2
    if baseline == "popularity":  # one answer for everything: 😂 first
        assert out["distinct_top1"] == 1 and out["top1_accuracy"] == 0.5
    else:  # the words decide
        assert out["top1_accuracy"] == 1.0


def test_a_baseline_without_data_is_a_one_line_error(tmp_path, capsys):
    f = tmp_path / "e.csv"
    f.write_text("text,emojis\nhi,🎉\n")
    assert main(["evaluate", "emojis", "--csv", str(f), "--baseline", "svm"]) == 2
    assert "give --data-dir" in capsys.readouterr().err


def test_scoring_a_collection_in_chunks_gives_the_scores_of_one_call():
    from models.ranker import TextRanker

    ranker = TextRanker()
    texts = ["pizza party", "", "rain all weekend", "congrats!!", "lakers lost", "coffee first"]
    whole = ranker.scores(texts, allow_empty=True)
    np.testing.assert_allclose(ranker.scores_in_chunks(texts, chunk=4), whole, rtol=1e-5, atol=1e-7)
    among = ranker.scores_in_chunks(texts, ["🍕", "☔", "🎉"], chunk=2, prior=False)
    np.testing.assert_allclose(among, ranker.scores(texts, ["🍕", "☔", "🎉"], allow_empty=True), rtol=1e-5)
    assert among.shape == (6, 3) and among[0].argmax() == 0
    assert ranker.scores_in_chunks([]).shape == (0, len(ranker.chars))
    assert ranker.scores_in_chunks([], ["🍕", "☔"]).shape == (0, 2)


def test_the_parts_of_the_ranking_have_one_list():
    """``Terms`` names the parts once: the CLI's ablations are among them, an unknown part is
    refused wherever terms are taken, and the sets training reads are parts too."""
    from dataclasses import fields

    from bot.cli.evaluate import ABLATIONS
    from models.ranker import NO_GUARDS, SQAM_ALONE, SUM_OF_TERMS, Terms, TextRanker
    from training.evaluate import evaluate_emojis

    names = {f.name for f in fields(Terms)}
    assert set(ABLATIONS) == names - {"heads_on_catalog"}
    assert Terms().changed() == []
    assert Terms(**SUM_OF_TERMS).changed() == ["prior", "name_slot", "grave", "complaint", "opposite"]
    assert set(SQAM_ALONE) | set(NO_GUARDS) <= names
    r = TextRanker()
    with pytest.raises(TypeError):
        r.scores(["pizza party"], nmaes=False)
    with pytest.raises(TypeError):
        evaluate_emojis(None, split="val", data_dir=".", progress=False, catalogue_head=False)


def test_tilted_weights_reach_the_targets_as_close_to_uniform_as_can_be():
    from training.metrics import tilted_weights

    f = np.array([[1, 1], [1, 0], [0, 1], [0, 0], [0, 0], [1, 0]], dtype=float)
    w = tilted_weights(f, [0.7, 0.4])
    assert w.sum() == pytest.approx(1) and (w > 0).all()
    assert w @ f == pytest.approx([0.7, 0.4], abs=1e-6)
    # the least change: of the weights that reach the targets, the nearest to uniform
    assert np.sum(w * np.log(w)) <= np.sum(_other_weights(f, [0.7, 0.4]) * np.log(_other_weights(f, [0.7, 0.4])))
    assert tilted_weights(f, f.mean(axis=0)) == pytest.approx(np.full(6, 1 / 6))  # already there: uniform
    with pytest.raises(ValueError, match="no weighting"):
        tilted_weights(f[:, :1] * 0, [0.5])  # no row has it: no weights give it to half of them
    with pytest.raises(ValueError, match="no weighting"):
        tilted_weights(np.array([[1, 1], [0, 0]], float), [0.5, 0.2])  # the columns always agree


def _other_weights(f, targets):
    """Weights that also reach ``targets`` on the rows of ``f`` in the test above, found by
    hand: all of the [1, 1] row's share on it, the rest spread to fit."""
    # rows [1,1], [1,0], [0,1], [0,0], [0,0], [1,0]: a = w0, b = w1 + w5, c = w2, d = w3 + w4
    a, c = 0.4, 0.0  # a + c = 0.4 (second column); a + b = 0.7 → b = 0.3; d = 0.3
    return np.array([a, 0.15, c + 1e-12, 0.15, 0.15, 0.15]) / (a + 0.6 + c + 1e-12)


def test_tilts_of_nearly_repeated_columns_are_reached():
    """A yardstick's top-5 hit and its reciprocal rank nearly repeat each other, and so do two
    yardsticks' columns where they agree. Weights are found for every one of 300 targets of
    that kind (the search's first version gave up on one of them, stuck where the dual's
    decrease fell under its rounding), and for strong tilts worth a few rows."""
    from training.metrics import tilted_weights

    rng = np.random.default_rng(5)
    u = rng.random(4579)
    r1 = np.where(u < 0.25, rng.integers(1, 6, 4579), rng.integers(6, 600, 4579))
    other = np.where(rng.random(4579) < 0.28, rng.integers(1, 6, 4579), rng.integers(6, 600, 4579))
    r2 = np.where(rng.random(4579) < 0.7, r1, other)
    f = np.stack([r1 <= 5, 1 / r1, r2 <= 5, 1 / r2], 1).astype(float)
    for _ in range(300):
        a, c = rng.uniform(0.1, 0.7), rng.uniform(0.1, 0.7)
        t = np.array([a, a * rng.uniform(0.3, 0.9), c, c * rng.uniform(0.3, 0.9)])
        assert tilted_weights(f, t) @ f == pytest.approx(t, abs=1e-6)
    for scale in (1.0, 4.0, 10.0):
        w = np.exp(f @ (scale * np.array([1.0, -0.8, -1.2, 1.5])))
        w /= w.sum()
        assert tilted_weights(f, w @ f) == pytest.approx(w, abs=1e-6)  # the tilt is unique: the same weights


def test_weighted_figures_by_hand():
    from training.metrics import weighted_figures

    best = np.array([1, 3, 7, 2])
    plain = weighted_figures(best, np.ones(4))
    assert plain["top1_accuracy"] == 0.25 and plain["top5_accuracy"] == 0.75 and plain["effective_rows"] == 4
    assert plain["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 7 + 1 / 2) / 4)
    w = weighted_figures(best, np.array([0.1, 0.1, 0.7, 0.1]))
    assert w["top5_accuracy"] == pytest.approx(0.3) and w["top1_accuracy"] == pytest.approx(0.1)
    assert w["top5_standard_error"] == pytest.approx(np.sqrt(3 * 0.01 * 0.7**2 + 0.49 * 0.3**2))
    assert w["effective_rows"] == round(1 / (3 * 0.01 + 0.49))


def _small_collection(tmp_path):
    """A data folder whose train side has eight emojis (popularity's five leave three out)
    and a probe file of rows each yardstick finds or misses."""
    folder = tmp_path / "data" / "twemoji_tweets"
    folder.mkdir(parents=True)
    rows = [("haha lol", "😂", 9), ("love you", "❤", 8), ("so happy", "😊", 7), ("party time", "🎉", 6)]
    rows += [("fire track", "🔥", 5), ("pizza for dinner", "🍕", 3), ("coffee first", "☕", 2), ("my dog", "🐶", 2)]
    folder.joinpath("tweets.csv").write_text(
        "text,emojis\n" + "".join(f"{t} {i},{e}\n" for t, e, n in rows for i in range(20 * n)), encoding="utf-8"
    )
    probe = tmp_path / "probe.csv"
    probe.write_text(
        "text,emojis\npizza for dinner,🍕\nhaha so funny lol,😂\ncoffee first thing,☕\nwalking my dog,🐶\n"
        "love you all,❤️\nthe new phone,📱\nparty at mine,🎉\nfire,🔥\nso happy,😊\nmonday again,😩\n",
        encoding="utf-8",
    )
    return tmp_path / "data", probe


def test_read_at_reads_the_model_where_the_yardsticks_score_given_figures(tmp_path, capsys):
    """`--read-at`: the rows reweighted so that popularity and the SVM score the given top-5
    and MRR. Given the figures of a known tilt of these rows, the reading is the model's
    figures at that tilt's weights; at the yardsticks' own figures it is the plain ones."""
    from models.ranker import TextRanker
    from training.baseline import CatalogBaseline
    from training.metrics import weighted_figures

    data, probe = _small_collection(tmp_path)
    ranker = TextRanker()
    rows = read_emoji_csv(probe, ranker.catalog)
    _, texts, gold = rows.in_catalog(ranker.index.positions)

    def ranks(scores):
        return CatalogTally().add(scores, gold).ranks()

    columns = []
    for kind in ("popularity", "svm"):
        r = ranks(CatalogBaseline(kind, data).scores(texts, ranker.chars))
        columns += [r <= 5, 1.0 / r]
    f = np.stack(columns, axis=1).astype(float)
    ours = ranks(ranker.scores(texts))
    argv = ["evaluate", "emojis", "--csv", str(probe), "--data-dir", str(data), "--json", "--read-at"]
    for lam in ([0.0, 0.0, 0.0, 0.0], [-1.0, 0.5, -0.7, 0.0]):
        w = np.exp(f @ lam)
        w /= w.sum()
        assert main([*argv, *(repr(float(x)) for x in w @ f)]) == 0
        out = json.loads(capsys.readouterr().out)
        expected = weighted_figures(ours, w)
        for k in ("top1_accuracy", "top5_accuracy", "mrr", "top5_standard_error"):
            assert out["reading"][k] == pytest.approx(expected[k], abs=1e-6)
        assert out["reading"]["effective_rows"] == expected["effective_rows"]
        assert out["reading"]["yardsticks"]["svm"]["here"]["mrr"] == pytest.approx(f[:, 3].mean())
    # a never-list hides its emojis from the model's rankings, not from the yardsticks', whose
    # figures were measured without one: the same weights, the model's ranks without 😂
    assert main([*argv, *(repr(float(x)) for x in w @ f), "--never", "😂"]) == 0
    never = json.loads(capsys.readouterr().out)
    scores = ranker.scores(texts)
    scores[:, ranker.index.positions["😂"]] = -np.inf
    expected = weighted_figures(ranks(scores), w)
    assert never["reading"]["top5_accuracy"] == pytest.approx(expected["top5_accuracy"], abs=1e-6)
    assert never["reading"]["mrr"] == pytest.approx(expected["mrr"], abs=1e-6)
    assert never["reading"]["yardsticks"] == out["reading"]["yardsticks"]
    plain = weighted_figures(ours, np.ones(len(ours)))
    assert plain["top5_accuracy"] == pytest.approx(out["top5_accuracy"])
    assert expected["top5_accuracy"] != pytest.approx(plain["top5_accuracy"], abs=1e-3)  # the tilt moved it


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--read-at", "0.5", "0.3", "0.6", "0.4", "--baseline", "svm"], "leave --baseline out"),
        (["--read-at", "0.5", "0.3", "0.6", "1.2"], "more than 0 and less than 1"),
        (["--read-at", "0.5", "0.3", "0.6"], "expected 4 arguments"),
        (["--read-at", "0.99", "0.01", "0.01", "0.99"], "no weighting of these 10 rows gives"),
    ],
)
def test_read_at_errors_are_one_line(tmp_path, capsys, extra, message):
    data, probe = _small_collection(tmp_path)
    try:
        code = main(["evaluate", "emojis", "--csv", str(probe), "--data-dir", str(data), *extra])
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # after argparse's usage or the progress bars: one line that says it
    assert code == 2 and last.startswith("emojibot") and message in last


def test_read_at_needs_the_yardsticks_data(tmp_path, capsys):
    _, probe = _small_collection(tmp_path)
    assert main(["evaluate", "emojis", "--csv", str(probe), "--read-at", "0.5", "0.3", "0.6", "0.4"]) == 2
    assert "give --data-dir" in capsys.readouterr().err
