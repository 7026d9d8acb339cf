"""`emojibot bench text` runs end to end and reports every figure (values are not asserted:
speed is measured by the command, never by tests)."""

import json

from bot.cli import main


def test_bench_text_reports_all_figures(capsys, data_dir):
    code = main(["bench", "text", "--data-dir", str(data_dir), "--seconds", "0.3", "--cold-runs", "1", "--json"])
    assert code == 0
    res = json.loads(capsys.readouterr().out)
    for key in (
        "sqam_p50_ms", "sqam_p99_ms", "sqam_engine_p50_ms", "sqam_texts_per_s", "sqam_engine_texts_per_s",
        "sqam_cold_start_s", "sqam_peak_rss_mb", "baseline_p50_ms", "baseline_texts_per_s",
        "baseline_cold_start_s", "baseline_peak_rss_mb", "baseline_val_macro_f1", "sqam_val_macro_f1",
    ):  # fmt: skip
        assert isinstance(res[key], float) and res[key] > 0, key
    assert res["catalog_size"] > 1800


def test_bench_slack_loses_and_duplicates_nothing(capsys):
    """The Slack load bench on loopback (real adapter, core, engine and SQLite store; the fake
    Slack Web API): a short run must answer every event exactly once."""
    code = main(["bench", "slack", "--events", "200", "--rate", "100", "--json"])
    assert code == 0
    res = json.loads(capsys.readouterr().out)
    assert res["events"] == 200 and res["fault"] == "none"
    assert res["reactions_lost"] == 0 and res["reactions_duplicated"] == 0
    assert res["event_to_reaction_p50_ms"] > 0 and res["sustained_events_per_s"] > 0


def test_bench_picture_reports_its_figures(capsys, data_dir):
    code = main(["bench", "picture", "--data-dir", str(data_dir), "--pictures", "32", "--json"])
    assert code == 0
    res = json.loads(capsys.readouterr().out)
    assert res["pictures"] == 32 and res["catalog_size"] > 1800
    for key in (
        "picture_p50_ms",
        "picture_p99_ms",
        "pictures_per_s_batches_of_16",
        "pictures_per_s_engine_64_concurrent",
    ):
        assert res[key] > 0, key


def test_bench_retrain_times_each_step_and_reports_figures_before_and_after(capsys, data_dir):
    code = main(["bench", "retrain", "--data-dir", str(data_dir), "--events", "600", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["feedback_events"] == 600 and out["examples"]["feedback"] == 240  # 300 messages, newest 60 held out
    for step in ("export_and_triplets_seconds", "retrain_seconds", "gate_seconds"):
        assert 0 < out[step] <= out["total_seconds"]
    for side in ("before", "after"):
        assert 0 < out[side]["catalog_val_mrr"] < 1 and 0 < out[side]["tweeteval_val_macro_f1"] < 1
    assert out["verdict"] in ("promoted", "rejected") and len(out["reasons"]) == 4  # MRR, macro-recall@5, F1, feedback
