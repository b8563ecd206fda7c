"""Entry point `analyze`: from the tracking server to comparison tables, a report, plots and a champion.

    mlflow run . -e analyze -P study=<study run id> -P output=results --env-manager local

It reads only from the tracking server (`mlflow.search_runs`, `MlflowClient.get_metric_history`), so it
works the same against the local SQLite file and a remote `mlflow server`. Runs that failed or were
killed are left out and listed; missing metrics stay missing. The files are written to `output` and
logged as artifacts of an analysis run; the registered model version of the best run by
`champion_metric` gets the alias `champion`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd

from text2sign.config import ConfigError

from mlproject.tracking.server_errors import is_permission_denied, reports_access_errors

HISTORY_METRICS = ("train/loss", "val/loss", "val/text_loss_gap")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mlproject.analyze", description=__doc__.split("\n")[0])
    parser.add_argument("--experiment", default="",
                        help="without --study: the experiment whose ablation runs to compare (default: "
                             "$MLFLOW_EXPERIMENT_NAME, else text2sign-ablations; under `mlflow run`, the one MLflow "
                             "created the analysis run in)")
    parser.add_argument("--study", default="", help="a study run id, in whichever experiment it is; "
                                                    "default: every ablation run of the experiment")
    parser.add_argument("--output", default="analysis", help="folder for the tables, report and plots")
    parser.add_argument("--baseline", default="baseline")
    parser.add_argument("--champion-metric", default="eval/fsd", help="eval metric that picks the champion checkpoint")
    return parser.parse_args(argv)


def where_to_look(experiment: str, study: str) -> tuple[str, str]:
    """(experiment id, a description for messages) of the runs to compare: the study's own experiment,
    else the one `mlflow run` created the analysis run in, else the one named by flag or environment."""
    import os

    import mlflow

    from mlproject.tracking.experiment import chosen_experiment
    from mlproject.train import DEFAULT_EXPERIMENT

    if study:
        try:
            return mlflow.MlflowClient().get_run(study).info.experiment_id, f"study {study}"
        except mlflow.exceptions.MlflowException:
            raise ConfigError(f"study: no run {study!r} on {mlflow.get_tracking_uri()}; pass the id the study "
                              "printed as `study <id>: ...`.") from None
    if os.environ.get("MLFLOW_RUN_ID") and os.environ.get("MLFLOW_EXPERIMENT_ID"):
        experiment_id = os.environ["MLFLOW_EXPERIMENT_ID"]
        return experiment_id, f"experiment {mlflow.get_experiment(experiment_id).name!r}"
    name = chosen_experiment(experiment, DEFAULT_EXPERIMENT)
    found = mlflow.get_experiment_by_name(name)
    if found is None:
        raise ConfigError(f"experiment: no experiment {name!r} on {mlflow.get_tracking_uri()}; "
                          "train first, or pass -P study=<study run id>.")
    return found.experiment_id, f"experiment {name!r}"


def fetch_runs(experiment: str, study: str) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """Finished ablation runs as rows (metrics by their tracked names), and the runs left out with why."""
    import mlflow

    experiment_id, where = where_to_look(experiment, study)
    query = "tags.ablation != ''" + (f" and tags.study = '{study}'" if study else "")
    found = mlflow.search_runs(experiment_ids=[experiment_id], filter_string=query, output_format="pandas")
    if found.empty:
        raise ConfigError(f"no ablation runs in {where}; check the study id (printed by the study entry point).")
    finished = found[found["status"] == "FINISHED"]
    # A child stopped before its first checkpoint is started afresh when its study is resumed: say so.
    rerun = {(r["tags.ablation"], r["tags.seed"]): r["run_id"] for _, r in finished.iterrows()}
    left_out = []
    for _, r in found[found["status"] != "FINISHED"].iterrows():
        entry = {"run_id": r["run_id"], "run_name": r.get("tags.mlflow.runName", ""), "status": r["status"]}
        if (r["tags.ablation"], r["tags.seed"]) in rerun:
            entry["reason"] = f"superseded: the same ablation and seed finished in run {rerun[r['tags.ablation'], r['tags.seed']]}"
        left_out.append(entry)
    runs = pd.DataFrame({
        "run_id": finished["run_id"],
        "experiment_id": finished["experiment_id"],
        "ablation": finished["tags.ablation"],
        "seed": finished["tags.seed"].astype(int),
        "status": finished["status"],
        "registered": finished.get("tags.registry/model", pd.Series(index=finished.index, dtype=object)),
        "git_commit": finished.get("tags.git_commit", pd.Series(index=finished.index, dtype=object)),
    })
    for column in finished.columns:
        if column.startswith("metrics."):
            runs[column.removeprefix("metrics.")] = finished[column].astype(float)
    return runs.reset_index(drop=True), left_out


def fetch_histories(runs: pd.DataFrame) -> pd.DataFrame:
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    rows = [
        {"run_id": r.run_id, "ablation": r.ablation, "seed": r.seed, "metric": key, "step": m.step, "value": m.value}
        for r in runs.itertuples() for key in HISTORY_METRICS for m in client.get_metric_history(r.run_id, key)
    ]
    return pd.DataFrame(rows, columns=["run_id", "ablation", "seed", "metric", "step", "value"])


def crown_champion(runs: pd.DataFrame, metric: str) -> str | None:
    """Alias `champion` on the registered version of the best run by `metric`; returns a sentence or None."""
    from evaluation.study_analysis.comparison import lower_is_better
    from mlflow.tracking import MlflowClient

    from mlproject.registry.generator_registry import REGISTERED_MODEL

    if metric not in runs.columns:
        return None
    client = MlflowClient()
    # A run imported without its weights names the version of the store it came from: not one here.
    here = runs["registered"].map(lambda ref: _registered_here(client, ref)) if "registered" in runs else None
    candidates = runs[here == runs["run_id"]].dropna(subset=[metric]) if here is not None else runs.iloc[:0]
    if candidates.empty:
        return None
    best = candidates.sort_values(metric, ascending=lower_is_better(metric)).iloc[0]
    version = str(best["registered"]).split("/")[-1]
    client.set_registered_model_alias(REGISTERED_MODEL, "champion", version)
    return (f"champion: {REGISTERED_MODEL} version {version} ({best['ablation']}, seed {best['seed']}, "
            f"{metric} = {best[metric]:.4f})")


def _registered_here(client, reference) -> str | None:
    """The run id of registered version `<name>/<version>` in this store, None where it has no such version."""
    from mlflow.exceptions import MlflowException

    name, _, version = str(reference).partition("/")
    if not (isinstance(reference, str) and version):
        return None
    try:
        return client.get_model_version(name, version).run_id
    except MlflowException:
        return None


def _study_experiment(study: str) -> str:
    """The name of the study's experiment, where its analysis run belongs (outside `mlflow run`)."""
    import mlflow

    if not study:
        return ""
    return mlflow.get_experiment(mlflow.MlflowClient().get_run(study).info.experiment_id).name


