"""The team server as a lab runs it, for tests: `python -m mlproject.server` on a throwaway PostgreSQL cluster,
loopback only, with users logging in by the MLFLOW_TRACKING_* variables."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tests.helpers import stop_process_group, subprocess_env
from tests.postgres import Cluster

ADMIN = "admin"


@dataclass(frozen=True)
class Secrets:
    """Every password of one lab, random so that a search for them cannot match anything by chance."""
    postgres: str = f"pg-{secrets.token_hex(12)}"
    database: str = f"db-{secrets.token_hex(12)}"
    admin: str = f"admin-{secrets.token_hex(12)}"
    alice: str = f"alice-{secrets.token_hex(12)}"
    bob: str = f"bob-{secrets.token_hex(12)}"

    def all(self) -> list[str]:
        return [self.postgres, self.database, self.admin, self.alice, self.bob]


@dataclass
class Server:
    uri: str
    process: subprocess.Popen


def server_env(folder: Path, cluster: Cluster, passwords: Secrets) -> dict[str, str]:
    env = subprocess_env(folder)
    env.pop("MLFLOW_TRACKING_URI")
    env.update({"TEXT2SIGN_DB_PASSWORD": passwords.database, "TEXT2SIGN_DB_ADMIN_PASSWORD": passwords.postgres,
                "MLFLOW_AUTH_ADMIN_USERNAME": ADMIN, "MLFLOW_AUTH_ADMIN_PASSWORD": passwords.admin,
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    return env


@contextmanager
def team_server(folder: Path, cluster: Cluster, port: int, passwords: Secrets) -> Iterator[Server]:
    """The server on 127.0.0.1:`port`, state and artifacts in `folder`; stopped (its whole process group) at the end."""
    command = [sys.executable, "-m", "mlproject.server", "--host", "127.0.0.1", "--port", str(port),
               "--db-port", str(cluster.port), "--state-dir", str(folder / "server-state"),
               "--artifacts-destination", str(folder / "server-artifacts"), "--workers", "1"]
    with (folder / "server.log").open("a") as log:
        process = subprocess.Popen(command, cwd=folder, env=server_env(folder, cluster, passwords), stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", process)
    try:
        _wait_until_healthy(server, folder / "server.log")
        yield server
    finally:
        stop_process_group(process)


def _wait_until_healthy(server: Server, log: Path) -> None:
    # About 15 s on an idle machine; minutes when other jobs hold the cores.
    deadline = time.monotonic() + 600
    while True:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{server.uri}/health", timeout=2):
                return
        if server.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the team server did not start (exit {server.process.poll()}):\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def user_env(folder: Path, uri: str, user: str, password: str) -> dict[str, str]:
    """A researcher's shell: the server and their login, nothing else of MLflow's."""
    env = subprocess_env(folder)
    env.update({"MLFLOW_TRACKING_URI": uri, "MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password,
                # On a loaded test machine one server worker can take longer than the 20 s a training process
                # waits by default (mlproject.tracking.tracker.FAIL_FAST_HTTP) before it calls the server unreachable.
                "MLFLOW_HTTP_REQUEST_TIMEOUT": "120"})
    return env


@contextmanager
def logged_in(user: str, password: str) -> Iterator[None]:
    """This process's MLflow calls as `user` (MLflow reads the login from the environment at each request)."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    os.environ.update({"MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
