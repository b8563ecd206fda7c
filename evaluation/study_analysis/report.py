"""The ablation study's results in plain words: ABLATION_RESULTS_REPORT.txt, for readers who skip tables."""

from __future__ import annotations

import math
import typing
from pathlib import Path
from typing import Sequence

import pandas as pd

from evaluation.study_analysis.comparison import (
    ALPHA,
    BETTER_WHEN,
    POSE_METRICS,
    POWER,
    SINGLE_SEED_LINE,
    Expectation,
    Verdict,
    baseline_of,
    format_mean_ci,
    format_number,
    format_p,
    is_single_seed,
)

REPORT_NAME = "ABLATION_RESULTS_REPORT.txt"


def write_report(long: pd.DataFrame, expectations: Sequence[Expectation], path: str | Path,
                 failed_runs: list[dict], study: str, runs: pd.DataFrame | None = None, ui_address: str = "") -> Path:
    """Write the report and return its path.

    `long` is `evaluation.study_analysis.comparison.compare`'s output. `path` is the file to write, or a folder to write
    REPORT_NAME into. `failed_runs` are the runs left out, as dicts with `run_id`, `status`, and
    `run_name` or `ablation` and `seed`, optionally `reason`; other keys are listed as they are.
    `runs` (one row per finished run, metric columns as tracked) adds each run's own steering figures;
    `ui_address`, where the MLflow UI compares the runs, is given under the header.
    """
    path = Path(path)
    if path.is_dir() or not path.suffix:
        path = path / REPORT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    baseline = baseline_of(long)
    others = [ablation for ablation in pd.unique(long["ablation"]) if ablation != baseline]
    sections = [
        _header(long, study, baseline) + _code_versions_line(runs) + _fvd_floor_line(runs)
        + (f"\nIn the MLflow UI: {ui_address}" if ui_address else ""),
        _baseline_section(long, baseline),
        *(_ablation_section(long, ablation, baseline) for ablation in others),
        _steering_section(long, runs),
        *([_backtranslation_section(long)] if long["metric"].isin(BACKTRANSLATION).any() else []),
        *([_pose_section(long)] if long["metric"].isin(POSE_METRICS).any() else []),
        _expectations_section(expectations),
        _left_out_section(long, failed_runs),
    ]
    path.write_text("\n\n".join(sections) + "\n", encoding="utf-8")
    return path


def _header(long: pd.DataFrame, study: str, baseline: str) -> str:
    runs_per_ablation = long.groupby("ablation", sort=False)["n_runs"].first()
    counts = ", ".join(f"{ablation} {count} run{'s' if count != 1 else ''}"
                       for ablation, count in runs_per_ablation.items())
    lines = [
        f"ABLATION STUDY RESULTS: {study}",
        "",
        f"Finished runs compared: {counts}. Every ablation is compared with the baseline {baseline!r}.",
        "How to read the numbers:",
        "- mean ± 95% CI: the mean over seeds and the half-width of its Student t confidence interval.",
        "- changed by: the difference of the means in % of the baseline mean, with the 95% CI of that",
        "  difference (Welch); an interval that contains 0 means the sign of the change is not settled.",
        "- p: Welch's t-test against the baseline's seeds. Holm: the same p corrected for testing every",
        f"  metric of that ablation that has a p-value; a change is called significant when Holm p < {ALPHA}.",
        "- better/worse follows each metric's direction (lower FVD, FSD, WER, ST-LPIPS, LPIPS, pose error,",
        "  time and memory are better; higher BLEU-4, steer gap, videos/s are better). Temporal consistency is read",
        "  as higher is better, though matching the real videos' value is the true target.",
        "- A metric that was not logged is shown as missing, never as zero.",
    ]
    if is_single_seed(long):
        lines.append(SINGLE_SEED_LINE)
    return "\n".join(lines)