def analysis_run_name(study: str) -> str:
    """`analysis-<the study run's name>`, so the UI shows which study an analysis is of; `analysis-all` without one."""
    import mlflow

    if not study:
        return "analysis-all"
    return f"analysis-{mlflow.MlflowClient().get_run(study).data.tags.get('mlflow.runName', study)}"


def open_analysis_run(args: argparse.Namespace, output: Path):
    """The analysis run, or None, with an error, for a user who may read the study but not write its experiment:
    analyzing needs only READ, and such a user still gets the tables, report and plots in `output`."""
    import mlflow

    from mlproject.tracking.experiment import chosen_experiment, start_run
    from mlproject.train import DEFAULT_EXPERIMENT

    experiment = args.experiment or _study_experiment(args.study)
    try:
        return start_run(experiment, DEFAULT_EXPERIMENT, run_name=analysis_run_name(args.study))
    except Exception as error:
        if not is_permission_denied(error):
            raise
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    print(f"error: user {user!r} may read experiment {chosen_experiment(experiment, DEFAULT_EXPERIMENT)!r} on "
          f"{mlflow.get_tracking_uri()} but not write to it (HTTP 403): the tables, report and plots are in {output}, "
          "but not logged as an analysis run. To log them, ask the experiment's owner or an admin for EDIT on it; "
          "see docs/server.md.", file=sys.stderr)
    return None


