"""Training the generator: the loop (`trainer.py`) and what it is built from.

`state.py` sets a run up (splits, model, EMA, optimizer) and saves it; `planner_first.py` trains the pose
planner alone before the loop; `optimization.py` the schedule and the optimizer step; `ema.py` the
averaged weights; `validation.py` the per-epoch losses and samples, `text_loss_gap.py` `val/text_loss_gap`;
`distributed.py` data-parallel processes; `failures.py` how a run fails; `reporting.py` the `Tracker`
interface the trainer reports through (MLflow's side is `mlproject/tracking/tracker.py`).
"""
