"""The ablation study's statistics, report and plots, on small hand-made studies with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from evaluation.study_analysis.comparison import (
    SINGLE_SEED_LINE,
    check_expectations,
    compare,
    holm,
    lower_is_better,
    seeds_to_distinguish,
    to_markdown,
    wide_table,
)
from evaluation.study_analysis.plots import plot_cost_vs_quality, plot_loss_curves, plot_metric_bars
from evaluation.study_analysis.report import REPORT_NAME, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAN = math.nan

# Three ablations x three seeds. Means are round on purpose: against the baseline, text_finetuned has
# FSD -4% and BLEU-4 +6% (quality +5%: better) and trains 25% longer; no_ema has FSD +10% and BLEU-4
# -10% (quality -10%: worse), no train time at all, and one seed without a pose error.
STUDY = {
    "baseline": {
        "eval/fsd": [9.0, 10.0, 11.0],
        "eval/backtranslation_bleu4": [0.19, 0.20, 0.21],
        "eval/pose_dtw_mje": [1.0, 1.2, 1.4],
        "summary/train_time_s": [100.0, 100.0, 100.0],
    },
    "text_finetuned": {
        "eval/fsd": [9.5, 9.6, 9.7],
        "eval/backtranslation_bleu4": [0.21, 0.212, 0.214],
        "eval/pose_dtw_mje": [1.1, 1.2, 1.3],
        "summary/train_time_s": [125.0, 125.0, 125.0],
    },
    "no_ema": {
        "eval/fsd": [10.0, 11.0, 12.0],
        "eval/backtranslation_bleu4": [0.17, 0.18, 0.19],
        "eval/pose_dtw_mje": [1.5, NAN, 1.7],
        "summary/train_time_s": [NAN, NAN, NAN],
    },
}


def make_runs(study: dict[str, dict[str, list[float]]] = STUDY) -> pd.DataFrame:
    rows = []
    for ablation, metrics in study.items():
        seeds = len(next(iter(metrics.values())))
        for seed in range(seeds):
            row = {"run_id": f"{ablation}-{seed}", "ablation": ablation, "seed": seed, "status": "FINISHED"}
            row.update({metric: values[seed] for metric, values in metrics.items()})
            rows.append(row)
    return pd.DataFrame(rows)


def make_histories() -> pd.DataFrame:
    rows = []
    for ablation, offset in (("baseline", 0.0), ("text_finetuned", -0.05), ("no_ema", 0.05)):
        for seed in range(3):
            for step in range(0, 100, 10):
                loss = 1.0 / (1 + step / 10) + offset + 0.02 * seed
                rows.append({"run_id": f"{ablation}-{seed}", "ablation": ablation, "seed": seed,
                             "metric": "train/loss", "step": step, "value": loss})
    return pd.DataFrame(rows)


@pytest.fixture
def long() -> pd.DataFrame:
    return compare(make_runs(), metrics=["eval/fsd", "eval/backtranslation_bleu4", "eval/pose_dtw_mje",
                                         "eval/lpips", "summary/train_time_s"])


def cell(long: pd.DataFrame, ablation: str, metric: str) -> pd.Series:
    return long[(long["ablation"] == ablation) & (long["metric"] == metric)].iloc[0]


def test_baseline_comes_first_then_the_other_ablations(long):
    assert list(pd.unique(long["ablation"])) == ["baseline", "no_ema", "text_finetuned"]


def test_welch_p_value_matches_scipy(long):
    expected = scipy.stats.ttest_ind(STUDY["text_finetuned"]["eval/fsd"], STUDY["baseline"]["eval/fsd"],
                                     equal_var=False).pvalue
    assert cell(long, "text_finetuned", "eval/fsd")["p_value"] == pytest.approx(expected, rel=1e-12)


def test_confidence_interval_matches_a_hand_computation(long):
    # Baseline FSD 9, 10, 11: mean 10, sample std 1, t(0.975, 2 dof) = 4.303 from the tables.
    row = cell(long, "baseline", "eval/fsd")
    assert (row["mean"], row["std"], row["n"]) == (pytest.approx(10.0), pytest.approx(1.0), 3)
    assert row["ci95"] == pytest.approx(4.303 * 1.0 / math.sqrt(3), abs=1e-3)


def test_holm_matches_a_hand_worked_example():
    # NaN is not a test, so m = 4. Sorted: 0.01 x 4 = 0.04; 0.03 x 3 = 0.09; 0.04 x 2 = 0.08, raised to
    # 0.09 so the order of the p-values is kept; 0.5 x 1 = 0.5.
    np.testing.assert_allclose(holm([0.04, 0.01, NAN, 0.03, 0.5]), [0.09, 0.04, NAN, 0.09, 0.5], equal_nan=True)
    # 0.6 x 2 = 1.2 is clipped to 1, and 0.7 raised to it.
    np.testing.assert_allclose(holm([0.6, 0.7]), [1.0, 1.0])


def test_holm_is_applied_across_the_metrics_of_each_ablation(long):
    rows = long[long["ablation"] == "text_finetuned"]
    np.testing.assert_allclose(rows["p_holm"], holm(rows["p_value"].to_numpy()), equal_nan=True)


def test_change_sign_and_better_follow_each_metrics_direction(long):
    fsd = cell(long, "text_finetuned", "eval/fsd")  # lower is better, went down
    assert fsd["change_pct"] == pytest.approx(-4.0) and fsd["better"] is True
    bleu = cell(long, "text_finetuned", "eval/backtranslation_bleu4")  # higher is better, went up
    assert bleu["change_pct"] == pytest.approx(6.0) and bleu["better"] is True
    assert cell(long, "no_ema", "eval/fsd")["better"] is False
    assert cell(long, "no_ema", "eval/backtranslation_bleu4")["change_pct"] == pytest.approx(-10.0)
    assert cell(long, "no_ema", "eval/backtranslation_bleu4")["better"] is False
    assert cell(long, "text_finetuned", "summary/train_time_s")["better"] is False  # 25% slower


def test_lower_is_better_knows_each_direction_and_refuses_unknown_metrics():
    assert lower_is_better("eval/fvd") and not lower_is_better("eval/backtranslation_bleu4")
    with pytest.raises(ValueError, match="BETTER_WHEN"):
        lower_is_better("eval/made_up")


def test_baseline_rows_carry_no_comparison(long):
    row = cell(long, "baseline", "eval/fsd")
    assert math.isnan(row["change_pct"]) and math.isnan(row["p_value"]) and math.isnan(row["better"])
    assert "baseline" in row["note"]


def test_zero_variance_on_both_sides_gives_no_p_value_and_says_why(long):
    row = cell(long, "text_finetuned", "summary/train_time_s")
    assert row["change_pct"] == pytest.approx(25.0)
    assert math.isnan(row["p_value"]) and "zero variance" in row["note"]


def test_missing_metric_stays_nan_never_zero(long):
    lpips = cell(long, "text_finetuned", "eval/lpips")  # absent from the runs' columns
    assert lpips["n"] == 0 and math.isnan(lpips["mean"]) and "missing" in lpips["note"]
    train_time = cell(long, "no_ema", "summary/train_time_s")  # a column of NaN
    assert train_time["n"] == 0 and math.isnan(train_time["mean"]) and math.isnan(train_time["change_pct"])
    pose = cell(long, "no_ema", "eval/pose_dtw_mje")  # one seed of three missing: mean of the other two
    assert pose["n"] == 2 and pose["mean"] == pytest.approx(1.6) and "only 2 of 3" in pose["note"]
    assert wide_table(long).loc["no_ema", "summary/train_time_s"] == "missing"


def test_unfinished_runs_are_left_out():
    runs = make_runs()
    runs.loc[runs["run_id"] == "baseline-0", ["status", "eval/fsd"]] = ["FAILED", 1000.0]
    assert cell(compare(runs, metrics=["eval/fsd"]), "baseline", "eval/fsd")["n"] == 2


def test_a_missing_baseline_is_an_error_naming_the_ablations_found():
    runs = make_runs()
    with pytest.raises(ValueError, match="no_ema"):
        compare(runs[runs["ablation"] != "baseline"])


def test_single_seed_has_no_intervals_or_p_values_and_the_table_says_so():
    single = {name: {metric: values[:1] for metric, values in metrics.items()} for name, metrics in STUDY.items()}
    long = compare(make_runs(single), metrics=["eval/fsd", "eval/backtranslation_bleu4"])
    assert long["ci95"].isna().all() and long["p_value"].isna().all() and long["p_holm"].isna().all()
    assert cell(long, "text_finetuned", "eval/fsd")["change_pct"] == pytest.approx(9.5 / 9.0 * 100 - 100)
    markdown = to_markdown(long)
    assert markdown.startswith(SINGLE_SEED_LINE)
    assert SINGLE_SEED_LINE not in to_markdown(compare(make_runs(), metrics=["eval/fsd"]))


def test_markdown_table_has_a_row_per_ablation_and_metric(long):
    lines = [line for line in to_markdown(long).splitlines() if line.startswith("|")]
    assert len(lines) == 2 + len(long)
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    assert "-4.0%" in to_markdown(long)


def test_expectations_held_not_settled_and_unknown(long):
    by_name = {e.name: e for e in check_expectations(long)}
    quality = by_name["text_finetuned: quality"]
    assert quality.verdict == "held" and quality.measured == pytest.approx((4.0 + 6.0 + 0.0) / 3)
    assert by_name["text_finetuned: summary/train_time_s"].verdict == "held"  # +25%, expected 20..30
    # 17.8% worse against an expected 2..5%, but over 3 disagreeing seeds the interval reaches -2%.
    worse = by_name["no_ema: quality"]
    assert worse.measured == pytest.approx(-17.78, abs=0.01) and worse.measured + worse.ci95 > -5.0
    assert worse.verdict == "not settled" and "more seeds would settle it" in worse.sentence
    speed = by_name["no_ema: summary/train_time_s"]
    assert speed.verdict == "unknown" and speed.measured is None and "unknown" in speed.sentence


def test_seeds_to_distinguish_matches_the_textbook_two_sample_t_test_power():
    # Cohen's table for a two-sided test at alpha 0.05 and power 0.8: d = 1 needs 17 a group, d = 0.5 needs 64.
    assert seeds_to_distinguish(1.0, 1.0) == 17 and seeds_to_distinguish(-0.5, 1.0) == 64
    assert seeds_to_distinguish(3.0, 2.0) == seeds_to_distinguish(1.5, 1.0)  # only the ratio counts
    assert math.isinf(seeds_to_distinguish(0.0, 1.0)) and math.isinf(seeds_to_distinguish(1e-3, 1.0))
    assert math.isnan(seeds_to_distinguish(1.0, math.nan))


def test_an_unsettled_expectation_says_how_many_seeds_would_settle_it(long):
    by_name = {e.name: e for e in check_expectations(long)}
    worse = by_name["no_ema: quality"]
    assert worse.verdict == "not settled" and worse.seeds_needed > 3
    assert f"{worse.seeds_needed:.0f} seeds a side would tell it from the range's nearest end" in worse.sentence
    rows = long[long["p_value"].notna()]
    assert rows["seeds_needed"].notna().all() and (rows["seeds_needed"] >= 2).all()
    assert long[long["ablation"] == "baseline"]["seeds_needed"].isna().all()


def test_an_expectation_whose_whole_interval_misses_the_range_did_not_hold():
    # Train time +40% against an expected 20..30%, from seeds that agree: the interval stays above 30%.
    study = {"baseline": {"summary/train_time_s": [99.0, 100.0, 101.0]},
             "text_finetuned": {"summary/train_time_s": [139.0, 140.0, 141.0]}}
    expectations = {e.name: e for e in check_expectations(compare(make_runs(study)))}
    expectation = expectations["text_finetuned: summary/train_time_s"]
    assert expectation.measured == pytest.approx(40.0) and expectation.measured - expectation.ci95 > 30.0
    assert expectation.verdict == "did not hold" and "its whole interval is outside the range" in expectation.sentence
    assert expectation.seeds_needed == 2  # seeds this close together tell +40% from +30% at once


def test_quality_leaves_out_a_metric_whose_baseline_is_not_told_apart_from_zero():
    # The steer gap of a model whose text steers nothing: about 0, so any change is a huge % of it.
    study = {"baseline": {"eval/fsd": [9.0, 10.0, 11.0], "eval/steer_gap": [-0.02, 0.01, 0.03]},
             "text_finetuned": {"eval/fsd": [9.5, 9.6, 9.7], "eval/steer_gap": [0.0, 0.03, 0.02]}}
    quality = {e.name: e for e in check_expectations(compare(make_runs(study)))}["text_finetuned: quality"]
    assert quality.measured == pytest.approx(4.0)  # FSD alone; the steer gap's +133% is not averaged in
    assert "left out, their baseline mean is within its CI of 0: eval/steer_gap" in quality.sentence


def test_report_mentions_each_ablation_failed_runs_and_missing_metrics(long, tmp_path):
    failed = [{"run_id": "abc123", "ablation": "no_ema", "seed": 3, "status": "KILLED", "reason": "out of memory"},
              {"run_id": "def456", "run_name": "baseline-full-s4", "status": "FAILED"}]
    path = write_report(long, check_expectations(long), tmp_path, failed, study="study-7")
    assert path == tmp_path / REPORT_NAME
    text = path.read_text()
    for expected in ("study-7", "BASELINE: baseline", "NO_EMA VS BASELINE", "TEXT_FINETUNED VS BASELINE",
                     "ablation no_ema seed 3 (run abc123): KILLED: out of memory",
                     "baseline-full-s4 (run def456): FAILED",
                     "changed by -4.0%", "[not settled] no_ema: expected quality 2 to 5% worse", "In all: 2 held, 0 did not hold, 1 not settled, 1 unknown.", "eval/lpips: not logged by any finished run"):
        assert expected in text
    assert "only 2 of 3" in text
    assert "not significant at 0.05; " in text and " seeds a side would tell it (power 0.8)" in text


def test_plots_are_written_as_png_even_with_missing_metrics(long, tmp_path):
    paths = [
        plot_loss_curves(make_histories(), tmp_path / "loss.png"),
        plot_loss_curves(make_histories(), tmp_path / "val_loss.png", metric="val/loss"),  # never logged
        # A gap that crosses 0 (drawn with a zero line, no log scale).
        plot_loss_curves(make_histories().assign(metric="val/text_loss_gap", value=lambda h: h["value"] - 0.3),
                         tmp_path / "gap.png", metric="val/text_loss_gap"),
        plot_metric_bars(long, tmp_path / "bars.png", ["eval/fsd", "eval/backtranslation_bleu4", "eval/lpips",
                                                       "summary/train_time_s"]),
        plot_cost_vs_quality(long, tmp_path / "cost.png"),
        plot_cost_vs_quality(long, tmp_path / "no_cost.png", cost="summary/peak_gpu_mem_gib"),
    ]
    for path in paths:
        assert path.read_bytes()[:8] == PNG_MAGIC


def test_report_says_per_ablation_whether_the_text_steers_with_each_runs_bootstrap_interval(tmp_path):
    # baseline's gaps 0.30 ± ~0.12 lie above 0; no_ema's straddle 0. Seed 1 of no_ema lacks the loss gap.
    study = {
        "baseline": {"eval/steer_gap": [0.25, 0.30, 0.35], "eval/steer_gap_ci95": [0.05, 0.06, 0.04],
                     "eval/steer_bt_wer_true": [0.5, 0.45, 0.4], "eval/steer_bt_wer_empty": [0.9, 0.9, 0.9],
                     "eval/steer_bt_wer_shuffled": [0.75, 0.75, 0.75], "val/text_loss_gap": [0.004, 0.005, 0.006]},
        "no_ema": {"eval/steer_gap": [-0.02, 0.01, 0.03], "eval/steer_gap_ci95": [0.04, 0.04, 0.05],
                   "eval/steer_bt_wer_true": [1.0, 0.99, 0.97], "eval/steer_bt_wer_empty": [1.0, 1.0, 1.0],
                   "eval/steer_bt_wer_shuffled": [0.98, 1.0, 1.0], "val/text_loss_gap": [0.0001, NAN, 0.0]},
    }
    runs = make_runs(study)
    long = compare(runs)
    text = write_report(long, check_expectations(long), tmp_path, [], study="s", runs=runs).read_text()
    section = text[text.index("DOES THE TEXT STEER?"):]
    assert "- baseline: steer gap 0.3000 ± 0.12 over 3 runs" in section
    assert "the text steers (the whole interval is above 0)" in section
    assert "no evidence that the text steers (the interval contains 0)" in section
    assert "seed 0: gap 0.2500 ± 0.050 (bootstrap over the videos); WER true 0.5000, empty 0.9000, shuffled 0.7500" in section
    assert "val/text_loss_gap missing." in section and "val/text_loss_gap 0.004." in section
    # Beside each ablation's steer gap, the loss gap over its seeds: the same question asked of the network.
    assert "above 0); val/text_loss_gap 0.005000 ± 0.0025 over 3 runs." in section
    assert "contains 0); val/text_loss_gap 5.000e-05 ± 0.00064 over 2 runs." in section


def test_report_warns_when_the_runs_were_trained_by_different_versions_of_the_code(tmp_path):
    runs = make_runs()
    runs["git_commit"] = ["a" * 40] * 6 + ["b" * 40] * 3
    long = compare(runs)
    text = write_report(long, check_expectations(long), tmp_path, [], study="s", runs=runs).read_text()
    assert "WARNING: the runs were trained by different versions of the code" in text
    assert "bbbbbbbbbbbb: no_ema seed 0, no_ema seed 1, no_ema seed 2" in text
    runs["git_commit"] = "c" * 40
    text = write_report(long, check_expectations(long), tmp_path, [], study="s", runs=runs).read_text()
    assert "Code: every run at commit cccccccccccc." in text and "WARNING" not in text


def test_report_gives_the_fvd_floor_the_runs_measured_and_keeps_it_out_of_the_quality_metrics(tmp_path):
    study = {"baseline": {"eval/fvd": [300.0, 320.0], "eval/fvd_real_floor": [120.0, 120.0],
                          "eval/stlpips": [0.30, 0.32]},
             "no_ema": {"eval/fvd": [350.0, 360.0], "eval/fvd_real_floor": [120.0, 120.0],
                        "eval/stlpips": [0.35, 0.36]}}
    runs = make_runs(study)
    long = compare(runs)
    assert "eval/stlpips" in set(long["metric"]) and "eval/fvd_real_floor" not in set(long["metric"])
    assert lower_is_better("eval/stlpips")
    text = write_report(long, check_expectations(long), tmp_path, [], study="s", runs=runs).read_text()
    assert "FVD floor: 120.0, the FVD between two halves of the real test clips." in text
    runs = make_runs({"baseline": {"eval/fvd": [300.0, 320.0]}, "no_ema": {"eval/fvd": [350.0, 360.0]}})
    text = write_report(compare(runs), [], tmp_path, [], study="s", runs=runs).read_text()
    assert "FVD floor" not in text


def test_pose_steer_gaps_stand_beside_their_real_clip_ceilings_in_the_table_and_the_report(tmp_path):
    study = {
        "baseline": {"eval/pose_plan_steer_gap": [0.28, 0.30, 0.26], "eval/pose_plan_steer_gap_real": [0.38, 0.38, 0.38],
                     "eval/pose_video_steer_gap": [0.25, 0.24, 0.26], "eval/pose_video_steer_gap_real": [0.32, 0.33, 0.31],
                     "eval/pose_plan_dtw_mje": [0.10, 0.11, 0.09]},
        "pixel_only": {"eval/pose_video_steer_gap": [0.01, -0.01, 0.0],
                       "eval/pose_video_steer_gap_real": [0.32, 0.32, 0.32]},
    }
    long = compare(make_runs(study))
    video = cell(long, "baseline", "eval/pose_video_steer_gap")
    assert video["real"] == pytest.approx(0.32) and math.isnan(cell(long, "baseline", "eval/pose_plan_dtw_mje")["real"])
    assert cell(long, "pixel_only", "eval/pose_plan_steer_gap")["n"] == 0  # no plan: missing, never zero
    assert "| real clips |" in to_markdown(long)
    text = write_report(long, check_expectations(long), tmp_path, [], study="s").read_text()
    section = text[text.index("DOES THE TEXT STEER THE POSE?"):]
    assert "- baseline: eval/pose_plan_steer_gap 0.2800 ± 0.050 over 3 runs; real clips 0.3800." in section
    assert "- pixel_only: eval/pose_plan_steer_gap missing" in section


def test_back_translation_stands_beside_the_judges_reading_of_the_real_clips_with_bleu_as_a_share(tmp_path):
    study = {
        "baseline": {"eval/backtranslation_wer": [0.30, 0.32, 0.34], "eval/backtranslation_wer_real": [0.04] * 3,
                     "eval/backtranslation_bleu4": [44.0, 46.0, 48.0], "eval/backtranslation_bleu4_real": [92.0] * 3},
        "no_ema": {"eval/backtranslation_wer": [0.50, 0.52, 0.54], "eval/backtranslation_wer_real": [0.04] * 3,
                   "eval/backtranslation_bleu4": [20.0, 23.0, 26.0]},
    }
    long = compare(make_runs(study))
    assert cell(long, "baseline", "eval/backtranslation_bleu4")["real"] == pytest.approx(92.0)
    assert "eval/backtranslation_bleu4_real" not in set(long["metric"])  # a reference, not a quality
    text = write_report(long, check_expectations(long), tmp_path, [], study="s").read_text()
    section = text[text.index("WHAT THE JUDGE READS, BESIDE THE REAL CLIPS"):]
    baseline_line = next(line for line in section.splitlines() if line.startswith("- baseline:"))
    assert "(real clips 0.04" in baseline_line and "(real clips 92" in baseline_line
    assert "50% of the real clips'" in baseline_line  # 46 of 92
    assert "BLEU-4 23" in section and "(real clips not read)" in section


def test_val_loss_wobble_is_the_late_step_to_step_change_relative_to_the_late_level():
    from evaluation.study_analysis.stability import val_loss_wobble

    # Second half of 6 validations, with the last of the first half to start from: 0.5 -> 0.4 -> 0.6 -> 0.5.
    values = np.array([0.9, 0.7, 0.5, 0.4, 0.6, 0.5])
    assert val_loss_wobble(values) == pytest.approx(((0.1 + 0.2 + 0.1) / 3) / 0.5)
    assert val_loss_wobble(np.array([0.4, 0.3, 0.3, 0.3])) == 0.0  # settled
    assert math.isnan(val_loss_wobble(np.array([0.5, 0.4, 0.3])))  # too few validations to judge


def test_stability_joins_the_comparison_only_where_runs_validated_often_enough():
    from evaluation.study_analysis.stability import VAL_LOSS_WOBBLE, with_stability

    runs = make_runs({"baseline": {"eval/fvd": [10.0, 11.0]}, "no_ema": {"eval/fvd": [10.0, 12.0]}})
    steady, shaky = [0.5, 0.4, 0.3, 0.31, 0.3, 0.31], [0.5, 0.4, 0.3, 0.4, 0.3, 0.4]
    curves = {run_id: (steady if ablation == "baseline" else shaky) for run_id, ablation in zip(runs["run_id"], runs["ablation"])}
    histories = pd.DataFrame([{"run_id": run_id, "metric": "val/loss", "step": step, "value": value}
                              for run_id, curve in curves.items() for step, value in enumerate(curve)])
    long = compare(with_stability(runs, histories))
    row = long[(long["ablation"] == "no_ema") & (long["metric"] == VAL_LOSS_WOBBLE)].iloc[0]
    assert row["better"] == False and row["mean"] > 0  # noqa: E712 (a numpy bool)
    assert VAL_LOSS_WOBBLE not in with_stability(runs, histories[histories["step"] < 3]).columns
