"""Upload what a training run could not deliver because its tracking server was down when it ended.

    python -m mlproject.tracking.undelivered outputs/<run_id>/undelivered_tracking.json

The file lists, in order, the metrics, tags, artifacts (by local path) and the final status the run
held back. They go to the server the run used, or to MLFLOW_TRACKING_URI when it is set. Delivering
twice is harmless: metrics keep their original timestamps, and MLflow ignores exact duplicates.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient

from mlproject.tracking.server_errors import reports_access_errors
from mlproject.tracking.tracker import MLflowTracker, fail_fast_http

WAIT_S = 60.0


@reports_access_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlproject.tracking.undelivered", description=__doc__.split("\n")[0])
    parser.add_argument("path", type=Path, help="the undelivered_tracking.json a run wrote")
    args = parser.parse_args(argv)
    if not args.path.is_file():
        print(f"error: {args.path} does not exist; a run writes it next to its checkpoints "
              "(outputs/<run_id>/undelivered_tracking.json) only when something could not be delivered.",
              file=sys.stderr)
        return 2
    fail_fast_http()
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"]) if os.environ.get("MLFLOW_TRACKING_URI") else None
    tracker = MLflowTracker.from_undelivered(args.path, client)
    if not tracker.finish(WAIT_S, args.path):
        return 1
    done = args.path.with_suffix(".delivered.json")
    args.path.rename(done)
    print(f"delivered to run {tracker.run_id}; the file is kept as {done}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
