"""A folder into a tracking store (the local SQLite file, a team's server): the runs it records, their parent
links, and the registered versions whose files it holds (the judge's).

Importing brings the store up to the record. A run the store already has (it carries the record's id in tag
`mlflow_exim.run_info.run_id`, or is that id, in the store the record came from) gets only what it lacks: params,
metric points, dataset inputs, artifacts, tags, its status. So importing a folder twice adds nothing, and
importing a folder that grew since (a study exported after each child) adds the new runs alone. Runs keep
their names, start and end times, statuses and every metric point's step and timestamp; tags that name another
run or a registered version are translated into this store's (references.py).
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from text2sign.config import ConfigError

from mlproject.export_import import layout
from mlproject.export_import.references import References
from mlproject.tracking.server_errors import is_access_problem

_BATCH = 500  # metric points per log_batch call: MLflow's REST API takes up to 1,000


@dataclass
class RunRecord:
    """One run as the folder records it: run.json's `mlflow` part and where its artifacts lie."""

    experiment: dict[str, Any]
    record: dict[str, Any]
    folder: Path

    @property
    def run_id(self) -> str:
        return self.record["info"]["run_id"]

    @property
    def name(self) -> str:
        return self.record["info"].get("run_name") or self.record["tags"].get("mlflow.runName", self.run_id)

    @property
    def parent(self) -> str | None:
        return self.record["tags"].get("mlflow.parentRunId")


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)  # already here, given what they lacked
    unchanged: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    references: References = field(default_factory=References)  # the record's ids -> this store's

    def lines(self) -> list[str]:
        return [f"  {what}: {', '.join(names) if names else 'none'}" for what, names in
                (("new runs", self.created), ("completed", self.completed), ("already here", self.unchanged),
                 ("registered", self.versions))]


def import_folder(folder: Path, client: MlflowClient | None = None) -> ImportReport:
    """Bring the store `client` speaks to up to what `folder` records; returns what changed."""
    client = client or MlflowClient()
    records = parents_first(read_runs(folder))
    report = ImportReport()
    here: dict[str, str] = {}
    for record in records:
        run_id, created = find_or_create(client, record)
        report.references.runs[record.run_id] = here[record.run_id] = run_id
        changed = [sync_params(client, run_id, record), sync_metrics(client, run_id, record),
                   sync_inputs(client, run_id, record), sync_artifacts(client, run_id, record.folder / "artifacts")]
        (report.created if created else report.completed if any(changed) else report.unchanged).append(record.name)
    import_registered_versions(client, folder, report)
    for record in records:
        changed = sync_tags(client, here[record.run_id], record, report.references)
        changed = sync_status(client, here[record.run_id], record) or changed
        if changed and record.name in report.unchanged:
            report.unchanged.remove(record.name)
            report.completed.append(record.name)
    return report


def read_runs(folder: Path) -> list[RunRecord]:
    """Every run of every experiment folder, with a clear error where the folder is not an export."""
    experiments = sorted((folder / "experiments").glob("*/experiment.json"))
    if not experiments:
        raise ConfigError(f"folder: {folder} holds no experiments/*/experiment.json; pass a folder that "
                          "`export_study` wrote (or mlflow-export-import's export-all).")
    runs = []
    for path in experiments:
        experiment = layout.read_part(path)
        for run_id in experiment["runs"]:
            run_path = path.parent / "runs" / run_id / "run.json"
            if not run_path.exists():
                raise ConfigError(f"folder: {path} lists run {run_id}, but {run_path} is missing; export the study again.")
            runs.append(RunRecord(experiment["experiment"], layout.read_part(run_path), run_path.parent))
    return runs


def parents_first(records: list[RunRecord]) -> list[RunRecord]:
    """Each parent before its children (the study before its runs), otherwise in the order given."""
    by_id = {r.run_id: r for r in records}
    ordered: list[RunRecord] = []

    def place(record: RunRecord) -> None:
        if record in ordered:
            return
        if record.parent in by_id:
            place(by_id[record.parent])
        ordered.append(record)

    for record in records:
        place(record)
    return ordered


def find_or_create(client: MlflowClient, record: RunRecord) -> tuple[str, bool]:
    """(this store's id of the run, whether it was created now)."""
    experiment_id = experiment_here(client, record.experiment)
    try:
        run = client.get_run(record.run_id)  # the store it came from
        if run.info.lifecycle_stage == "active":
            return run.info.run_id, False
    except MlflowException:
        pass
    found = client.search_runs([experiment_id], f"tags.`{layout.SOURCE_RUN_ID_TAG}` = '{record.run_id}'",
                               run_view_type=ViewType.ACTIVE_ONLY, max_results=1)
    if found:
        return found[0].info.run_id, False
    tags = record.record["tags"]
    run = client.create_run(experiment_id, start_time=record.record["info"].get("start_time"), run_name=record.name,
                            tags={"mlflow.user": tags.get("mlflow.user", record.record["info"].get("user_id", "")),
                                  layout.SOURCE_RUN_ID_TAG: record.run_id})
    return run.info.run_id, True


