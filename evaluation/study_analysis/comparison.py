"""The statistics of an ablation study: every ablation against the baseline, metric by metric, over seeds.

Input: one row per finished run (columns `run_id`, `ablation`, `seed`, `status` and one column per
metric, named as tracked, NaN where a run did not log it). `mlproject/analyze.py` fetches it from MLflow;
this module never imports MLflow.

The choices, so a reader can check them:
- mean ± 95% CI: Student t interval of the mean over seeds, n - 1 degrees of freedom (none with one seed).
- change %: (mean - baseline mean) / |baseline mean|, with the 95% CI of that difference of means from
  Welch's approximation, expressed in % of the baseline mean (the baseline mean's own uncertainty in the
  denominator is ignored: fine while the change is small next to the baseline).
- p-value: Welch's t-test against the baseline's seeds (unequal variances: an ablation can change how
  much seeds disagree), then Holm-Bonferroni across the metrics of one ablation, since every metric is
  one more chance of a false alarm. Holm controls the family-wise error like Bonferroni but rejects more.
- A missing value stays NaN everywhere and is named in `note`: a zero would read as a measurement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

import numpy as np
import pandas as pd
import scipy.stats

ALPHA = 0.05  # the significance level the report and the tables speak of
POWER = 0.8  # the chance of telling a difference apart that seeds_to_distinguish plans for
MOST_SEEDS = 1000  # beyond this, a difference is called out of reach rather than counted

# Which way is good, per tracked metric. Temporal consistency really is best when it matches the real
# videos' value (eval/temporal_consistency_real): a frozen video scores above real signing. Generators
# in practice flicker, i.e. score below real, so "higher is better" is the useful reading until one
# overshoots; compare with the real value before calling an overshoot an improvement.
BETTER_WHEN: dict[str, Literal["lower", "higher"]] = {
    "eval/fvd": "lower",
    "eval/stlpips": "lower",
    "eval/lpips": "lower",
    "eval/fsd": "lower",
    "eval/backtranslation_wer": "lower",
    "eval/backtranslation_bleu4": "higher",
    "eval/temporal_consistency": "higher",
    "eval/pose_dtw_mje": "lower",
    "eval/steer_gap": "higher",
    "eval/pose_plan_dtw_mje": "lower",
    "eval/pose_plan_steer_gap": "higher",
    "eval/pose_video_steer_gap": "higher",
    "val/text_loss_gap": "higher",
    "eval/inference_s_per_video": "lower",
    "eval/inference_peak_gpu_mem_gib": "lower",
    "summary/train_time_s": "lower",
    "summary/peak_gpu_mem_gib": "lower",
    "summary/avg_gpu_mem_gib": "lower",
    "summary/peak_cpu_rss_gib": "lower",
    "train/videos_per_s": "higher",
    "stability/val_loss_wobble": "lower",
    "eval/hand_shape_reading": "higher",
}

# What the generated videos are worth. The judge's own scores on real videos (`*_real`) and FVD between
# real clips (`eval/fvd_real_floor`) are references, not qualities of the generator, so they are not here.
QUALITY_METRICS: list[str] = [
    "eval/fsd",
    "eval/backtranslation_wer",
    "eval/backtranslation_bleu4",
    "eval/temporal_consistency",
    "eval/pose_dtw_mje",
    "eval/fvd",
    "eval/stlpips",
    "eval/lpips",
    "eval/steer_gap",
]

# Does the text steer the pose (evaluation.metrics.pose_steering)? Logged on corpora with keypoints, each beside its
# real-clip ceiling (`*_real`, the table's `real` column); kept out of the quality aggregate of the study's
# expectations, which predate them.
POSE_METRICS: list[str] = ["eval/pose_plan_dtw_mje", "eval/pose_plan_steer_gap", "eval/pose_video_steer_gap"]

# Does the text steer the network (the validation loss under other clips' captions minus under their own)?
# Logged by every training run, the judge or not; beside the steer gap, out of the quality aggregate.
STEERING_METRICS: list[str] = ["val/text_loss_gap"]

# How steady the evaluated weights were late in training (`evaluation.study_analysis.stability`): the EMA
# question's third part, beside the seed-to-seed `std` of every metric.
STABILITY_METRICS: list[str] = ["stability/val_loss_wobble"]

# Are the hands legible (evaluation.metrics.hand_shapes)? Logged on the synthetic corpus, beside the real clips' score.
HAND_METRICS: list[str] = ["eval/hand_shape_reading"]

# What they cost. A CUDA run logs GPU memory, a CPU run `summary/peak_cpu_rss_gib` instead.
COST_METRICS: list[str] = [
    "summary/train_time_s",
    "summary/peak_gpu_mem_gib",
    "summary/avg_gpu_mem_gib",
    "summary/peak_cpu_rss_gib",
    "train/videos_per_s",
    "eval/inference_s_per_video",
    "eval/inference_peak_gpu_mem_gib",
]

LONG_COLUMNS = [
    "ablation", "metric", "mean", "std", "n", "n_runs", "ci95", "change_pct", "change_ci95",
    "p_value", "p_holm", "better", "seeds_needed", "note", "real",
]

def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of `metric` is better (for ranking runs by it)."""
    if metric not in BETTER_WHEN:
        raise ValueError(f"{metric!r}: which way is better is unknown; known: {', '.join(BETTER_WHEN)}. "
                         "Add it to evaluation.study_analysis.comparison.BETTER_WHEN.")
    return BETTER_WHEN[metric] == "lower"