def _code_versions_line(runs: pd.DataFrame | None) -> str:
    """Children of one study should run one version of the code; a resumed study may not have."""
    if runs is None or "git_commit" not in runs.columns:
        return ""
    commits = runs["git_commit"].fillna("unknown")
    if commits.nunique() <= 1:
        return f"\nCode: every run at commit {str(commits.iloc[0])[:12]}." if len(commits) else ""
    groups = "; ".join(f"{str(commit)[:12]}: {', '.join(f'{r.ablation} seed {r.seed}' for r in group.itertuples())}"
                       for commit, group in runs.assign(git_commit=commits).groupby("git_commit", sort=False))
    return ("\nWARNING: the runs were trained by different versions of the code, so a difference between "
            f"ablations may be a difference between versions ({groups}). Check the commits' changes before "
            "trusting a comparison across them.")


def _fvd_floor_line(runs: pd.DataFrame | None) -> str:
    """FVD between two halves of the real clips: how low eval/fvd can go at this number of videos."""
    if runs is None or "eval/fvd_real_floor" not in runs.columns or runs["eval/fvd_real_floor"].isna().all():
        return ""
    floors = runs["eval/fvd_real_floor"].dropna()
    spread = "" if floors.nunique() == 1 else f" (from {format_number(floors.min())} to {format_number(floors.max())})"
    return (f"\nFVD floor: {format_number(floors.mean())}{spread}, the FVD between two halves of the real test clips. "
            "FVD is biased upwards at small N: an eval/fvd near this is as close to the data as this many clips can tell.")


def _baseline_section(long: pd.DataFrame, baseline: str) -> str:
    lines = [f"BASELINE: {baseline}"]
    for row in long[long["ablation"] == baseline].itertuples(index=False):
        if row.n == 0:
            lines.append(f"- {row.metric}: missing (no finished run logged it).")
        else:
            lines.append(f"- {row.metric}: {format_mean_ci(row.mean, row.ci95)} (n={row.n}).")
    return "\n".join(lines)


def _ablation_section(long: pd.DataFrame, ablation: str, baseline: str) -> str:
    rows = long[long["ablation"] == ablation]
    reference = long[long["ablation"] == baseline].set_index("metric")
    lines = [f"{ablation.upper()} VS {baseline.upper()} ({rows['n_runs'].iloc[0]} finished runs)"]
    lines += [_metric_sentence(row, reference.loc[row.metric]) for row in rows.itertuples(index=False)]
    return "\n".join(lines)


def _metric_sentence(row, reference: pd.Series) -> str:
    """One metric of one ablation, e.g. `X changed by +4.1% (95% CI ...), worse, p=0.030 (Holm 0.090): ...`."""
    direction = BETTER_WHEN.get(row.metric)
    name = f"{row.metric} ({direction} is better)" if direction else row.metric
    if row.n == 0:
        return f"- {name}: missing (no finished run of this ablation logged it; shown as missing, not zero)."
    values = f"{format_mean_ci(row.mean, row.ci95)} vs {format_mean_ci(reference['mean'], reference['ci95'])}"
    if math.isnan(row.change_pct):
        return f"- {name}: {values}; no change computed ({row.note})."
    change = f"changed by {row.change_pct:+.1f}%"
    if not math.isnan(row.change_ci95):
        change += f" (95% CI {row.change_pct - row.change_ci95:+.1f}% to {row.change_pct + row.change_ci95:+.1f}%)"
    sentence = f"- {name}: {values}; {change}, {_better_word(row)}"
    if math.isnan(row.p_value):
        return f"{sentence}; {row.note}."  # the note says why there is no p-value
    sentence += f", p={format_p(row.p_value)} (Holm {format_p(row.p_holm)}): {_significance(row)}"
    return f"{sentence} ({row.note})." if row.note else f"{sentence}."


def _better_word(row) -> str:
    if row.change_pct == 0:
        return "unchanged"
    return {True: "better", False: "worse"}.get(row.better, "better or worse unknown")


def _significance(row) -> str:
    if row.p_holm < ALPHA:
        return f"significant at {ALPHA} after Holm correction"
    if row.p_value < ALPHA:
        return f"not significant at {ALPHA} after Holm correction (it was before)"
    return f"not significant at {ALPHA}{_seeds_needed(row.seeds_needed)}"


