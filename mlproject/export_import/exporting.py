"""A study out of its tracking store, into a folder: the study run, its children, and the judge that read them.

What goes: every run's info, params, tags (its description among them), each metric's whole history, dataset
inputs and artifacts (evaluation tables, sample GIFs and `.pose` files, logs); the registered versions' metadata;
the judge's weights, so a child evaluated after the move is read by the same judge. A child's checkpoints (and
the weights of its registered version) only when asked: they are hundreds of MB where the rest is a few.

A folder keeps the ids of the store a run was first exported from. A study imported elsewhere, resumed there and
exported again into the same folder adds its new children beside the old ones, each under its record's id (see
references.py), and a run is rewritten only when what it records changed: a study exported after each child
gives a git history of one commit per child.
"""

from __future__ import annotations

import filecmp
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from text2sign.config import ConfigError

from mlproject.export_import import layout
from mlproject.export_import.references import References, model_reference

CHECKPOINTS = "checkpoints"
JUDGE_TAGS = ("eval/recognizer", "study/judge")


@dataclass
class ExportedRun:
    run_id: str  # the record's id
    name: str
    role: str  # study, child or judge
    status: str
    bytes: int
    written: bool  # False where the folder already held this very record


@dataclass
class ExportReport:
    folder: Path
    study_id: str  # the record's id
    runs: list[ExportedRun] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # "<run name> (<id>): why"

    def lines(self) -> list[str]:
        rows = [f"  {r.role:6s} {r.name:28s} {r.run_id} {r.status:9s} {_megabytes(r.bytes):>9s}"
                f"{'' if r.written else '  (unchanged)'}" for r in self.runs]
        rows += [f"  not exported: {why}" for why in self.left_out]
        return rows + [f"  {len(self.runs)} runs, {_megabytes(layout.folder_bytes(self.folder))} in {self.folder}"]