SINGLE_SEED_LINE = "Single seed per ablation: no confidence intervals or p-values (run more seeds to get them)."


def default_metrics(columns: Iterable[str]) -> list[str]:
    """Every quality metric (a missing one is news: it is shown as missing) and the cost metrics logged.

    Cost metrics are taken only when present because a study runs on one kind of device: a CPU study
    has no GPU memory to miss.
    """
    present = set(columns)
    pose = [metric for metric in STEERING_METRICS + POSE_METRICS + HAND_METRICS + STABILITY_METRICS if metric in present]
    return QUALITY_METRICS + pose + [metric for metric in COST_METRICS if metric in present]


def compare(runs: pd.DataFrame, baseline: str = "baseline", metrics: list[str] | None = None) -> pd.DataFrame:
    """Compare every ablation with `baseline`: one row per (ablation, metric), the baseline's rows first.

    Columns (LONG_COLUMNS): `mean`, `std` (ddof=1), `n` (runs that logged the metric), `n_runs` (finished
    runs of the ablation), `ci95` (half-width of the mean's 95% CI), `change_pct` (signed, % of the
    baseline mean), `change_ci95` (half-width of the change's 95% CI, in percentage points), `p_value`
    (Welch vs the baseline), `p_holm` (Holm-corrected over the metrics of that ablation), `better` (True,
    False, or NaN when unknown), `seeds_needed` (seeds per ablation at which the measured difference would be
    told apart from none, `seeds_to_distinguish`; NaN where it cannot be estimated, inf beyond MOST_SEEDS)
    and `note` (why something is missing). The baseline's own rows carry no
    change, p-value or `better`. Only rows with `status == "FINISHED"` are used when `status` is given.
    """
    if "status" in runs.columns:
        runs = runs[runs["status"] == "FINISHED"]
    found = list(pd.unique(runs["ablation"]))
    if baseline not in found:
        raise ValueError(
            f"no finished run of the baseline {baseline!r}; finished ablations: "
            f"{', '.join(map(str, found)) or 'none'}. "
            "Pass the name of the ablation to compare against as `baseline`."
        )
    ablations = [baseline] + sorted(a for a in found if a != baseline)
    metrics = default_metrics(runs.columns) if metrics is None else list(metrics)

    baseline_runs = runs[runs["ablation"] == baseline]
    rows = []
    for ablation in ablations:
        group = runs[runs["ablation"] == ablation]
        for metric in metrics:
            reference = None if ablation == baseline else _values(baseline_runs, metric)
            row = _compare_metric(ablation, metric, _values(group, metric), reference, len(group))
            rows.append({**row, "real": real_ceiling(group, metric)})
    long = pd.DataFrame(rows, columns=LONG_COLUMNS)
    long["p_holm"] = long.groupby("ablation", sort=False)["p_value"].transform(holm)
    return long


