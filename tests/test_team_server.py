"""The team's tracking server end to end, as docs/server.md sets it up: `python -m mlproject.server` on a real
PostgreSQL cluster, artifacts served, basic auth. One researcher runs a tiny study (three runs at once), the
database restarts, she analyzes it; a second researcher reads all of it and can write none of it; bad logins,
missing permissions and a missing server are one plain line each; a server killed mid-run costs no point;
and nothing the lab stored, in the database or in files, holds a password."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.server import get_app_client
from mlflow.tracking import MlflowClient

from tests.helpers import free_port, module_folder, subprocess_env
from tests.postgres import SUPERUSER, Cluster, postgres_cluster
from tests.team_server import ADMIN, Secrets, Server, logged_in, team_server, user_env

pytestmark = pytest.mark.slow

EXPERIMENT = "text2sign-ablations"
CHILD_OVERRIDES = "train.num_sample_prompts=0 diffusion.sample_steps=2 train.checkpoint_every=2"
CHAMPION_METRIC = "eval/temporal_consistency"  # the children evaluate through the server as they finish


@dataclass
class Lab:
    folder: Path
    cluster: Cluster
    server: Server
    passwords: Secrets
    study_id: str = ""
    figures: dict = field(default_factory=dict)

    def env(self, user: str, password: str) -> dict[str, str]:
        return user_env(self.folder, self.server.uri, user, password)


def _run(args: list[str], folder: Path, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def lab(request, tmp_path_factory):
    """The server on PostgreSQL with researchers alice and bob; alice's tiny study (3 runs at once), then a
    PostgreSQL restart, then her analysis of it."""
    passwords = Secrets()
    with module_folder(request, tmp_path_factory, "lab") as folder, postgres_cluster(passwords.postgres) as cluster, \
            team_server(folder, cluster, free_port(), passwords) as server:
        with logged_in(ADMIN, passwords.admin):
            users = get_app_client("basic-auth", tracking_uri=server.uri)
            users.create_user("alice", passwords.alice)
            users.create_user("bob", passwords.bob)
        lab = Lab(folder, cluster, server, passwords)
        (folder / "half_lr.py").write_text('"""Half the learning rate."""\noverrides = {"train.lr": 5e-4}\n')
        alice = lab.env("alice", passwords.alice)
        started = time.perf_counter()
        study = _run([sys.executable, "-m", "mlproject.study", "--ablations", f"baseline,no_ema,{folder / 'half_lr.py'}",
                      "--seeds", "1", "--scale", "tiny", "--parallel", "3",
                      "--overrides", f"{CHILD_OVERRIDES} train.output_dir={folder / 'outputs'}"], folder, alice)
        lab.figures["seconds"] = time.perf_counter() - started
        assert study.returncode == 0, study.stdout[-3000:] + study.stderr[-3000:]
        lab.study_id = re.search(r"study ([0-9a-f]{32}):", study.stdout).group(1)
        cluster.stop()  # the database goes down between training and analysis, and comes back
        cluster.start()
        analysis = _run([sys.executable, "-m", "mlproject.analyze", "--study", lab.study_id,
                         "--output", str(folder / "analysis"), "--champion-metric", CHAMPION_METRIC], folder, alice)
        assert analysis.returncode == 0, analysis.stderr[-3000:]
        yield lab


def children(client: MlflowClient, study_id: str):
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    return client.search_runs([experiment], f"tags.study = '{study_id}' and tags.ablation != ''")


def test_three_runs_at_once_finish_with_every_point_in_postgresql(lab):
    with logged_in("alice", lab.passwords.alice):
        client = MlflowClient(lab.server.uri)
        runs = children(client, lab.study_id)
        assert len(runs) == 3 and all(run.info.status == "FINISHED" for run in runs)
        points = 0
        for run in runs:
            local = pd.read_csv(lab.folder / "outputs" / run.info.run_id / "logs" / "metrics.csv")
            for key in run.data.metrics:
                stored = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]
                assert len({step for step, _ in stored}) == len(stored), (run.info.run_name, key)
                points += len(stored)
                mine = local[local["metric"] == key]
                if len(mine):  # what the training process logged is what the store holds, to the bit
                    assert sorted(stored) == sorted(zip(mine["step"], mine["value"])), (run.info.run_name, key)
            assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == list(range(1, 9))
    assert not (lab.folder / "mlflow.db").exists()  # everything went through the server, nothing into a local store
    print(f"\nload: 3 runs at once, {points} metric points in PostgreSQL, {lab.figures['seconds']:.0f} s "
          "(the study, evaluation and registration included), 0 lost")


def test_the_study_analysis_and_champion_live_on_the_server_after_a_postgres_restart(lab):
    with logged_in("alice", lab.passwords.alice):
        client = MlflowClient(lab.server.uri)
        experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
        (analysis,) = client.search_runs([experiment], "tags.role = 'analysis'")
        assert analysis.info.status == "FINISHED" and analysis.data.tags["champion"].startswith("champion: text2sign")
        stored = {Path(a.path).name for a in client.list_artifacts(analysis.info.run_id, "analysis")}
        assert {"comparison_table.csv", "ABLATION_RESULTS_REPORT.txt"} <= stored
        champion = client.get_model_version_by_alias("text2sign", "champion")
        assert champion.run_id in {run.info.run_id for run in children(client, lab.study_id)}
        for ablation in ("baseline", "no_ema", "half_lr"):
            assert client.get_model_version_by_alias("text2sign", f"best-{ablation}")


def test_the_analysis_after_a_postgres_restart_equals_the_analysis_on_sqlite(lab):
    """The same runs, copied value by value into a SQLite store, analyze to the same tables."""
    sqlite = lab.folder / "sqlite"
    local = MlflowClient(f"sqlite:///{sqlite / 'mlflow.db'}")
    copy_into = local.create_experiment(EXPERIMENT, artifact_location=str(sqlite / "artifacts"))
    with logged_in("alice", lab.passwords.alice):
        server = MlflowClient(lab.server.uri)
        for run in children(server, lab.study_id):
            # Without the registry tag: the copy has no registry, and the champion is not what is compared.
            tags = {k: v for k, v in run.data.tags.items() if k != "registry/model"}
            copy = local.create_run(copy_into, tags=tags, run_name=run.info.run_name).info.run_id
            history = [m for key in run.data.metrics for m in server.get_metric_history(run.info.run_id, key)]
            for i in range(0, len(history), 1000):
                local.log_batch(copy, metrics=history[i : i + 1000])
            local.set_terminated(copy, run.info.status)
    # By experiment: the copies get new ids, and the study run they would point to is not in this store.
    out = _run([sys.executable, "-m", "mlproject.analyze", "--experiment", EXPERIMENT, "--output", str(sqlite / "analysis"),
                "--champion-metric", CHAMPION_METRIC], lab.folder, subprocess_env(sqlite))
    assert out.returncode == 0, out.stderr[-3000:]
    for table in ("comparison_table.csv", "comparison_table.md"):
        assert (sqlite / "analysis" / table).read_text() == (lab.folder / "analysis" / table).read_text()


def test_a_second_user_reads_the_study_and_serves_the_champion_but_cannot_write(lab):
    bob = lab.env("bob", lab.passwords.bob)
    with logged_in("bob", lab.passwords.bob):
        client = MlflowClient(lab.server.uri)
        runs = children(client, lab.study_id)
        assert len(runs) == 3
        champion = client.get_model_version_by_alias("text2sign", "champion")
        with pytest.raises(MlflowException) as refused:
            client.set_tag(runs[0].info.run_id, "note", "bob was here")
        assert refused.value.get_http_status_code() == 403
        with pytest.raises(MlflowException) as refused:
            client.set_registered_model_alias("text2sign", "champion", "1")
        assert refused.value.get_http_status_code() == 403

    analysis = _run([sys.executable, "-m", "mlproject.analyze", "--study", lab.study_id,
                     "--output", str(lab.folder / "bob-analysis"), "--champion-metric", CHAMPION_METRIC], lab.folder, bob)
    assert analysis.returncode == 2 and "Traceback" not in analysis.stderr
    assert "may read experiment 'text2sign-ablations'" in analysis.stderr
    assert "not logged as an analysis run" in analysis.stderr
    assert (lab.folder / "bob-analysis" / "comparison_table.csv").is_file()  # reading was enough to analyze

    port = free_port()
    serving = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/text2sign@champion",
                                "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
                               cwd=lab.folder, env=bob, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        answer = _post_when_up(f"http://127.0.0.1:{port}/invocations",
                               {"dataframe_records": [{"text": "hello"}], "params": {"steps": 2}}, serving)
        assert answer["predictions"][0]["gif_base64"].startswith("R0lGOD")
    finally:
        os.killpg(serving.pid, signal.SIGTERM)
        serving.wait(timeout=60)

    # Editing the registry is a grant away: the model's owner or an admin gives EDIT on it.
    with logged_in(ADMIN, lab.passwords.admin):
        get_app_client("basic-auth", tracking_uri=lab.server.uri).grant_user_permission(
            "bob", "registered_model", "text2sign", "EDIT")
    with logged_in("bob", lab.passwords.bob):
        MlflowClient(lab.server.uri).set_registered_model_alias("text2sign", "champion", champion.version)


def _post_when_up(url: str, payload: dict, server: subprocess.Popen) -> dict:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    deadline = time.monotonic() + 240
    while True:
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError) as error:
            if isinstance(error, urllib.error.HTTPError) or server.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_bad_logins_missing_permissions_and_no_server_are_one_plain_line_each(lab):
    def http_status(path: str, auth: tuple[str, str] | None = None, body: dict | None = None) -> int:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = "Basic " + b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request = urllib.request.Request(f"{lab.server.uri}{path}", data=json.dumps(body).encode() if body else None,
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    assert http_status("/api/2.0/mlflow/experiments/search?max_results=1") == 401
    with logged_in("alice", lab.passwords.alice):
        experiment = MlflowClient(lab.server.uri).get_experiment_by_name(EXPERIMENT).experiment_id
    assert http_status("/api/2.0/mlflow/runs/create", ("bob", lab.passwords.bob), {"experiment_id": experiment}) == 403

    wrong_password = "not-" + lab.passwords.alice
    no_server = f"http://127.0.0.1:{free_port()}"
    cases = {
        "401": (lab.env("alice", wrong_password), "refused the login of user 'alice' (HTTP 401)"),
        "403": (lab.env("bob", lab.passwords.bob), "user 'bob' has no permission for this"),
        "unreachable": ({**lab.env("alice", lab.passwords.alice), "MLFLOW_TRACKING_URI": no_server},
                        f"cannot reach the tracking server {no_server} (Connection refused)"),
        "password in uri": ({**lab.env("alice", ""), "MLFLOW_TRACKING_URI": lab.server.uri.replace(
            "http://", f"http://alice:{lab.passwords.alice}@")}, "MLFLOW_TRACKING_URI holds a password"),
    }
    train = [sys.executable, "-m", "mlproject.train", "--scale", "tiny", "--epochs", "1", "--evaluate", "false",
             "--register", "false", "--overrides", f"train.output_dir={lab.folder / 'refused'}"]
    processes = {name: subprocess.Popen(train, cwd=lab.folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True) for name, (env, _) in cases.items()}
    for name, process in processes.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 2, (name, err[-3000:])
        assert cases[name][1] in err and "Traceback" not in err, (name, err[-3000:])
        assert not any(secret in out + err for secret in [*lab.passwords.all(), wrong_password]), name


def test_a_server_killed_mid_run_and_restarted_loses_no_point(lab):
    # Last to use the server: it kills the module's server and leaves the restarted one stopped.
    # A refused connection fails at once: the outage starts at the first step after the kill.
    alice = {**lab.env("alice", lab.passwords.alice), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    steps = 16  # 2 epochs of 8 steps: still training when the server goes
    command = [sys.executable, "-m", "mlproject.train", "--scale", "tiny", "--epochs", "2", "--evaluate", "false",
               "--register", "false", "--experiment", "text2sign-outage", "--overrides",
               f"train.num_sample_prompts=0 train.batch_size=2 train.output_dir={lab.folder / 'outputs'}"]
    log = lab.folder / "outage.log"
    with log.open("w") as handle:
        training = subprocess.Popen(command, cwd=lab.folder, env=alice, stdout=handle, stderr=subprocess.STDOUT)
    with logged_in("alice", lab.passwords.alice):
        client = MlflowClient(lab.server.uri)
        run_id = _wait_for_step(client, training, log, 2)
        os.killpg(lab.server.process.pid, signal.SIGKILL)
        lab.server.process.wait(timeout=30)
        _wait_for_log(log, "the tracking server is unavailable at step", training)
        with team_server(lab.folder, lab.cluster, int(lab.server.uri.rsplit(":", 1)[1]), lab.passwords):
            assert training.wait(timeout=600) == 0, log.read_text()[-3000:]
            run = client.get_run(run_id)
            assert run.info.status == "FINISHED"
            assert [m.step for m in client.get_metric_history(run_id, "train/loss")] == list(range(1, steps + 1))
            first, last = map(int, re.match(r"steps (\d+)-(\d+): ", run.data.tags["tracking/outages"]).groups())
            assert first < steps and last >= first


def _wait_for_step(client: MlflowClient, process: subprocess.Popen, log: Path, step: int) -> str:
    deadline = time.monotonic() + 300
    while True:
        experiment = client.get_experiment_by_name("text2sign-outage")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        if runs and any(m.step >= step for m in client.get_metric_history(runs[0].info.run_id, "train/loss")):
            return runs[0].info.run_id
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"training never reached step {step} (exit {process.poll()}):\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def _wait_for_log(path: Path, pattern: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while not re.search(pattern, path.read_text()):
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{pattern!r} never appeared (exit {process.poll()}):\n{path.read_text()[-3000:]}")
        time.sleep(0.2)


def test_nothing_the_lab_stored_holds_a_password(lab):
    """Every row of both databases (runs, params, tags, metrics, registry, users) and every file the server,
    the runs and the entry points wrote: artifacts, config.json, metadata.json, logs, the server's state."""
    dumps = []
    for database in ("text2sign", "text2sign_auth"):
        dump = subprocess.run([str(lab.cluster.bin / "pg_dump"), "-h", "127.0.0.1", "-p", str(lab.cluster.port),
                               "-U", SUPERUSER, database], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PGPASSWORD": lab.passwords.postgres})
        assert dump.returncode == 0, dump.stderr
        dumps.append(dump.stdout)
    assert "model.channels" in dumps[0] and "train/loss" in dumps[0]  # the dump holds the runs' params and metrics
    files = [p for p in lab.folder.rglob("*") if p.is_file()]
    assert any(p.name == "metadata.json" for p in files) and any(p.name == "config.json" for p in files)
    assert any("server-artifacts" in p.parts for p in files)
    for secret in lab.passwords.all():
        assert not any(secret in dump for dump in dumps)
        found = [str(p) for p in files if secret.encode() in p.read_bytes()]
        assert not found, found
