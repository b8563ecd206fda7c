"""Figures of an ablation study, written as PNG files: loss curves, metric bars, cost against quality.

Figures are built on `matplotlib.figure.Figure` and saved with the Agg renderer, never through pyplot,
so plotting needs no display and leaves the caller's matplotlib state alone. A metric that is missing is
not drawn as zero: its panel says it is missing.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from evaluation.study_analysis.comparison import BETTER_WHEN, QUALITY_METRICS

DPI = 120
# Losses of diffusion models fall by orders of magnitude early on; past this max/min ratio a linear axis
# flattens everything after the first epochs into one line.
LOG_SCALE_RATIO = 20.0


def plot_loss_curves(histories: pd.DataFrame, path: str | Path, metric: str = "train/loss",
                     baseline: str = "baseline") -> Path:
    """Mean of `metric` over seeds against the step, one line per ablation, the band spanning min to max.

    `histories` has columns `run_id`, `ablation`, `seed`, `metric`, `step`, `value`.
    """
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    curves = histories[histories["metric"] == metric]
    ablations = sorted(pd.unique(curves["ablation"]), key=lambda name: (name != baseline, name))
    colors = _colors(ablations)
    for ablation in ablations:
        # One column per seed; a step logged twice (a resumed run) keeps its last value.
        by_step = curves[curves["ablation"] == ablation].pivot_table(
            index="step", columns="seed", values="value", aggfunc="last").sort_index()
        mean = by_step.mean(axis=1)
        ax.plot(mean.index, mean, color=colors[ablation], label=f"{ablation} ({by_step.shape[1]} seeds)")
        ax.fill_between(mean.index, by_step.min(axis=1), by_step.max(axis=1), color=colors[ablation],
                        alpha=0.2, linewidth=0)
    if ablations:
        values = curves["value"].dropna()
        if (values > 0).all() and values.max() / values.min() > LOG_SCALE_RATIO:
            ax.set_yscale("log")
        elif (values <= 0).any():  # a difference such as val/text_loss_gap: which side of 0 is the news
            ax.axhline(0.0, color="0.4", linewidth=0.8, linestyle=":")
        ax.legend()
    else:
        _note(ax, f"{metric}: no history logged by any run")
    ax.set(xlabel="optimizer step", ylabel=metric, title=f"{metric}: mean over seeds, band from min to max")
    return _save(fig, path)


def plot_metric_bars(long: pd.DataFrame, path: str | Path, metrics: list[str]) -> Path:
    """One panel per metric: the mean of each ablation as a bar, its 95% CI as the error bar.

    `long` is `evaluation.study_analysis.comparison.compare`'s output.
    """
    ablations = list(pd.unique(long["ablation"]))
    colors = _colors(ablations)
    columns = min(3, max(len(metrics), 1))
    grid_rows = max(math.ceil(len(metrics) / columns), 1)
    fig = Figure(figsize=(4.2 * columns, 3.6 * grid_rows + 0.4), layout="constrained")
    fig.suptitle("mean over seeds; error bars: 95% CI (none with a single seed)")
    if not metrics:
        _note(fig.add_subplot(), "no metrics to plot")
    for index, metric in enumerate(metrics):
        ax = fig.add_subplot(grid_rows, columns, index + 1)
        rows = _rows(long, metric, ablations)
        direction = BETTER_WHEN.get(metric)
        ax.set_title(f"{metric}\n({direction} is better)" if direction else metric, fontsize=10)
        if rows["mean"].isna().all():
            _note(ax, "missing: no run logged it")
            continue
        positions = np.arange(len(ablations))
        for position, (ablation, row) in zip(positions, rows.iterrows()):
            if math.isnan(row["mean"]):
                ax.text(position, 0, "missing", ha="center", va="bottom", rotation=90, color="gray")
                continue
            error = None if math.isnan(row["ci95"]) else row["ci95"]
            ax.bar(position, row["mean"], yerr=error, capsize=4, color=colors[ablation])
        ax.set_xticks(positions, ablations, rotation=30, ha="right")
    return _save(fig, path)


def plot_cost_vs_quality(long: pd.DataFrame, path: str | Path, cost: str = "summary/train_time_s",
                         quality: str | None = None) -> Path:
    """Each ablation as a point at (cost, quality) with 95% CI error bars both ways, labelled.

    `quality` defaults to the first of QUALITY_METRICS that has a value in `long`.
    """
    ablations = list(pd.unique(long["ablation"]))
    colors = _colors(ablations)
    if quality is None:
        logged = set(long.loc[long["n"] > 0, "metric"])
        quality = next((metric for metric in QUALITY_METRICS if metric in logged), None)
    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xlabel(_axis_label(cost))
    ax.set_ylabel(_axis_label(quality) if quality else "quality")
    ax.set_title("cost against quality: mean over seeds, error bars 95% CI")
    if quality is None:
        _note(ax, "no quality metric was logged")
        return _save(fig, path)
    xs, ys = _rows(long, cost, ablations), _rows(long, quality, ablations)
    missing_both = [metric for metric, rows in ((cost, xs), (quality, ys)) if rows["mean"].isna().all()]
    if missing_both:
        _note(ax, f"missing: {', '.join(missing_both)} (no run logged it)")
        return _save(fig, path)
    not_shown = []
    for ablation in ablations:
        x, y = xs.loc[ablation], ys.loc[ablation]
        if math.isnan(x["mean"]) or math.isnan(y["mean"]):
            not_shown.append(ablation)
            continue
        ax.errorbar(x["mean"], y["mean"], xerr=_error(x["ci95"]), yerr=_error(y["ci95"]), fmt="o",
                    color=colors[ablation], capsize=4)
        ax.annotate(ablation, (x["mean"], y["mean"]), textcoords="offset points", xytext=(6, 6))
    ax.margins(0.15)  # room for the labels of the outermost points
    if not_shown:
        ax.text(0.01, 0.01, f"not shown, a value is missing: {', '.join(not_shown)}", transform=ax.transAxes,
                fontsize=8, color="gray")
    return _save(fig, path)


def plot_guidance_sweep(rows: list[dict[str, float]], path: str | Path, title: str = "guidance sweep") -> Path:
    """Back-translation WER (fidelity to the text) and FSD (closeness to real videos) against the
    classifier-free guidance scale, on two y axes: the trade-off the sampling guidance is chosen from.

    `rows` are `evaluation.metrics.steering.guidance_sweep`'s.
    """
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title)
    if not rows:
        _note(ax, "no guidance scale was evaluated")
        return _save(fig, path)
    table = pd.DataFrame(rows).sort_values("guidance")
    ax.plot(table["guidance"], table["backtranslation_wer"], "o-", color="C0")
    ax.set_xlabel("classifier-free guidance scale")
    ax.set_ylabel("back-translation WER (lower is better)", color="C0")
    ax.set_xticks(table["guidance"], [f"{g:g}" for g in table["guidance"]])
    fsd_axis = ax.twinx()
    fsd_axis.plot(table["guidance"], table["fsd"], "s--", color="C1")
    fsd_axis.set_ylabel("FSD (lower is better)", color="C1")
    return _save(fig, path)


def _rows(long: pd.DataFrame, metric: str, ablations: list[str]) -> pd.DataFrame:
    """`mean` and `ci95` of `metric` per ablation, in `ablations`' order; NaN where there is none."""
    rows = long[long["metric"] == metric].set_index("ablation")[["mean", "ci95"]]
    return rows.reindex(ablations)


def _error(ci95: float) -> float | None:
    return None if math.isnan(ci95) else ci95


def _axis_label(metric: str) -> str:
    direction = BETTER_WHEN.get(metric)
    return f"{metric} ({direction} is better)" if direction else metric


def _colors(ablations: list[str]) -> dict[str, str]:
    """The same colour for an ablation in every figure of one study."""
    return {ablation: f"C{index % 10}" for index, ablation in enumerate(ablations)}


def _note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="gray", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    return path