def crown_champion_if_allowed(runs: pd.DataFrame, metric: str) -> str | None:
    """`crown_champion`, or a warning and None when this user may not move the registry's aliases."""
    from mlproject.registry.generator_registry import REGISTERED_MODEL

    try:
        return crown_champion(runs, metric)
    except Exception as error:
        if not is_permission_denied(error):
            raise
    print(f"warning: the alias champion was not moved: user {os.environ.get('MLFLOW_TRACKING_USERNAME')!r} may not "
          f"edit registered model {REGISTERED_MODEL} (HTTP 403); its owner or an admin can grant EDIT "
          "(docs/server.md).", file=sys.stderr)
    return None


@reports_access_errors
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import mlflow

    from evaluation.study_analysis.comparison import check_expectations, compare, to_markdown
    from evaluation.study_analysis.plots import plot_cost_vs_quality, plot_loss_curves, plot_metric_bars
    from evaluation.study_analysis.report import write_report
    from evaluation.study_analysis.stability import with_stability
    from mlproject.tracking import descriptions

    from mlproject.export_import.importing import run_here

    if args.study:  # the id this store has, or the one of the record it was imported from
        args.study = run_here(mlflow.MlflowClient(), args.study.strip())
    try:
        runs, left_out = fetch_runs(args.experiment, args.study)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.baseline not in set(runs["ablation"]):
        print(f"error: baseline: no finished {args.baseline!r} runs to compare with (found: "
              f"{', '.join(sorted(set(runs['ablation'])))}); pass -P baseline=<ablation>.", file=sys.stderr)
        return 2

    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    histories = fetch_histories(runs)
    runs = with_stability(runs, histories)
    long = compare(runs, baseline=args.baseline)
    long.to_csv(output / "comparison_table.csv", index=False)
    (output / "comparison_table.md").write_text(to_markdown(long))
    expectations = check_expectations(long)
    address = ui_comparison(runs)
    write_report(long, expectations, output / "ABLATION_RESULTS_REPORT.txt", left_out, args.study or args.experiment,
                 runs=runs, ui_address=address)
    plot_loss_curves(histories, output / "loss_curves.png", baseline=args.baseline)
    # When, if ever, each ablation starts to use its text (about 0 while it ignores it).
    plot_loss_curves(histories, output / "text_loss_gap_curves.png", metric="val/text_loss_gap", baseline=args.baseline)
    quality = [m for m in long["metric"].unique() if m.startswith("eval/")]
    plot_metric_bars(long, output / "eval_metrics.png", quality)
    plot_cost_vs_quality(long, output / "cost_vs_quality.png")

    analysis = open_analysis_run(args, output)
    if analysis is None:
        return 2
    champion = crown_champion_if_allowed(runs, args.champion_metric)
    # The study's page and the analysis run's open on the comparison itself.
    note = descriptions.study_run(to_markdown(long), champion, analysis.info.run_id)
    mlflow.set_tags({"role": "analysis", **({"study": args.study} if args.study else {}),
                     **({"champion": champion} if champion else {}), descriptions.NOTE: note})
    if args.study:
        mlflow.MlflowClient().set_tag(args.study, descriptions.NOTE, note)
    mlflow.log_artifacts(str(output), "analysis")
    mlflow.end_run()
    print((output / "comparison_table.md").read_text())
    print(f"report, tables and plots in {output}; {len(left_out)} run(s) left out")
    if champion:
        print(champion)
    print(f"compare the runs in the MLflow UI: {address}")
    return 0


def ui_comparison(runs: pd.DataFrame) -> str:
    """Where the UI shows these runs side by side, on its training view, and what to start first."""
    import mlflow

    from mlproject.tracking.ui_address import compare_address, how_to_open

    uri = mlflow.get_tracking_uri()
    return how_to_open(uri) + compare_address(uri, str(runs["experiment_id"].iloc[0]), list(runs["run_id"]))


if __name__ == "__main__":
    sys.exit(main())
