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