def experiment_here(client: MlflowClient, experiment: dict[str, Any]) -> str:
    """The store's experiment of that name, created where it has none; given the record's tags it lacks."""
    found = client.get_experiment_by_name(experiment["name"])
    if found is not None:
        for key, value in (experiment.get("tags") or {}).items():
            if key not in found.tags:  # e.g. its kind, which opens it in the UI's training view
                client.set_experiment_tag(found.experiment_id, key, value)
        return found.experiment_id
    try:
        return client.create_experiment(experiment["name"], tags=experiment.get("tags") or None)
    except MlflowException:  # created meanwhile by another process
        return client.get_experiment_by_name(experiment["name"]).experiment_id


def sync_params(client: MlflowClient, run_id: str, record: RunRecord) -> bool:
    """Log the params the run lacks; a param with another value here is an error (params never change)."""
    have = client.get_run(run_id).data.params
    for key, value in record.record["params"].items():
        if key in have and have[key] != value:
            raise ConfigError(f"run {record.name} ({run_id}) has param {key}={have[key]!r} where the record has "
                              f"{value!r}: they are not the same run. Import into another experiment or store.")
    missing = [Param(k, v) for k, v in record.record["params"].items() if k not in have]
    for start in range(0, len(missing), 100):
        client.log_batch(run_id, params=missing[start:start + 100])
    return bool(missing)


def sync_metrics(client: MlflowClient, run_id: str, record: RunRecord) -> bool:
    """Log every metric point the run lacks, with its own step and timestamp."""
    missing = []
    for key, points in record.record["metrics"].items():
        have = {_point(m.value, m.timestamp, m.step) for m in client.get_metric_history(run_id, key)}
        missing += [Metric(key, p["value"], p["timestamp"], p["step"]) for p in points
                    if _point(p["value"], p["timestamp"], p["step"]) not in have]
    for start in range(0, len(missing), _BATCH):
        client.log_batch(run_id, metrics=missing[start:start + _BATCH])
    return bool(missing)


def sync_inputs(client: MlflowClient, run_id: str, record: RunRecord) -> bool:
    run = client.get_run(run_id)
    have = {_dataset_key(d.dataset.name, d.dataset.digest, {t.key: t.value for t in d.tags})
            for d in (run.inputs.dataset_inputs if run.inputs else [])}
    missing = [DatasetInput(Dataset.from_dictionary(d["dataset"]), [InputTag(t["key"], t["value"]) for t in d["tags"]])
               for d in record.record.get("inputs", {}).get("dataset_inputs", [])
               if _dataset_key(d["dataset"]["name"], d["dataset"]["digest"], {t["key"]: t["value"] for t in d["tags"]})
               not in have]
    if missing:
        client.log_inputs(run_id, datasets=missing)
    return bool(missing)


def sync_artifacts(client: MlflowClient, run_id: str, artifacts: Path) -> bool:
    """Upload each file the run lacks, or holds at another size."""
    have = artifact_sizes(client, run_id)
    missing = [f for f in sorted(artifacts.rglob("*"))
               if f.is_file() and have.get(str(f.relative_to(artifacts))) != f.stat().st_size]
    for path in missing:
        folder = str(path.parent.relative_to(artifacts))
        client.log_artifact(run_id, str(path), None if folder == "." else folder)
    return bool(missing)


def artifact_sizes(client: MlflowClient, run_id: str, path: str | None = None) -> dict[str, int]:
    sizes = {}
    for entry in client.list_artifacts(run_id, path):
        if entry.is_dir:
            sizes.update(artifact_sizes(client, run_id, entry.path))
        else:
            sizes[entry.path] = entry.file_size
    return sizes


def sync_tags(client: MlflowClient, run_id: str, record: RunRecord, references: References) -> bool:
    """The record's tags, translated into this store's ids and versions; the run's own record id beside them."""
    wanted = references.tags(record.record["tags"])
    if run_id != record.run_id:
        wanted[layout.SOURCE_RUN_ID_TAG] = record.run_id
    have = client.get_run(run_id).data.tags
    changed = [RunTag(k, v) for k, v in wanted.items() if have.get(k) != v]
    for start in range(0, len(changed), 100):
        client.log_batch(run_id, tags=changed[start:start + 100])
    return bool(changed)


