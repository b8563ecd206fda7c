"""python -m text2sign.data inspect SPEC [--decode]
python -m text2sign.data setup-extractor [--python PYTHON]
python -m text2sign.data extract-keypoints SPEC [--splits S ...] [--processes N] [--cache-dir DIR]

inspect prints, per split, the number of samples, frames per clip (min / median / max), an example text, the
keypoint coverage where the corpus has keypoints, shipped or extracted (body and hands found, hand points the
crop cuts off; from a sample of the clips when the split is large; NO HANDS where most clips show no hand)
and the problems found. Exit codes: 0 every split is usable (problems with single samples, and NO HANDS, are
listed),
1 a split is missing, unreadable or has no usable sample, 2 a usage error, or no fingerspelling lexicon (its
package not installed, or no data.csv in its PATH).

setup-extractor creates the keypoint extractor's own environment (mediapipe 0.10.21, numpy < 2), once;
extract-keypoints then extracts MediaPipe Holistic keypoints for every clip of the corpus into the
keypoint cache (see `text2sign.data.extract`). Exit codes: 0 every clip has its keypoints, 1 a clip
failed (each is named) or a split cannot be read, 2 a usage error or no extractor environment,
130 interrupted (a rerun goes on where it stopped).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from text2sign.config import ConfigError
from text2sign.data import extract
from text2sign.data.corpus_inspection import format_reports, inspect_corpus
from text2sign.data.real import SPLITS, read_index
from text2sign.data.records import DataError
from text2sign.data.spec import DataSpec, parse_data_spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m text2sign.data",
                                     description="Check a sign-language corpus on disk, or extract its keypoints.")
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("inspect", help="per split: samples, frames per clip, an example, keypoint coverage, problems")
    inspect.add_argument("spec", metavar="SPEC", help="phoenix2014t:PATH, how2sign:PATH, folder:PATH or fingerspelling[:PATH]")
    inspect.add_argument("--decode", action="store_true",
                         help="decode every frame of every clip (finds damage past the header; reads the whole corpus)")
    setup = commands.add_parser("setup-extractor",
                                help="create the keypoint extractor's environment (mediapipe 0.10.21), once",
                                description=f"Creates a virtual environment with {', '.join(extract.REQUIREMENTS)} at "
                                            f"{extract.DEFAULT_ENV} (or ${extract.ENV_VARIABLE}); ~1 GB, a minute.")
    setup.add_argument("--python", metavar="PYTHON", default=None,
                       help="the interpreter to build it from (default: this one); mediapipe needs CPython 3.9-3.12")
    keypoints = commands.add_parser("extract-keypoints",
                                    help="MediaPipe Holistic keypoints for every clip, into the keypoint cache")
    keypoints.add_argument("spec", metavar="SPEC", help="phoenix2014t:PATH, how2sign:PATH or folder:PATH")
    keypoints.add_argument("--splits", nargs="+", choices=SPLITS, default=list(SPLITS), help="default: all three")
    keypoints.add_argument("--processes", type=int, metavar="N", default=extract.default_processes(),
                           help="worker processes (default: one per core)")
    keypoints.add_argument("--cache-dir", type=Path, metavar="DIR", default=None,
                           help=f"where the keypoints are kept (default: {extract.default_cache_root()})")
    keypoints.add_argument("--model-complexity", type=int, metavar="N", default=extract.MODEL_COMPLEXITY,
                           help="MediaPipe's pose model; only 1 is in the wheel (0 and 2 would download)")
    args = parser.parse_args(argv)
    if args.command == "setup-extractor":
        try:
            print(f"the keypoint extractor is ready: {extract.setup_extractor(base_python=args.python)}")
        except extract.ExtractorMissing as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        return 0
    try:
        spec = parse_data_spec(args.spec, key="SPEC")
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if spec.kind == "synthetic":
        print(f"error: SPEC: synthetic is generated, not read from disk; {args.command} phoenix2014t:PATH, "
              "how2sign:PATH or folder:PATH.", file=sys.stderr)
        return 2
    if spec.kind == "fingerspelling" and args.command == "extract-keypoints":
        print(f"error: SPEC: {spec} holds MediaPipe Holistic keypoints already, and no video to extract them from.",
              file=sys.stderr)
        return 2
    if args.command == "inspect":
        try:
            reports = inspect_corpus(spec, decode=args.decode)
        except DataError as error:  # the fingerspelling lexicon's package or data.csv is missing
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(format_reports(spec, reports))
        return 0 if all(r.usable for r in reports) else 1
    return _extract_keypoints(spec, args)


def _extract_keypoints(spec: DataSpec, args: argparse.Namespace) -> int:
    if args.model_complexity != extract.MODEL_COMPLEXITY:
        print(f"error: --model-complexity {args.model_complexity}: only {extract.MODEL_COMPLEXITY} runs offline. "
              f"mediapipe {extract.worker.MEDIAPIPE_VERSION}'s wheel ships pose_landmark_full (complexity 1) and would "
              f"download the lite (0) or heavy (2) model from Google's servers at run time.", file=sys.stderr)
        return 2
    if args.processes < 1:
        print(f"error: --processes must be at least 1, got {args.processes}", file=sys.stderr)
        return 2
    try:
        python = extract.extractor_python()
    except extract.ExtractorMissing as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    records, problems = {}, []
    for split in dict.fromkeys(args.splits):
        try:
            index = read_index(spec, split)
        except DataError as error:
            print(f"error: {error} (--splits leaves a split out)", file=sys.stderr)
            return 1
        records[split] = index.records
        problems += index.problems
    if problems:
        print(f"{len(problems)} rows of the index name no usable clip and are left out (python -m text2sign.data "
              f"inspect {spec} lists them)", file=sys.stderr)
    cache_root = (args.cache_dir or extract.default_cache_root()).expanduser()
    try:
        summary = extract.extract_clips(extract.corpus_sources(records), cache_root, args.processes, python)
    except KeyboardInterrupt:
        print(f"interrupted: the clips extracted so far are kept in {cache_root}; the same command goes on from there",
              file=sys.stderr)
        return 130
    print(f"{spec} ({', '.join(records)}): {summary}\nkeypoints in {cache_root}")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