def export_study(study_id: str, folder: Path, checkpoints: bool = False, client: MlflowClient | None = None
                 ) -> ExportReport:
    """Write study `study_id` into `folder` (created if need be); returns what was written and its size."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per run would drown the report
    client = client or MlflowClient()
    study = client.get_run(study_id)
    if study.data.tags.get("role") != "study":
        raise ConfigError(f"study: run {study_id} is not a study run (its tag role is "
                          f"{study.data.tags.get('role')!r}); pass the id the study printed as `study <id>: ...`.")
    children, left_out = exportable_children(client, study, checkpoints)
    judges = versions_named(client, [study, *children], JUDGE_TAGS)
    generators = versions_named(client, children, ("registry/model",))
    with_files = [v for v in judges + (generators if checkpoints else [])
                  if logged_model_id(v) and layout.SOURCE_VERSION_TAG not in v.tags]
    # Versions whose files the record holds: those written now, and those imported from it.
    in_record = with_files + [v for v in judges + generators if layout.SOURCE_VERSION_TAG in v.tags]
    runs = _unique([(study, "study"), *((c, "child") for c in children),
                    *((client.get_run(v.run_id), "judge") for v in judges)])
    references = record_references([run for run, _ in runs], judges + generators)
    report = ExportReport(folder, references.run(study.info.run_id), left_out=left_out)
    for experiment_id in {run.info.experiment_id for run, _ in runs}:
        write_experiment(client, folder, experiment_id)  # first, so each experiment's runs find its folder
    for run, role in runs:
        outputs = [references.models.get(model_id, model_id) for v in in_record if v.run_id == run.info.run_id
                   for model_id in [logged_model_id(v)]]
        report.runs.append(export_run(client, run, folder, role, references, checkpoints and role == "child", outputs))
    for version in with_files:
        export_logged_model(client, logged_model_id(version), folder, references)
    write_registered_models(client, folder, judges + generators, references)
    for experiment_id in {run.info.experiment_id for run, _ in runs}:
        write_experiment(client, folder, experiment_id)
    write_manifest(folder, study, report, checkpoints)
    return report


def exportable_children(client: MlflowClient, study: Run, checkpoints: bool) -> tuple[list[Run], list[str]]:
    """The study's children that a record can carry: the finished ones, and with checkpoints those that can be
    continued too. A child stopped before finishing is of no use without its checkpoints: it starts afresh."""
    runs = client.search_runs([study.info.experiment_id], f"tags.study = '{study.info.run_id}' and tags.ablation != ''",
                              order_by=["attributes.start_time ASC"], max_results=10_000)
    keep, left_out = [], []
    for run in runs:
        if run.info.status == "FINISHED" or (checkpoints and client.list_artifacts(run.info.run_id, CHECKPOINTS)):
            keep.append(run)
        else:
            why = "no checkpoints to continue from" if checkpoints else "not finished (with checkpoints=true it is carried over to be continued)"
            left_out.append(f"{run.info.run_name} ({run.info.run_id}): {run.info.status}, {why}")
    return keep, left_out


def versions_named(client: MlflowClient, runs: list[Run], tags: tuple[str, ...]) -> list:
    """The registered versions that these runs' `tags` name, each once. A run imported without its registered
    weights still names the version it had in its record: one that is not here, or is another run's, is skipped
    (the record keeps that version's metadata)."""
    found = {}
    for run in runs:
        for tag in tags:
            reference = model_reference(run.data.tags.get(tag, ""))
            version = _version_or_none(client, *reference) if reference else None
            if version is not None and (tag in JUDGE_TAGS or version.run_id == run.info.run_id):
                found[reference] = version
    return [found[key] for key in sorted(found)]


def record_references(runs: list[Run], versions: list) -> References:
    """This store's ids and versions -> the record's: the same, except for what was imported from a record."""
    references = References()
    for run in runs:
        references.runs[run.info.run_id] = run.data.tags.get(layout.SOURCE_RUN_ID_TAG, run.info.run_id)
    for version in versions:
        references.versions[version.name, str(version.version)] = version.tags.get(layout.SOURCE_VERSION_TAG,
                                                                                   str(version.version))
        if logged_model_id(version) and layout.SOURCE_MODEL_TAG in version.tags:
            references.models[logged_model_id(version)] = version.tags[layout.SOURCE_MODEL_TAG]
    return references


def export_run(client: MlflowClient, run: Run, root: Path, role: str, references: References, with_checkpoints: bool,
               model_outputs: list[str]) -> ExportedRun:
    """One run's folder, under the record's id, replaced whole, and only when what it records changed."""
    experiment = experiment_folder(root, client.get_experiment(run.info.experiment_id))
    record_id = references.run(run.info.run_id)
    final = experiment / "runs" / record_id
    record = run_record(client, run, references, experiment.name, model_outputs)
    with tempfile.TemporaryDirectory(prefix=".staging-", dir=_made(root)) as scratch:
        staged = Path(scratch) / record_id
        artifacts = staged / "artifacts"
        artifacts.mkdir(parents=True)
        for entry in client.list_artifacts(run.info.run_id):
            if entry.path != CHECKPOINTS or with_checkpoints:
                client.download_artifacts(run.info.run_id, entry.path, str(artifacts))
        unchanged = _same_record(final / "run.json", record) and _same_files(final / "artifacts", artifacts)
        if not unchanged:
            layout.write_part(staged / "run.json", "export_run.py", record)
            layout.replace_folder(staged, final)
    return ExportedRun(record_id, run.info.run_name, role, run.info.status, layout.folder_bytes(final), not unchanged)


def run_record(client: MlflowClient, run: Run, references: References, experiment_id: str,
               model_outputs: list[str]) -> dict[str, Any]:
    """run.json's `mlflow` part, as mlflow-export-import writes it (metric points without its null fields)."""
    info = {"run_id": references.run(run.info.run_id), "experiment_id": experiment_id, "user_id": run.info.user_id,
            "status": run.info.status, "start_time": run.info.start_time, "end_time": run.info.end_time,
            "lifecycle_stage": run.info.lifecycle_stage, "run_name": run.info.run_name}
    metrics = {key: [{"value": m.value, "timestamp": m.timestamp, "step": m.step}
                     for m in sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: (m.step, m.timestamp))]
               for key in sorted(run.data.metrics)}
    inputs = sorted(({"dataset": {"name": d.dataset.name, "digest": d.dataset.digest, "source_type": d.dataset.source_type,
                                  "source": d.dataset.source, "schema": d.dataset.schema, "profile": d.dataset.profile},
                      "tags": [{"key": t.key, "value": t.value} for t in d.tags]}
                     for d in (run.inputs.dataset_inputs if run.inputs else [])), key=lambda d: str(d))
    tags = {k: v for k, v in references.tags(run.data.tags).items() if k != layout.SOURCE_RUN_ID_TAG}
    return {"info": info, "params": dict(sorted(run.data.params.items())), "metrics": metrics,
            "tags": dict(sorted(tags.items())), "inputs": {"dataset_inputs": inputs, "model_inputs": []},
            "outputs": {"model_outputs": [{"model_id": m, "step": 0} for m in sorted(model_outputs)]}}


