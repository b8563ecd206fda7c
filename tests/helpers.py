"""What the end-to-end tests share: how to run an entry point as a user would, against a temporary store."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parent.parent


def subprocess_env(store: Path) -> dict[str, str]:
    """The environment of a child process that tracks into `store`/mlflow.db, offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{store / 'mlflow.db'}"
    env["PYTHONPATH"] = str(REPO)
    env["HF_HUB_OFFLINE"] = "1"
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    # FVD's I3D costs ~20 s of CPU per tiny evaluation, and a study evaluates every child: the tests that
    # check FVD is logged switch it back on.
    env["TEXT2SIGN_FVD"] = "off"
    # Scratch the entry points make goes inside the test's folder: a test can check that none is left, and
    # what is left goes with the folder rather than piling up in the machine's /tmp.
    scratch = store / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    env["TMPDIR"] = str(scratch)
    # `mlflow run --env-manager local` runs the entry point with the `python` on PATH: make it this one.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@contextmanager
def module_folder(request, tmp_path_factory, name: str) -> Iterator[Path]:
    """A folder that the tests of one module share, removed when the module is done unless one of them failed.

    pytest keeps `mktemp` folders to the end of the session, and a study's checkpoints take GBs: CI's disk
    is small. This is `tmp_path_retention_policy = "failed"` (pyproject) for module fixtures."""
    folder = tmp_path_factory.mktemp(name)
    failed_before = request.session.testsfailed
    yield folder
    if request.session.testsfailed == failed_before:
        shutil.rmtree(folder, ignore_errors=True)


def mlflow_cli() -> list[str]:
    return [sys.executable, "-m", "mlflow"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def mlflow_server(folder: Path, port: int, env: dict[str, str], backend_store_uri: str = "") -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1:`port`, its SQLite store and artifacts in `folder` (or the store
    `backend_store_uri` names, with the artifacts its runs point at); yields its URI.

    It runs in its own process group and is stopped with it: `mlflow server` starts uvicorn and job
    workers that a terminate() of the parent alone would leave running (and holding the port).
    """
    server_env = {**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(
        [*mlflow_cli(), "server", "--backend-store-uri", backend_store_uri or f"sqlite:///{folder / 'server.db'}", "--serve-artifacts",
         "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        cwd=folder, env=server_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mlflow server on port {port} did not start (exit code {server.poll()})") from None
                time.sleep(0.5)
        yield uri
    finally:
        stop_process_group(server)


def stop_process_group(leader: subprocess.Popen) -> None:
    """SIGTERM to the group, SIGKILL to what is left after 30 s; returns when no process of it remains."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(leader.pid, signum)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            leader.poll()  # reap the leader, or the group never looks empty
            try:
                os.killpg(leader.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