def _seeds_needed(seeds: float) -> str:
    if math.isnan(seeds):
        return ""
    if math.isinf(seeds):
        return "; no count of seeds would tell a difference this small at this spread"
    return f"; {seeds:.0f} seeds a side would tell it (power {POWER:g})"


STEER_LINES = [
    "DOES THE TEXT STEER?",
    "eval/steer_gap is the back-translation WER of videos generated from other prompts' texts minus that of",
    "videos generated from their own texts, from the same starting noise: about 0 when the model signs the",
    "same whatever it is asked, larger as the text steers. val/text_loss_gap is the denoising loss under",
    "wrong captions minus under the true ones (last epoch): the same question asked of the network directly.",
]


def _steering_section(long: pd.DataFrame, runs: pd.DataFrame | None) -> str:
    lines = list(STEER_LINES)
    for row in long[long["metric"] == "eval/steer_gap"].itertuples(index=False):
        if row.n == 0:
            lines.append(f"- {row.ablation}: steer gap missing (no finished run logged it).")
            continue
        lines.append(f"- {row.ablation}: steer gap {format_mean_ci(row.mean, row.ci95)} over {row.n} "
                     f"run{'s' if row.n != 1 else ''} (mean ± 95% CI over seeds): {_steer_verdict(row)}; "
                     f"{_text_loss_gap(long, row.ablation)}.")
        if runs is not None:
            lines += _steering_run_lines(runs[runs["ablation"] == row.ablation])
    return "\n".join(lines)


def _text_loss_gap(long: pd.DataFrame, ablation: str) -> str:
    rows = long[(long["ablation"] == ablation) & (long["metric"] == "val/text_loss_gap")]
    if rows.empty or rows["n"].iloc[0] == 0:
        return "val/text_loss_gap missing"
    row = rows.iloc[0]
    return f"val/text_loss_gap {format_mean_ci(row['mean'], row['ci95'])} over {row['n']} run{'s' if row['n'] != 1 else ''}"


BACKTRANSLATION = ["eval/backtranslation_wer", "eval/backtranslation_bleu4"]
BACKTRANSLATION_LINES = [
    "WHAT THE JUDGE READS, BESIDE THE REAL CLIPS",
    "The judge's WER and BLEU-4 on the generated videos stand beside its reading of the real test clips of the",
    "same captions (its ceiling here); BLEU-4 is also given as a share of the real clips' BLEU-4, the way",
    "sign-language production papers compare with their evaluator's ground truth.",
]


def _backtranslation_section(long: pd.DataFrame) -> str:
    lines = list(BACKTRANSLATION_LINES)
    for ablation in pd.unique(long["ablation"]):
        rows = long[(long["ablation"] == ablation) & long["metric"].isin(BACKTRANSLATION)].set_index("metric")
        lines.append(f"- {ablation}: " + "; ".join(_reading(rows, metric) for metric in BACKTRANSLATION) + ".")
    return "\n".join(lines)


def _reading(rows: pd.DataFrame, metric: str) -> str:
    """`WER 0.3 ± 0.05 (real clips 0.04)` or `BLEU-4 46 ± 4 (real clips 92; 50% of the real clips')`."""
    name = "WER" if metric.endswith("wer") else "BLEU-4"
    if metric not in rows.index or rows.loc[metric, "n"] == 0:
        return f"{name} missing"
    row = rows.loc[metric]
    text = f"{name} {format_mean_ci(row['mean'], row['ci95'])}"
    if math.isnan(row["real"]):
        return text + " (real clips not read)"
    share = f"; {100 * row['mean'] / row['real']:.0f}% of the real clips'" if name == "BLEU-4" and row["real"] > 0 else ""
    return text + f" (real clips {format_number(row['real'])}{share})"


POSE_LINES = [
    "DOES THE TEXT STEER THE POSE?",
    "The planned poses and the generated videos read back into poses, against their caption's true poses (DTW-MJE",
    "in body units) and against another caption's clip; the steer gap is how much nearer their own. Each figure",
    "stands beside the same figure for the real clips (the ceiling: the true poses themselves for the plan, the",
    "judge's reading of the real clips for the videos).",
]