def export_logged_model(client: MlflowClient, model_id: str, root: Path, references: References) -> None:
    """A registered version's files (MLflow 3 keeps them in a logged model, not among the run's artifacts)."""
    import mlflow

    model = client.get_logged_model(model_id)
    final = experiment_folder(root, client.get_experiment(model.experiment_id)) / "logged_models" / model_id
    if (final / "logged_model.json").exists():
        return  # a finalized logged model does not change
    record = {"experiment_id": final.parent.parent.name, "model_id": model_id, "name": model.name,
              "creation_time": model.creation_timestamp, "model_type": model.model_type,
              "source_run_id": references.run(model.source_run_id), "status": "READY",
              "tags": dict(sorted(model.tags.items())), "params": dict(sorted(model.params.items())), "metrics": [],
              "model_uri": f"models:/{model_id}"}
    with tempfile.TemporaryDirectory(prefix=".staging-", dir=_made(root)) as scratch:
        staged = Path(scratch) / model_id
        mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model_id}", dst_path=str(staged / "artifacts"))
        layout.write_part(staged / "logged_model.json", "export_logged_model.py", record)
        layout.replace_folder(staged, final)


def write_registered_models(client: MlflowClient, root: Path, versions: list, references: References) -> None:
    """models/<name>/model.json for each registered model, with the versions of this study (merged with those an
    earlier export of the folder wrote), and models/models.json."""
    by_name: dict[str, dict[str, Any]] = {}
    for version in versions:
        record = version_record(version, references)
        by_name.setdefault(version.name, {})[record["version"]] = record
    for name, records in by_name.items():
        path = layout.registered_model_file(root, name)
        earlier = {v["version"]: v for v in layout.read_part(path)["registered_model"]["versions"]} if path.exists() else {}
        merged = {**earlier, **records}
        model = client.get_registered_model(name)
        aliases = sorted({(a["alias"], a["version"]) for v in merged.values() for a in
                          ({"alias": alias, "version": v["version"]} for alias in v["aliases"])})
        part = {"registered_model": {
            "name": name, "description": model.description or "",
            "tags": [{"key": k, "value": v} for k, v in sorted(model.tags.items())],
            "aliases": [{"alias": alias, "version": version} for alias, version in aliases],
            "versions": [merged[v] for v in sorted(merged, key=int)]}}
        _write_if_changed(path, "export_model.py", part, {"num_src_versions": len(merged)})
    names = sorted(p.parent.name for p in (root / "models").glob("*/model.json"))
    if names:
        _write_if_changed(root / "models" / "models.json", "export_models.py", {"models": names},
                          {"num_total_models": len(names)})


def version_record(version, references: References) -> dict[str, Any]:
    number = references.versions.get((version.name, str(version.version)), str(version.version))
    model_id = references.models.get(logged_model_id(version), logged_model_id(version))
    own = {layout.SOURCE_VERSION_TAG, layout.SOURCE_VERSION_RUN_TAG, layout.SOURCE_MODEL_TAG}
    return {"name": version.name, "version": number, "description": version.description or "", "current_stage": version.current_stage or "None",
            "source": f"models:/{model_id}" if model_id else version.source, "run_id": references.run(version.run_id),
            "status": version.status, "tags": {k: v for k, v in sorted(version.tags.items()) if k not in own},
            "aliases": sorted(version.aliases), "model_id": model_id}