def real_ceiling(runs: pd.DataFrame, metric: str) -> float:
    """The mean of the metric's real-clip counterpart (`eval/pose_dtw_mje` -> `eval/pose_dtw_mje_real`), NaN if none."""
    values = _values(runs, f"{metric}_real")
    return float(values.mean()) if len(values) else math.nan


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the input's order; NaNs are not tests and stay NaN.

    Sorted ascending, the k-th smallest of m p-values (k from 0) is multiplied by m - k; a running maximum
    keeps the adjusted values in the same order as the raw ones, and none exceeds 1.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    scaled = p[order] * (len(order) - np.arange(len(order)))
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def baseline_of(long: pd.DataFrame) -> str:
    """The ablation the others were compared with: `compare` puts its rows first."""
    return str(long["ablation"].iloc[0])


def _values(runs: pd.DataFrame, metric: str) -> np.ndarray:
    if metric not in runs.columns:
        return np.empty(0)
    return runs[metric].dropna().to_numpy(dtype=float)


def _ci_half_width(std: float, n: int) -> float:
    if n < 2:
        return math.nan
    return float(scipy.stats.t.ppf(1 - ALPHA / 2, n - 1) * std / math.sqrt(n))


def _compare_metric(ablation: str, metric: str, values: np.ndarray, reference: np.ndarray | None,
                    n_runs: int) -> dict:
    """One row of the long table; `reference` is the baseline's values, None on the baseline's own row."""
    n = len(values)
    std = float(values.std(ddof=1)) if n >= 2 else math.nan
    row = {
        "ablation": ablation, "metric": metric, "mean": float(values.mean()) if n else math.nan,
        "std": std, "n": n, "n_runs": n_runs, "ci95": _ci_half_width(std, n),
        "change_pct": math.nan, "change_ci95": math.nan, "p_value": math.nan, "p_holm": math.nan,
        "better": math.nan, "seeds_needed": math.nan,
    }
    notes = []
    if reference is None:
        notes.append("baseline")
    if n == 0:
        notes.append("missing: no finished run logged it")
    elif n < n_runs:
        notes.append(f"only {n} of {n_runs} runs logged it")
    if reference is not None and n:
        notes += _against_baseline(row, values, reference)
    row["note"] = "; ".join(notes)
    return row


def _against_baseline(row: dict, values: np.ndarray, reference: np.ndarray) -> list[str]:
    """Fill the change, its CI, the p-value and `better` into `row`; return notes on what could not be."""
    if len(reference) == 0:
        return ["no change or p-value: the baseline did not log it"]
    notes = []
    reference_mean = float(reference.mean())
    if reference_mean == 0:
        notes.append("no change %: the baseline mean is 0")
    else:
        row["change_pct"] = (row["mean"] - reference_mean) / abs(reference_mean) * 100
        direction = BETTER_WHEN.get(row["metric"])
        if direction is None:
            notes.append("better or worse unknown: add the metric to BETTER_WHEN")
        else:
            row["better"] = _is_better(direction, row["change_pct"])

    n, n_reference = len(values), len(reference)
    if n < 2 or n_reference < 2:
        notes.append(f"no p-value: needs 2 or more seeds on each side (this {n}, baseline {n_reference})")
    elif values.std() == 0 and reference.std() == 0:
        notes.append("no p-value: every seed gave the same value on both sides (zero variance)")
    else:
        row["p_value"] = float(scipy.stats.ttest_ind(values, reference, equal_var=False).pvalue)
        spread = math.sqrt((values.var(ddof=1) + reference.var(ddof=1)) / 2)
        row["seeds_needed"] = seeds_to_distinguish(row["mean"] - reference_mean, spread)
        if reference_mean != 0:
            row["change_ci95"] = _welch_half_width(values, reference) / abs(reference_mean) * 100
    return notes


