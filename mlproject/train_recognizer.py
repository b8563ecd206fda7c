"""Entry point `train_recognizer`: train the back-translation judge and register it.

    mlflow run . -e train_recognizer -P scale=small --env-manager local --experiment-name text2sign-recognizers

The judge trains on the corpus's train split at the scale's clip size and is scored on real val and
test clips (gloss combinations it never saw); it is registered as `text2sign-recognizer-<dataset>`,
which `evaluate` then finds by dataset and clip size.

A corpus with keypoints but no glosses (How2Sign with its OpenPose JSON) gets a pose-only judge, which reads
the signer's keypoints and no glosses; tag `judge_reads` says which (`glosses,keypoints`, `glosses` or
`keypoints`). Only a corpus with neither is refused.

`--learn-from all` trains the judge on every split, for a corpus that holds one recording of each sign (the
fingerspelling lexicon), whose held-out signs no judge could otherwise know; its real-clip figures are then of
clips it learned, and the registered version and every evaluation that uses it say so (`learned_from`).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from text2sign.config import Config, ConfigError, DataConfig, RecognizerSettings, flatten, settings_as_params, validate
from text2sign.data import DataError, check_corpus, has_glosses
from text2sign.data.real import corpus_has_keypoints
from text2sign.data.spec import parse_data_spec

from mlproject.cli import non_negative_int
from mlproject.tracking.server_errors import reports_access_errors

EXPERIMENT = "text2sign-recognizers"


@reports_access_errors
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        seed, settings, data, reads = checked_inputs(args)
    except (ConfigError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return train_and_register(args, seed, settings, data, reads)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mlproject.train_recognizer", description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="synthetic",
                        help="synthetic (default), phoenix2014t:PATH, how2sign:PATH (keypoints only: a pose-only "
                             "judge) or folder:PATH with glosses or keypoints")
    parser.add_argument("--scale", default="small", help="tiny | small | medium | large | full: the clip size of the runs it will judge")
    parser.add_argument("--seed", default="0")
    parser.add_argument("--epochs", default="", help="override the scale's epoch count")
    parser.add_argument("--learn-from", default="train", choices=("train", "all"),
                        help="train (default): the train split, scored on held-out signs; all: every split, for a "
                             "corpus with one recording per sign (its real-clip scores are then of clips it learned)")
    parser.add_argument("--drawings", default="1",
                        help="with --learn-from all: each clip drawn on this many signers (the corpus at as many "
                             "seeds), so that no signer's look names a sign")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--experiment", default="",
                        help=f"default: $MLFLOW_EXPERIMENT_NAME, else {EXPERIMENT}; under `mlflow run`, MLflow's")
    return parser.parse_args(argv)


def checked_inputs(args: argparse.Namespace) -> tuple[int, RecognizerSettings, DataConfig, str]:
    """The seed, the scale's settings, the judge's corpus and what the judge will read (`judge_reads`), before
    anything is tracked; ConfigError or DataError with what to change."""
    from evaluation.judge.recognizer import judge_reads
    from text2sign.scales import RECOGNIZER_SCALES, recognizer_data_config

    if args.scale not in RECOGNIZER_SCALES:
        raise ConfigError(f"scale: unknown scale {args.scale!r}. Known scales: {', '.join(RECOGNIZER_SCALES)}.")
    seed = non_negative_int("seed", args.seed)
    drawings_of(args)
    settings = RECOGNIZER_SCALES[args.scale]
    if args.epochs:
        settings = dataclasses.replace(settings, epochs=max(1, non_negative_int("epochs", args.epochs)))
    data = dataclasses.replace(recognizer_data_config(args.scale), name=str(parse_data_spec(args.data, key="data")))
    validate(Config(data=data))
    reads = judge_reads(has_glosses(data), corpus_has_keypoints(parse_data_spec(data.name)))
    if not reads:
        raise ConfigError(
            f"data: {data.name} has no glosses and no keypoints (How2Sign publishes no glosses; a folder corpus "
            "has them only with a glosses column in texts.csv), and the recognizer learns to read one or both, so "
            "it cannot be trained on this corpus. Extract keypoints once with MediaPipe for a pose-only judge: "
            f"python -m text2sign.data extract-keypoints {data.name}. Until then runs on it "
            "are evaluated without back-translation, FSD and pose (tag eval/backtranslation_status says so).")
    check_corpus(data)
    return seed, settings, data, reads


def drawings_of(args: argparse.Namespace) -> int:
    """How many times the judge draws each clip; ConfigError unless 1, or more with `--learn-from all`."""
    drawings = non_negative_int("drawings", args.drawings)
    if drawings < 1 or (drawings > 1 and args.learn_from != "all"):
        raise ConfigError(f"drawings: {args.drawings}; a judge draws each clip more than once only when it learns "
                          "every split (-P learn_from=all), since another corpus seed deals other splits. Use 1, or "
                          "add -P learn_from=all.")
    return drawings


def judge_steps(settings: RecognizerSettings, epochs_given: str) -> int:
    """The optimizer steps a judge takes unless `--epochs` says otherwise: what its scale's epochs are on the
    scale's synthetic corpus (`train_size` clips), so a judge for a small real corpus (the fingerspelling lexicon's
    462 training clips) learns as long as one for the synthetic corpus, over more epochs."""
    return 0 if epochs_given else settings.epochs * (settings.train_size // settings.batch_size)


def train_and_register(args: argparse.Namespace, seed: int, settings: RecognizerSettings, data: DataConfig,
                       reads: str) -> int:
    """Train the judge in an MLflow run that logs its settings and scores, and register it."""
    import mlflow

    from evaluation.judge.training import train_recognizer
    from mlproject.registry.recognizer_registry import recognizer_model_name, register_recognizer
    from mlproject.tracking.experiment import start_run
    from mlproject.tracking.tracker import MLflowTracker
    from text2sign.hardware import pick_device

    active = start_run(args.experiment, EXPERIMENT)
    tracker = MLflowTracker(active.info.run_id)
    status = "FAILED"
    drawings = drawings_of(args)  # checked already, by checked_inputs
    try:
        tracker.set_tags({"mlflow.runName": f"recognizer-{args.scale}-s{seed}", "dataset": data.name,
                          "scale": args.scale, "seed": str(seed), "role": "recognizer", "judge_reads": reads,
                          "judge_learned_from": args.learn_from})
        tracker.log_params({**settings_as_params(settings, "recognizer"), **{k: v for k, v in flatten(Config(data=data)).items()
                                                                if k.startswith("data.")}, "recognizer.seed": seed,
                            "recognizer.learn_from": args.learn_from,
                            "recognizer.drawings": drawings})
        recognizer, metrics = train_recognizer(
            data, epochs=settings.epochs, min_steps=judge_steps(settings, args.epochs), batch_size=settings.batch_size,
            lr=settings.lr, seed=seed, learn_from=args.learn_from,
            drawings=drawings, device=str(pick_device(args.device)), log=tracker.log_metrics,
        )
        tracker.log_metrics(metrics, step=0)
        version = register_recognizer(recognizer.cpu(), data, metrics, learned_from=args.learn_from)
        status = "FINISHED"
        scores = [f"{label} {metrics[key]:{form}}" for key, label, form in (
            ("recognizer/test_wer", "test WER", ".3f"), ("recognizer/test_bleu4", "BLEU-4", ".1f"),
            ("recognizer/test_keypoint_mje", "keypoint error (fraction of the frame)", ".3f")) if key in metrics]
        learned = " (clips it learned: --learn-from all)" if args.learn_from == "all" else ""
        print(f"registered {recognizer_model_name(data)} version {version} (reads {recognizer.reads}) on real "
              f"videos{learned}: {', '.join(scores) or 'no test score (no test clip has a keypoint seen)'}")
        return 0
    finally:
        mlflow.end_run(status=status)


if __name__ == "__main__":
    sys.exit(main())