def logged_model_id(version) -> str | None:
    """The logged model holding a registered version's files (MLflow 3.18 names it in the source alone)."""
    source = version.source or ""
    return version.model_id or (source.removeprefix("models:/") if source.startswith("models:/m-") else None)


def experiment_folder(root: Path, experiment) -> Path:
    """The folder of `experiment` in the record: the one of its name if the record has one, else its id's."""
    folders = root / "experiments"
    for existing in sorted(folders.glob("*/experiment.json")):
        if layout.read_part(existing)["experiment"]["name"] == experiment.name:
            return existing.parent
    name, suffix = experiment.experiment_id, 1
    while (folders / name).exists():  # that id is another experiment's in the store the record began in
        suffix += 1
        name = f"{experiment.experiment_id}-{suffix}"
    return folders / name


def write_experiment(client: MlflowClient, root: Path, experiment_id: str) -> None:
    """experiment.json (the experiment and the runs its folder holds), and experiments.json over all of them."""
    experiment = client.get_experiment(experiment_id)
    folder = experiment_folder(root, experiment)
    runs = sorted(p.name for p in (folder / "runs").glob("*") if (p / "run.json").exists())
    models = sorted(p.name for p in (folder / "logged_models").glob("*") if (p / "logged_model.json").exists())
    tags = {k: v for k, v in sorted(experiment.tags.items()) if not k.startswith("mlflow_exim.")}
    part = {"experiment": {"experiment_id": folder.name, "name": experiment.name, "lifecycle_stage": "active",
                           "tags": tags}, "runs": runs, "logged_models": models, "traces": []}
    info = {"num_total_runs": len(runs), "num_ok_runs": len(runs), "num_failed_runs": 0, "failed_runs": []}
    _write_if_changed(folder / "experiment.json", "export_experiment.py", part, info)
    summary = [{"id": path.parent.name, "name": part["experiment"]["name"], "runs": len(part["runs"])}
               for path in sorted((root / "experiments").glob("*/experiment.json")) for part in [layout.read_part(path)]]
    _write_if_changed(root / "experiments" / "experiments.json", "export_experiments.py", {"experiments": summary},
                      {"num_total_experiments": len(summary)})


def write_manifest(root: Path, study: Run, report: ExportReport, checkpoints: bool) -> None:
    """What a reader of the folder needs first: which study, which runs in which role, how big."""
    path = root / layout.MANIFEST
    earlier = layout.read_part(path).get("runs", {}) if path.exists() else {}
    runs = {**earlier, **{r.run_id: {"name": r.name, "role": r.role, "status": r.status, "bytes": r.bytes}
                          for r in report.runs}}
    part = {"study": report.study_id, "study_name": study.info.run_name, "scale": study.data.tags.get("scale", ""),
            "checkpoints": checkpoints, "runs": dict(sorted(runs.items(), key=lambda item: (item[1]["role"], item[1]["name"])))}
    _write_if_changed(path, "export_study", part, {"num_runs": len(runs), "bytes": sum(r["bytes"] for r in runs.values())})


def _version_or_none(client: MlflowClient, name: str, version: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, version)
    except MlflowException:
        return None


def _unique(runs: list[tuple[Run, str]]) -> list[tuple[Run, str]]:
    seen, unique = set(), []
    for run, role in runs:
        if run.info.run_id not in seen:
            seen.add(run.info.run_id)
            unique.append((run, role))
    return unique


def _same_record(path: Path, record: dict[str, Any]) -> bool:
    try:
        return path.exists() and layout.read_part(path) == record
    except ValueError:
        return False


def _same_files(old: Path, new: Path) -> bool:
    def listing(folder: Path) -> set[str]:
        return {str(f.relative_to(folder)) for f in folder.rglob("*") if f.is_file()}
    names = listing(new)
    return old.is_dir() and listing(old) == names and all(filecmp.cmp(old / n, new / n, shallow=False) for n in names)


def _write_if_changed(path: Path, script: str, part: dict[str, Any], info: dict[str, Any]) -> None:
    """Rewrite an export file only when its content changed, so that exporting again leaves git's tree clean."""
    if not _same_record(path, part):
        layout.write_part(path, script, part, info)


def _made(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return root


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.2f} MB"
