"""Which MLflow experiment a run goes to: one rule for every entry point.

1. Under `mlflow run`, MLflow has created the run before the entry point starts (in the experiment of
   `--experiment-name`, `MLFLOW_EXPERIMENT_NAME`, or `Default`): that run, and so its experiment, is used.
2. A run nested under another (a study's child) goes to its parent's experiment, so the UI shows the
   parent with its children and `analyze` finds them together.
3. Otherwise the `--experiment` flag, else `MLFLOW_EXPERIMENT_NAME`, else the entry point's default name.

Every experiment a run lands in is marked as a model-training experiment (`mlflow.experimentKind`) unless
it already has a kind; the tag is how MLflow records an experiment's kind (its UI's kind selector writes
it). MLflow 3.17.2's UI, with its sidebar switch between GenAI and model training, takes the view from that
switch rather than the tag (GenAI, an overview of traces we do not have, until the user flips it; seen in its
JS bundle and in the browser test), so the README tells users to flip it once.
"""

from __future__ import annotations

import os

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

KIND_TAG = "mlflow.experimentKind"
# The value MLflow's UI (ExperimentKind in its 3.17 JS bundle) and its onboarding docs give to custom model
# training, as opposed to `genai_development`.
MODEL_TRAINING_KIND = "custom_model_development"


def experiment_id_for(name: str, client: MlflowClient | None = None) -> str:
    """The id of experiment `name`, created (marked as model training) when it does not exist.

    Parallel runs may race to create it: the loser finds it by name instead. The id is passed on rather
    than made "active" with `mlflow.set_experiment`, whose loser of that race gets no active experiment
    and would start its run in `Default`.
    """
    client = client or MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is not None:
        mark_model_training(found.experiment_id, client)
        return found.experiment_id
    try:
        return client.create_experiment(name, tags={KIND_TAG: MODEL_TRAINING_KIND})
    except MlflowException:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        mark_model_training(found.experiment_id, client)
        return found.experiment_id


def mark_model_training(experiment_id: str, client: MlflowClient | None = None) -> None:
    """Give the experiment the model-training kind, unless someone already chose one."""
    client = client or MlflowClient()
    if KIND_TAG not in client.get_experiment(experiment_id).tags:
        client.set_experiment_tag(experiment_id, KIND_TAG, MODEL_TRAINING_KIND)


def chosen_experiment(flag: str, default: str) -> str:
    """Rule 3: the experiment named outside `mlflow run`."""
    return flag or os.environ.get("MLFLOW_EXPERIMENT_NAME") or default


def start_run(flag: str, default: str, run_name: str | None = None, parent_run_id: str = "", **options):
    """Start (or, under `mlflow run`, reopen) this entry point's run by the rule above; returns it active.
    `options` go to `mlflow.start_run` (e.g. `log_system_metrics`)."""
    client = MlflowClient()
    launched_run = os.environ.get("MLFLOW_RUN_ID")
    if launched_run:
        active = mlflow.start_run(run_id=launched_run, **options)
        mark_model_training(active.info.experiment_id, client)
        if run_name:  # `mlflow run` made the run under a random name; the entry point knows what it is
            mlflow.set_tag("mlflow.runName", run_name)
        return active
    if parent_run_id:
        experiment_id = client.get_run(parent_run_id).info.experiment_id
        mark_model_training(experiment_id, client)
    else:
        experiment_id = experiment_id_for(chosen_experiment(flag, default), client)
    tags = {"mlflow.parentRunId": parent_run_id} if parent_run_id else None
    return mlflow.start_run(run_name=run_name, experiment_id=experiment_id, tags=tags, **options)
