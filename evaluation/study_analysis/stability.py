"""How steady training was, read from a run's logged curves: the study's question whether EMA matters.

EMA does not change the weights that train: with the same seed, a run with EMA and one without take the same
optimizer steps and log the same `train/loss`, so no measure of the training loss can tell them apart. What
EMA changes is the model that is validated, evaluated and registered (the averaged weights). Its stability is
read here from `val/loss` of those weights at the end of each epoch: how much it still moves from one
validation to the next in the second half of training, relative to its level there (`val_loss_wobble`).
The other reading of stability, how much a final figure varies from seed to seed, is the `std` of every
metric in the comparison table.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

VAL_LOSS_WOBBLE = "stability/val_loss_wobble"


def val_loss_wobble(values: np.ndarray) -> float:
    """Mean absolute change between consecutive validations over the second half of them, divided by the mean
    val/loss there; NaN with fewer than 4 validations (two changes in the second half are the least to judge by)."""
    if len(values) < 4:
        return math.nan
    late = values[len(values) // 2 - 1:]  # the last validation of the first half starts the first late change
    level = float(np.mean(late[1:]))
    return float(np.mean(np.abs(np.diff(late)))) / level if level > 0 else math.nan


def with_stability(runs: pd.DataFrame, histories: pd.DataFrame) -> pd.DataFrame:
    """`runs` with a VAL_LOSS_WOBBLE column, from each run's val/loss history (`histories`: run_id, metric,
    step, value); unchanged where no run validated often enough to judge (a study of 2-epoch runs)."""
    losses = histories[histories["metric"] == "val/loss"].sort_values("step")
    wobble = {run_id: val_loss_wobble(group["value"].to_numpy(dtype=float)) for run_id, group in losses.groupby("run_id")}
    column = runs["run_id"].map(wobble).astype(float)
    return runs.assign(**{VAL_LOSS_WOBBLE: column}) if column.notna().any() else runs
