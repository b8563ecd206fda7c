"""Entry point `export_study`: a study, its runs and its judge, into a folder a git repository can hold.

    mlflow run . -e export_study -P study=<study run id> -P output=study-export --env-manager local

The folder is in mlflow-export-import's layout (docs/studies.md#a-study-that-travels); `import_study` brings
it into any store. Exporting again into the same folder adds what is new and leaves unchanged runs untouched.
`-P checkpoints=true` adds the children's checkpoints and registered weights (hundreds of MB a `medium` run),
so that a stopped child can be continued, or a run served, where the study is imported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from text2sign.config import ConfigError

from mlproject.cli import check_run_id, flag
from mlproject.tracking.server_errors import reports_access_errors


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mlproject.export_study", description=__doc__.split("\n")[0])
    parser.add_argument("--study", required=True, help="the study run id (printed by the study as `study <id>: ...`)")
    parser.add_argument("--output", required=True, help="the folder to write (created; an earlier export there is updated)")
    parser.add_argument("--checkpoints", default="false", help="also the children's checkpoints and registered weights")
    return parser.parse_args(argv)


@reports_access_errors
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import mlflow

    from mlproject.export_import.exporting import export_study
    from mlproject.export_import.importing import run_here

    try:
        checkpoints = flag("checkpoints", args.checkpoints)
        study = run_here(mlflow.MlflowClient(), check_run_id(args.study.strip()))
        report = export_study(study, Path(args.output), checkpoints)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"study {report.study_id} exported:")
    print("\n".join(report.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
