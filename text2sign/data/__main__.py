"""python -m text2sign.data inspect SPEC [--decode]

Prints, per split, the number of samples, frames per clip (min / median / max), an example text, the
keypoint coverage where the corpus has keypoints (body and hands found, hand points the crop cuts off;
from a sample of the clips when the split is large) and the problems found. Exit codes: 0 every split is usable (problems with single samples are listed),
1 a split is missing, unreadable or has no usable sample, 2 a usage error.
"""

from __future__ import annotations

import argparse
import sys

from text2sign.config import ConfigError
from text2sign.data.inspect import format_reports, inspect_corpus
from text2sign.data.spec import parse_data_spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m text2sign.data", description="Check a sign-language corpus on disk.")
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("inspect", help="per split: samples, frames per clip, an example, keypoint coverage, problems")
    inspect.add_argument("spec", metavar="SPEC", help="phoenix2014t:PATH, how2sign:PATH or folder:PATH")
    inspect.add_argument("--decode", action="store_true",
                         help="decode every frame of every clip (finds damage past the header; reads the whole corpus)")
    args = parser.parse_args(argv)
    try:
        spec = parse_data_spec(args.spec, key="SPEC")
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if spec.kind == "synthetic":
        print("error: SPEC: synthetic is generated, not read from disk; inspect phoenix2014t:PATH, how2sign:PATH "
              "or folder:PATH.", file=sys.stderr)
        return 2
    reports = inspect_corpus(spec, decode=args.decode)
    print(format_reports(spec, reports))
    return 0 if all(r.usable for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