def seeds_to_distinguish(difference: float, spread: float) -> float:
    """Seeds per side at which a two-sided two-sample t-test at ALPHA tells `difference` apart from none with
    probability POWER, when one seed's value varies by `spread` (its standard deviation) on each side.

    The t-test's power at n seeds a side: the noncentral t with 2n - 2 degrees of freedom and noncentrality
    difference / (spread * sqrt(2 / n)) beyond the test's critical value. inf beyond MOST_SEEDS (or for no
    difference at all), NaN without a spread to judge by.
    """
    if not math.isfinite(spread) or not math.isfinite(difference):
        return math.nan
    if spread == 0:
        return 2.0 if difference != 0 else math.inf
    effect = abs(difference) / spread
    for n in range(2, MOST_SEEDS + 1):
        dof = 2 * n - 2
        critical = scipy.stats.t.ppf(1 - ALPHA / 2, dof)
        shift = effect / math.sqrt(2 / n)
        if scipy.stats.nct.sf(critical, dof, shift) + scipy.stats.nct.cdf(-critical, dof, shift) >= POWER:
            return float(n)
    return math.inf


def _welch_half_width(a: np.ndarray, b: np.ndarray) -> float:
    """Half-width of the 95% CI of mean(a) - mean(b), Welch-Satterthwaite degrees of freedom."""
    var_a, var_b = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    dof = (var_a + var_b) ** 2 / (var_a**2 / (len(a) - 1) + var_b**2 / (len(b) - 1))
    return float(scipy.stats.t.ppf(1 - ALPHA / 2, dof) * math.sqrt(var_a + var_b))


def _is_better(direction: Literal["lower", "higher"], change_pct: float) -> bool:
    """Whether the change goes the good way; no change is not better."""
    return bool(change_pct > 0) if direction == "higher" else bool(change_pct < 0)


# Formatting, shared by the tables here and the plain-words report.

def format_number(x: float) -> str:
    """About 4 significant digits, without exponents for everyday magnitudes."""
    if math.isnan(x):
        return "missing"
    if x == 0:
        return "0"
    if not 1e-3 <= abs(x) < 1e6:
        return f"{x:.3e}"
    decimals = max(0, 3 - math.floor(math.log10(abs(x))))
    return f"{x:.{decimals}f}"


def format_mean_ci(mean: float, ci95: float) -> str:
    """`mean ± half-width`, the half-width to 2 significant digits; the mean alone when there is no CI."""
    if math.isnan(mean) or math.isnan(ci95):
        return format_number(mean)
    if ci95 == 0:
        return f"{format_number(mean)} ± 0"
    decimals = max(0, 1 - math.floor(math.log10(ci95)))
    return f"{format_number(mean)} ± {ci95:.{decimals}f}"


def format_change(change_pct: float, change_ci95: float = math.nan) -> str:
    """`+4.1%`, with its 95% CI as `[+1.2%, +7.0%]` when there is one."""
    if math.isnan(change_pct):
        return ""
    text = f"{change_pct:+.1f}%"
    if not math.isnan(change_ci95):
        text += f" [{change_pct - change_ci95:+.1f}%, {change_pct + change_ci95:+.1f}%]"
    return text


