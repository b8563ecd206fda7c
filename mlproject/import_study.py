"""Entry point `import_study`: a folder that `export_study` wrote, into this tracking store.

    mlflow run . -e import_study -P folder=study-export --env-manager local

Into the local SQLite file or a team's server (`MLFLOW_TRACKING_URI`). The runs keep their names, statuses,
times, parent links and metric histories, and their ids in the record as tag `mlflow_exim.run_info.run_id`;
the judge is registered again with its weights. Importing the same folder twice adds nothing, and a folder
that grew since adds only its new runs. Every command that takes a run id (`analyze -P study=`,
`study -P resume=`, `export_study -P study=`) also takes the id the record has.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from text2sign.config import ConfigError

from mlproject.tracking.server_errors import reports_access_errors


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mlproject.import_study", description=__doc__.split("\n")[0])
    parser.add_argument("--folder", required=True, help="a folder that export_study wrote")
    return parser.parse_args(argv)


@reports_access_errors
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import mlflow

    from mlproject.export_import.importing import import_folder

    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"error: folder: {folder} is not a folder; pass the folder export_study wrote "
              "(e.g. -P folder=docs/results/medium/study).", file=sys.stderr)
        return 2
    try:
        report = import_folder(folder.resolve())
    except (ConfigError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"imported {folder} into {mlflow.get_tracking_uri()}:")
    print("\n".join(report.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
