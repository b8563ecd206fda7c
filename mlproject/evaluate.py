"""Entry point `evaluate`: score a trained run on the test split and log `eval/*` into that run.

    mlflow run . -e evaluate -P run_id=<run id> --env-manager local
    python -m mlproject.evaluate --run-id <run id> --num-videos 64 --sampler ddim --steps 50

The weights evaluated are the EMA's unless the run trained without EMA, or `--weights raw|ema` asks for
one (tag `eval_weights`); the raw weights of the same step tell what the EMA adds. Metrics
whose networks are not on this machine are skipped with a `*_status` tag that says how to get them;
`--strict true` turns that into an error.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from text2sign.config import DEFAULT_GUIDANCE_SWEEP, ConfigError, EvalSettings

from mlproject.cli import check_run_id, flag, non_negative_int, optional_float
from mlproject.tracking.server_errors import reports_access_errors

# PyTorch, the metrics' networks and MLflow load only once the parameters are known to be good: a usage error
# answers in a second (it took 12-22 s on 2 cores when everything was imported first).

# FVD runs I3D at 224x224, about a second per clip on one CPU core: a CPU-only session (or a test suite)
# may switch it off; the run then says so in eval/fvd_status rather than logging nothing silently.
FVD_SWITCH = "TEXT2SIGN_FVD"


@dataclass(frozen=True)
class EvaluateRequest:
    """Which model to evaluate, where, and how strictly; what it generates is `settings`."""

    run_id: str = ""
    model_uri: str = ""
    settings: EvalSettings = EvalSettings()
    strict: bool = False
    device: str = "auto"
    weights: str = "auto"  # auto: the EMA's unless the run trained without EMA; or "ema", "raw"
    # The entry point stops without a recognizer (back-translation is the point of evaluating);
    # evaluation at the end of training skips those metrics instead, so training never fails for it.
    require_recognizer: bool = True
    # A registered judge, `<name>/<version>`, rather than the newest that fits: a study reads every child with one.
    judge: str = ""


def parse_args(argv: list[str] | None = None) -> EvaluateRequest:
    parser = argparse.ArgumentParser(prog="python -m mlproject.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--run-id", default="")
    parser.add_argument("--model-uri", default="", help="runs:/<id>, models:/<name>/<version> or models:/<name>@<alias>")
    parser.add_argument("--num-videos", default="0", help="test texts to generate for; 0 = the run's data.test_size. More asks the corpus for more of its "
                        "test split (the synthetic corpus draws them; a real one gives what it holds)")
    parser.add_argument("--sampler", default="", help="ddim | dpmsolver++ (default: the run's)")
    parser.add_argument("--steps", default="0", help="sampling steps (default: the run's)")
    parser.add_argument("--guidance", default="", help="classifier-free guidance scale (default: the run's)")
    parser.add_argument("--seed", default="0")
    parser.add_argument("--batch-size", default="auto",
                        help="videos generated at once; auto (default): the fastest per video on this device, timed "
                             "first. Each video has its own noise, so the batch size changes the time, not the figures")
    parser.add_argument("--strict", default="false", help="true: a metric that cannot be computed is an error")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--weights", default="auto", help="auto (the EMA's unless the run trained without EMA), ema or raw")
    parser.add_argument("--steering", default="true", help="also generate from empty and shuffled texts (eval/steer_*)")
    parser.add_argument("--steering-videos", default=str(EvalSettings.steering_videos),
                        help="the steering check on the first N of the evaluated texts; 0 = all of them")
    parser.add_argument("--judge", default="",
                        help="the registered recognizer to read the videos with, as <name>/<version> (default: the "
                             "newest registered for the run's corpus and clip size)")
    parser.add_argument("--guidance-sweep", default="auto",
                        help="comma-separated guidance scales to compare; auto: "
                             f"{','.join(f'{g:g}' for g in DEFAULT_GUIDANCE_SWEEP)} (1 alone for a run trained "
                             "without caption dropout); none: no sweep")
    args = parser.parse_args(argv)
    if bool(args.run_id) == bool(args.model_uri):
        raise ConfigError("evaluate: give exactly one of run_id (a training run) or model_uri (a registered model).")
    if args.run_id:
        check_run_id(args.run_id)
    if args.sampler not in ("", "ddim", "dpmsolver++"):
        raise ConfigError(f"sampler: got {args.sampler!r}, expected 'ddim' or 'dpmsolver++'.")
    if args.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device: got {args.device!r}, expected auto, cpu or cuda.")
    if args.weights not in ("auto", "ema", "raw"):
        raise ConfigError(f"weights: got {args.weights!r}, expected auto, ema or raw.")
    settings = EvalSettings(
        num_videos=non_negative_int("num_videos", args.num_videos) or None, sampler=args.sampler or None,
        steps=non_negative_int("steps", args.steps) or None, guidance=optional_float("guidance", args.guidance),
        seed=non_negative_int("seed", args.seed), batch_size=batch_size_of(args.batch_size),
        steering=flag("steering", args.steering), steering_videos=non_negative_int("steering_videos", args.steering_videos),
        guidance_sweep=parse_scales(args.guidance_sweep),
    )
    if settings.guidance is not None and settings.guidance < 1:
        raise ConfigError(f"guidance: {settings.guidance} is below 1; 1 means no guidance.")
    return EvaluateRequest(run_id=args.run_id, model_uri=args.model_uri, settings=settings,
                           strict=flag("strict", args.strict), device=args.device, weights=args.weights,
                           judge=args.judge.strip())


def batch_size_of(text: str) -> int:
    """A batch size of at least 1, or 0 for `auto` (the fastest on the device, timed at evaluation)."""
    if text.strip() == "auto":
        return 0
    try:
        size = non_negative_int("batch_size", text)
    except ConfigError:
        size = 0
    if size < 1:
        raise ConfigError(f"batch_size: got {text!r}; expected a whole number of at least 1, or auto.")
    return size


def parse_scales(text: str) -> tuple[float, ...] | None:
    """'1,2,4,7.5' -> (1.0, 2.0, 4.0, 7.5), each a guidance scale of at least 1, no repeats; 'auto' -> None."""
    if text.strip() == "auto":
        return None
    if text.strip() in ("", "none"):
        return ()
    scales = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        scale = optional_float("guidance_sweep", part)
        if not math.isfinite(scale) or scale < 1:
            raise ConfigError(f"guidance_sweep: {part} is below 1; 1 means no guidance. Example: 1,2,4,7.5")
        if scale not in scales:
            scales.append(scale)
    return tuple(scales)


def build_judges(data_config, scale: str, device, judge: str = ""):
    """Every judge that can be had on this machine, and for the others the reason and the fix."""
    from evaluation.evaluate_model import Judges, no_glosses_status
    from evaluation.metrics.i3d_weights import load_i3d
    from evaluation.metrics.lpips_metric import build_lpips, find_alexnet_weights
    from evaluation.metrics.stlpips_metric import build_stlpips
    from evaluation.metrics.weights import PretrainedWeightsMissing
    from mlproject.registry.recognizer_registry import load_recognizer_for
    from text2sign.data.real import CorpusFiles
    from text2sign.data.spec import parse_data_spec

    judges = Judges()
    corpus = CorpusFiles.open(parse_data_spec(data_config.name))
    # A corpus with keypoints but no glosses (How2Sign) has a pose-only judge, found the same way.
    if corpus.has_glosses() or corpus.has_keypoints():
        judges.recognizer, judges.recognizer_status = load_recognizer_for(data_config, scale, str(device), judge)
    else:  # no recognizer can exist: say why instead of asking for one to be trained
        judges.recognizer_status = no_glosses_status(data_config.name)
    if os.environ.get(FVD_SWITCH, "on") == "off":
        judges.fvd_status = f"not computed: switched off by {FVD_SWITCH}=off"
    else:
        try:
            judges.i3d = load_i3d(device=device)
        except PretrainedWeightsMissing as error:
            judges.fvd_status = f"not computed: {error}"
    try:
        judges.stlpips = build_stlpips(device=device)
    except PretrainedWeightsMissing as error:
        judges.stlpips_status = f"not computed: {error}"
    try:
        judges.lpips = build_lpips(find_alexnet_weights(), device)
    except PretrainedWeightsMissing as error:
        judges.lpips_status = f"not computed: {error}"
    return judges


def log_browsable_table(client, run_id: str, csv_path: Path, artifact_file: str) -> None:
    """The CSV again as an MLflow table (`log_table`), which the UI shows as a table and can compare
    across runs; the CSV stays for tools that read files."""
    import pandas as pd

    client.log_table(run_id, pd.read_csv(csv_path, keep_default_na=False), artifact_file)


def evaluate_run(request: EvaluateRequest, progress: bool = True) -> dict[str, float]:
    """Evaluate the run named by `request` and log into it; returns the metrics logged."""
    from mlflow.tracking import MlflowClient

    from mlproject.tracking.runs import get_run, run_id_from_model_uri

    client = MlflowClient()
    run_id = request.run_id or run_id_from_model_uri(client, request.model_uri)
    run = get_run(client, run_id)
    # The checkpoint copy (up to ~370 MB with a fine-tuned encoder) and the files logged from here are
    # scratch: they live in the tracking store once logged, so the folder goes when evaluation ends.
    with tempfile.TemporaryDirectory(prefix="text2sign-eval-") as scratch:
        return _evaluate_and_log(request, client, run, Path(scratch), progress)


def _evaluate_and_log(request: EvaluateRequest, client, run, folder: Path, progress: bool) -> dict[str, float]:
    import mlflow

    from evaluation.evaluate_model import evaluate_model
    from mlproject.tracking.runs import latest_run_checkpoint, run_config
    from mlproject.tracking.tracker import MLflowTracker
    from text2sign.checkpoint import load_checkpoint
    from text2sign.data import has_glosses
    from text2sign.diffusion import GaussianDiffusion
    from text2sign.hardware import pick_device
    from text2sign.pipeline import TextToSign

    run_id = run.info.run_id
    config = run_config(client, run_id, folder)
    checkpoint_path = latest_run_checkpoint(client, run_id, folder)
    state = load_checkpoint(checkpoint_path)
    device = pick_device(request.device)

    settings = _settings_for(request, config, run_id)
    model, weights = TextToSign.for_inference(config, state, request.weights)
    model.to(device)
    judges = build_judges(config.data, run.data.tags.get("scale", "small"), device, request.judge)
    missing = [s for s in (judges.recognizer_status if judges.recognizer is None else "",
                           judges.fvd_status, judges.stlpips_status, judges.lpips_status) if s]
    # Only back-translation makes the recognizer indispensable: a pose-only judge is missed with a note.
    if judges.recognizer is None and request.require_recognizer and has_glosses(config.data):
        raise ConfigError(judges.recognizer_status)
    if request.strict and missing:
        raise ConfigError("strict: " + " | ".join(missing))
    for status in missing:
        print(f"note: {status}", file=sys.stderr)

    result = evaluate_model(model, GaussianDiffusion(config.diffusion), config, settings, judges, device, progress)
    tracker = MLflowTracker(run_id)
    tracker.log_metrics(result.metrics, step=int(state["step"]))
    tracker.set_tags({
        **result.tags,
        "eval_weights": weights,
        "eval/checkpoint": checkpoint_path.name,
        "eval/num_videos": str(len(result.per_video)),
        "eval/sampler": settings.sampler,
        "eval/steps": str(settings.steps),
        "eval/guidance": str(settings.guidance),
        "eval/seed": str(settings.seed),
        "eval/device": str(device),
        "eval/guidance_sweep": ",".join(f"{g:g}" for g in settings.guidance_sweep),
        **({"eval/recognizer": judges.recognizer_status} if judges.recognizer is not None else {}),
    })
    _log_tables_and_pictures(client, run, tracker, result, config, folder)
    from mlproject.tracking.descriptions import refresh_after_evaluation

    refresh_after_evaluation(client, run_id)
    if mlflow.active_run() is not None:  # launched by `mlflow run -e evaluate`: point its run at the judged one
        mlflow.set_tag("evaluated_run", run_id)
    for key, value in sorted(result.metrics.items()):
        print(f"{key:40s} {value:.4f}")
    return result.metrics


def _settings_for(request: EvaluateRequest, config, run_id: str) -> EvalSettings:
    """The request's settings, the run's config filling in what it leaves out; guidance only where it can work."""
    settings = request.settings.for_run(config)
    if config.diffusion.text_dropout == 0.0:
        # Guidance extrapolates from the unconditional prediction; a model never shown an empty caption
        # has none, and guided samples from it would measure an untrained branch, not the model.
        if settings.guidance != 1.0:
            raise ConfigError(f"guidance: run {run_id} was trained with diffusion.text_dropout=0, so it has no "
                              "unconditional branch to guide with; evaluate with -P guidance=1.")
        if any(scale != 1.0 for scale in settings.guidance_sweep):
            raise ConfigError(f"guidance_sweep: run {run_id} was trained with diffusion.text_dropout=0, so "
                              "guidance above 1 has no unconditional branch to use; pass -P guidance_sweep=1 "
                              "or -P guidance_sweep=none.")
    return settings


def _log_tables_and_pictures(client, run, tracker, result, config, folder: Path) -> None:
    """Per-video scores and the guidance sweep as CSV and as browsable tables, and real-vs-generated frames."""
    import torch

    from evaluation.evaluate_model import write_per_video_table
    from text2sign.video import save_filmstrip

    run_id = run.info.run_id
    per_video = write_per_video_table(result.per_video, folder / "per_video.csv")
    tracker.log_artifact(per_video, "eval")
    log_browsable_table(client, run_id, per_video, "eval/per_video.json")
    shown = min(4, len(result.per_video))
    pairs = torch.stack([v for i in range(shown) for v in (result.generated[i], result.real[i])])
    tracker.log_artifact(save_filmstrip(pairs, folder / "generated_vs_real.png",
                                        upscale=max(1, 64 // config.data.image_size)), "eval")
    if result.sweep:
        import pandas as pd

        from evaluation.study_analysis.plots import plot_guidance_sweep

        sweep_table = folder / "guidance_sweep.csv"
        pd.DataFrame(result.sweep).to_csv(sweep_table, index=False)
        tracker.log_artifact(sweep_table, "eval")
        log_browsable_table(client, run_id, sweep_table, "eval/guidance_sweep.json")
        tracker.log_artifact(plot_guidance_sweep(result.sweep, folder / "guidance_sweep.png",
                                                 title=f"{run.data.tags.get('mlflow.runName', run_id)}: guidance sweep"),
                             "eval")


@reports_access_errors
def main(argv: list[str] | None = None) -> int:
    try:
        request = parse_args(argv)
        evaluate_run(request)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