def format_p(p: float) -> str:
    if math.isnan(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def is_single_seed(long: pd.DataFrame) -> bool:
    """True when every metric that was logged at all has exactly one value per ablation."""
    logged = long.loc[long["n"] > 0, "n"]
    return bool(len(logged)) and bool((logged == 1).all())


def wide_table(long: pd.DataFrame) -> pd.DataFrame:
    """One row per ablation, one column per metric, cells like `9.600 ± 0.25 (-4.0%, p=0.041)`."""
    cells = long.assign(cell=[_wide_cell(row) for row in long.itertuples(index=False)])
    table = cells.pivot(index="ablation", columns="metric", values="cell")
    table = table.loc[pd.unique(long["ablation"]), pd.unique(long["metric"])]
    table.columns.name = None
    return table


def _wide_cell(row) -> str:
    if row.n == 0:
        return "missing"
    cell = format_mean_ci(row.mean, row.ci95)
    details = []
    if not math.isnan(row.change_pct):
        details.append(format_change(row.change_pct))
    if not math.isnan(row.p_value):
        details.append(f"p={format_p(row.p_value)}")
    return f"{cell} ({', '.join(details)})" if details else cell


def to_markdown(long: pd.DataFrame) -> str:
    """The long table as GitHub markdown, a line on top when there was one seed per ablation."""
    header = ["ablation", "metric", "better if", "mean ± 95% CI", "n", "change vs baseline [95% CI]",
              "p (Holm)", "better", "real clips", "note"]
    lines = [SINGLE_SEED_LINE, ""] if is_single_seed(long) else []
    lines += [_markdown_row(header), _markdown_row(["---"] * len(header))]
    for row in long.itertuples(index=False):
        p = format_p(row.p_value)
        better = {True: "yes", False: "no"}.get(row.better, "")
        lines.append(_markdown_row([
            row.ablation, row.metric, BETTER_WHEN.get(row.metric, "?"), format_mean_ci(row.mean, row.ci95),
            str(row.n), format_change(row.change_pct, row.change_ci95),
            f"{p} ({format_p(row.p_holm)})" if p else "", better,
            "" if math.isnan(row.real) else format_number(row.real), row.note,
        ]))
    return "\n".join(lines) + "\n"


def _markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"


# The study's prior expectations, checked against the measurements.

QUALITY = "quality"  # a Prior's `measure` for the mean sign-adjusted change over the quality metrics


@dataclass(frozen=True)
class Prior:
    """What we expected of one ablation before running it: `measure`'s change %, in [low_pct, high_pct].

    `measure` is a metric (its raw change %) or QUALITY (mean change over the quality metrics, positive =
    better). `up_word` / `down_word` say what a positive / negative change means in plain words.
    """

    ablation: str
    measure: str
    low_pct: float
    high_pct: float
    expected: str
    up_word: str
    down_word: str


PRIORS: tuple[Prior, ...] = (
    Prior("text_finetuned", QUALITY, 2.0, 8.0, "quality 2 to 8% better", "better", "worse"),
    Prior("text_finetuned", "summary/train_time_s", 20.0, 30.0, "training 20 to 30% slower", "slower", "faster"),
    Prior("no_ema", QUALITY, -5.0, -2.0, "quality 2 to 5% worse", "better", "worse"),
    Prior("no_ema", "summary/train_time_s", -5.0, 5.0, "the same training speed (time within ±5%)",
          "slower", "faster"),
)


Verdict = Literal["held", "did not hold", "not settled", "unknown"]


@dataclass(frozen=True)
class Expectation:
    """One prior checked against the measured change and its 95% interval (`measured` ± `ci95`, in %).

    held: the measured change lies in the expected range. did not hold: the whole interval lies outside
    it. not settled: the change lies outside but the interval reaches into the range, so these seeds
    cannot tell. unknown: the data to check it is missing.
    """

    name: str
    expected: str
    measured: float | None
    ci95: float | None
    verdict: Verdict
    sentence: str
    # Seeds per ablation at which the measured change would be told apart from the nearest end of the expected
    # range (power POWER at ALPHA, at the measured spread); None where there is no interval to judge by.
    seeds_needed: float | None = None


def quality_change(long: pd.DataFrame, ablation: str) -> tuple[float | None, float | None, list[str], list[str]]:
    """Mean change % over the quality metrics, signed so positive = better, and the half-width of its 95% CI.

    Returns (change, ci95, metrics used, metrics left out). Every metric weighs the same, whatever its
    scale: a 5% better FVD counts as much as a 5% better BLEU-4. A metric whose baseline mean is not told
    apart from 0 (its interval contains 0, as the steer gap's does while the text steers nothing) is left
    out: a change in % of about nothing is any size at all. The interval combines the metrics' intervals
    as if independent, sqrt(sum ci^2) / k; None when a metric has none (a single seed).
    """
    baseline = long[long["ablation"] == baseline_of(long)].set_index("metric")
    rows = long[(long["ablation"] == ablation) & long["metric"].isin(QUALITY_METRICS) & long["change_pct"].notna()]
    near_zero = [metric for metric in rows["metric"] if metric in baseline.index
                 and abs(baseline.at[metric, "mean"]) <= baseline.at[metric, "ci95"]]
    rows = rows[~rows["metric"].isin(near_zero)]
    if rows.empty:
        return None, None, [], near_zero
    signs = rows["metric"].map(lambda metric: 1.0 if BETTER_WHEN[metric] == "higher" else -1.0)
    change = float((rows["change_pct"] * signs).mean())
    ci95 = None if rows["change_ci95"].isna().any() else float(np.sqrt((rows["change_ci95"] ** 2).sum()) / len(rows))
    return change, ci95, list(rows["metric"]), near_zero


def check_expectations(long: pd.DataFrame, priors: Sequence[Prior] = PRIORS) -> list[Expectation]:
    """Check each prior against `compare`'s output."""
    return [_check(long, prior) for prior in priors]


def _check(long: pd.DataFrame, prior: Prior) -> Expectation:
    name = f"{prior.ablation}: {prior.measure}"
    if prior.measure == QUALITY:
        measured, ci95, used, left_out = quality_change(long, prior.ablation)
        source = f"mean over {len(used)} quality metrics: {', '.join(used)}"
        if left_out:
            source += f"; left out, their baseline mean is within its CI of 0: {', '.join(left_out)}"
    else:
        rows = long[(long["ablation"] == prior.ablation) & (long["metric"] == prior.measure) & long["change_pct"].notna()]
        measured = float(rows["change_pct"].iloc[0]) if len(rows) else None
        ci95 = float(rows["change_ci95"].iloc[0]) if len(rows) and not math.isnan(rows["change_ci95"].iloc[0]) else None
        source = prior.measure
    head = f"{prior.ablation}: expected {prior.expected}"
    if measured is None:
        if prior.ablation not in set(long["ablation"]):
            why = f"no finished run of {prior.ablation}"
        else:
            why = f"no change measured for {'any quality metric' if prior.measure == QUALITY else prior.measure}"
        return Expectation(name, prior.expected, None, None, "unknown", f"{head}; unknown: {why}.")
    verdict: Verdict
    if prior.low_pct <= measured <= prior.high_pct:
        verdict = "held"
    elif ci95 is not None and measured - ci95 <= prior.high_pct and measured + ci95 >= prior.low_pct:
        verdict = "not settled"
    else:
        verdict = "did not hold"
    word = prior.up_word if measured >= 0 else prior.down_word
    interval = "no interval" if ci95 is None else f"95% CI {measured - ci95:+.1f}% to {measured + ci95:+.1f}%"
    why = {"not settled": " (outside the range, but its interval reaches into it: more seeds would settle it)",
           "did not hold": "" if ci95 is None else " (its whole interval is outside the range)"}.get(verdict, "")
    seeds = _seeds_to_settle(prior, measured, ci95, _seeds_of(long, prior.ablation))
    sentence = f"{head}; measured {abs(measured):.1f}% {word} ({interval}; {source}): {verdict}{why}."
    if seeds is not None:
        sentence += f" {_seeds_phrase(seeds)}"
    return Expectation(name, prior.expected, measured, ci95, verdict, sentence, seeds)


def _seeds_of(long: pd.DataFrame, ablation: str) -> int:
    rows = long[long["ablation"] == ablation]
    return int(rows["n"].max()) if len(rows) else 0


def _seeds_to_settle(prior: Prior, measured: float, ci95: float | None, seeds: int) -> float | None:
    """Seeds per ablation to tell the measured change from the nearest end of the expected range, the spread of
    one seed's change taken from the interval measured with `seeds` a side."""
    if ci95 is None or seeds < 2:
        return None
    spread = ci95 / scipy.stats.t.ppf(1 - ALPHA / 2, 2 * seeds - 2) * math.sqrt(seeds / 2)
    edge = min((prior.low_pct, prior.high_pct), key=lambda end: abs(measured - end))
    return seeds_to_distinguish(measured - edge, spread)


def _seeds_phrase(seeds: float) -> str:
    if math.isinf(seeds):
        return f"No count of seeds up to {MOST_SEEDS} would tell it from the range's nearest end at this spread."
    return (f"{seeds:.0f} seeds a side would tell it from the range's nearest end "
            f"(power {POWER:g} at alpha {ALPHA:g}, at this spread).")