def sync_status(client: MlflowClient, run_id: str, record: RunRecord) -> bool:
    """A finished, failed or killed run ends as it ended, at the time it ended; a running one is left running."""
    info = record.record["info"]
    run = client.get_run(run_id)
    if info["status"] in ("RUNNING", "SCHEDULED") or (run.info.status, run.info.end_time) == (info["status"], info.get("end_time")):
        return False
    client.set_terminated(run_id, info["status"], end_time=info.get("end_time"))
    return True


def import_registered_versions(client: MlflowClient, folder: Path, report: ImportReport) -> None:
    """The registered versions whose files the folder holds, each registered once in this store."""
    for path in sorted((folder / "models").glob("*/model.json")):
        model = layout.read_part(path)["registered_model"]
        for version in model["versions"]:
            files = next(folder.glob(f"experiments/*/logged_models/{version.get('model_id')}/logged_model.json"), None)
            run_here = report.references.runs.get(version["run_id"])
            if files is None or run_here is None:
                continue  # metadata only (a child exported without checkpoints): nothing to load, so no version
            number, created = version_here(client, model, version, files.parent, run_here)
            report.references.versions[model["name"], version["version"]] = number
            if created:
                report.versions.append(f"{model['name']} version {number} (version {version['version']} in the record)")


def version_here(client: MlflowClient, model: dict[str, Any], version: dict[str, Any], files: Path, run_here: str
                 ) -> tuple[str, bool]:
    """This store's number for the record's version, registering it (files, tags, aliases) where it is missing."""
    name = model["name"]
    for candidate in client.search_model_versions(f"name='{name}'"):
        same_origin = candidate.version == version["version"] and candidate.run_id == version["run_id"] == run_here
        imported = (candidate.tags.get(layout.SOURCE_VERSION_TAG) == version["version"]
                    and candidate.tags.get(layout.SOURCE_VERSION_RUN_TAG) == version["run_id"])
        if same_origin or imported:
            return str(candidate.version), False
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, tags={t["key"]: t["value"] for t in model.get("tags", [])},
                                       description=model.get("description") or None)
    model_id = log_model_files(client, files, run_here)
    created = client.create_model_version(
        name, source=f"models:/{model_id}", run_id=run_here, description=version.get("description") or None,
        model_id=model_id, tags={**version.get("tags", {}), layout.SOURCE_VERSION_TAG: version["version"],
                                 layout.SOURCE_VERSION_RUN_TAG: version["run_id"],
                                 layout.SOURCE_MODEL_TAG: version.get("model_id") or ""})
    taken = client.get_registered_model(name).aliases
    for alias in version.get("aliases", []):
        if alias not in taken:  # an alias this store already gives to another version stays there
            client.set_registered_model_alias(name, alias, created.version)
    return str(created.version), True


def log_model_files(client: MlflowClient, folder: Path, run_here: str) -> str:
    """A logged model in `run_here` holding the recorded files; returns its id. Its MLmodel is told its new
    run and model ids, which MLflow reads back when the model is loaded."""
    record = layout.read_part(folder / "logged_model.json")
    run = client.get_run(run_here)
    tags = {k: v for k, v in record.get("tags", {}).items() if k != "mlflow.modelVersions"}
    model = client.create_logged_model(run.info.experiment_id, name=record.get("name"), source_run_id=run_here,
                                       tags=tags or None, params=record.get("params") or None,
                                       model_type=record.get("model_type"))
    with tempfile.TemporaryDirectory(prefix="text2sign-import-") as scratch:
        files = Path(scratch) / "artifacts"
        shutil.copytree(folder / "artifacts", files)
        mlmodel = files / "MLmodel"
        if mlmodel.exists():
            description = yaml.safe_load(mlmodel.read_text())
            description.update(run_id=run_here, model_id=model.model_id)
            mlmodel.write_text(yaml.safe_dump(description, sort_keys=False))
        client.log_model_artifacts(model.model_id, str(files))
    client.finalize_logged_model(model.model_id, "READY")
    return model.model_id


def _point(value: float, timestamp: int, step: int) -> tuple:
    return (step, timestamp, "nan" if math.isnan(value) else value)


def _dataset_key(name: str, digest: str, tags: dict[str, str]) -> tuple:
    return (name, digest, tuple(sorted(tags.items())))


def run_here(client: MlflowClient, run_id: str) -> str:
    """This store's id of the run known as `run_id`: itself, or the run imported from a record where it had that
    id; `run_id` unchanged when neither is here (the caller says there is no such run)."""
    try:
        client.get_run(run_id)
        return run_id
    except MlflowException as error:
        if is_access_problem(error):
            raise
    experiments = [e.experiment_id for e in client.search_experiments()]
    found = client.search_runs(experiments, f"tags.`{layout.SOURCE_RUN_ID_TAG}` = '{run_id}'", max_results=1) if experiments else []
    return found[0].info.run_id if found else run_id