def _pose_section(long: pd.DataFrame) -> str:
    lines = list(POSE_LINES)
    for row in long[long["metric"].isin(POSE_METRICS)].itertuples(index=False):
        if row.n == 0:
            lines.append(f"- {row.ablation}: {row.metric} missing (no finished run logged it).")
            continue
        ceiling = "" if math.isnan(row.real) else f"; real clips {format_number(row.real)}"
        lines.append(f"- {row.ablation}: {row.metric} {format_mean_ci(row.mean, row.ci95)} over {row.n} "
                     f"run{'s' if row.n != 1 else ''}{ceiling}.")
    return "\n".join(lines)


def _steer_verdict(row) -> str:
    if math.isnan(row.ci95):
        return "one run: see its own bootstrap interval below"
    if row.mean - row.ci95 > 0:
        return "the text steers (the whole interval is above 0)"
    if row.mean + row.ci95 < 0:
        return ("videos read better under other prompts' texts than under their own: check that the captions "
                "reach the model")
    return "no evidence that the text steers (the interval contains 0)"


def _steering_run_lines(runs: pd.DataFrame) -> list[str]:
    """Per run: the gap with its paired-bootstrap interval over the videos, the three WERs, the loss gap."""
    def value(run: pd.Series, metric: str) -> float:
        return float(run[metric]) if metric in run.index and pd.notna(run[metric]) else math.nan

    lines = []
    for _, run in runs.sort_values("seed").iterrows():
        wers = ", ".join(f"{condition} {format_number(value(run, f'eval/steer_bt_wer_{condition}'))}"
                         for condition in ("true", "empty", "shuffled"))
        text_gap = value(run, "val/text_loss_gap")
        lines.append(f"  seed {run['seed']}: gap {format_mean_ci(value(run, 'eval/steer_gap'), value(run, 'eval/steer_gap_ci95'))}"
                     f" (bootstrap over the videos); WER {wers}; val/text_loss_gap "
                     f"{'missing' if math.isnan(text_gap) else f'{text_gap:.2g}'}.")
    return lines


def _expectations_section(expectations: Sequence[Expectation]) -> str:
    lines = ["EXPECTATIONS (set before the study)"]
    for expectation in expectations:
        lines.append(f"- [{expectation.verdict}] {expectation.sentence}")
    tally = {label: sum(e.verdict == label for e in expectations) for label in typing.get_args(Verdict)}
    lines.append("In all: " + ", ".join(f"{count} {label}" for label, count in tally.items()) + ".")
    return "\n".join(lines)


def _failed_run_line(run: dict) -> str:
    """e.g. `- no_ema-full-s2 (run 3f2a9c): KILLED: out of memory`."""
    who = run.get("run_name") or " ".join(f"{key} {run[key]}" for key in ("ablation", "seed") if key in run)
    known = {"run_id", "run_name", "ablation", "seed", "status", "reason"}
    extra = "".join(f", {key}={value}" for key, value in run.items() if key not in known)
    reason = f": {run['reason']}" if run.get("reason") else ""
    return (f"- {who or 'a run'} (run {run.get('run_id', 'id unknown')}): "
            f"{run.get('status', 'status unknown')}{reason}{extra}")


def _left_out_section(long: pd.DataFrame, failed_runs: list[dict]) -> str:
    lines = ["LEFT OUT", "Runs that did not finish (not in any number above):"]
    if not failed_runs:
        lines.append("- none: every run finished.")
    lines += [_failed_run_line(run) for run in failed_runs]

    lines.append("Metrics missing (shown as missing above, never as zero):")
    never = long[long["n"] == 0].groupby("metric", sort=False)["ablation"].apply(list)
    partly = long[(long["n"] > 0) & (long["n"] < long["n_runs"])]
    if never.empty and partly.empty:
        lines.append("- none: every finished run logged every metric.")
    for metric, ablations in never.items():
        lines.append(f"- {metric}: not logged by any finished run of {', '.join(ablations)}.")
    for row in partly.itertuples(index=False):
        lines.append(f"- {row.metric}: logged by only {row.n} of {row.n_runs} finished runs of {row.ablation} "
                     f"(the mean is over those {row.n}).")
    return "\n".join(lines)
