"""What the end-to-end tests share: how to run an entry point as a user would, against a temporary store."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def subprocess_env(store: Path) -> dict[str, str]:
    """The environment of a child process that tracks into `store`/mlflow.db, offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{store / 'mlflow.db'}"
    env["PYTHONPATH"] = str(REPO)
    env["HF_HUB_OFFLINE"] = "1"
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    # `mlflow run --env-manager local` runs the entry point with the `python` on PATH: make it this one.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def mlflow_cli() -> list[str]:
    return [sys.executable, "-m", "mlflow"]
