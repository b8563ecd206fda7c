"""The pose plan (model.pose_plan): text -> keypoints -> a skeleton the UNet draws beside the noisy clip."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from mlproject.config_from_params import resolve_config
from tests.corpus_builders import make_folder
from tests.test_unet3d import CONTEXT_DIM, TINY, make_inputs, make_model
from text2sign import skeleton
from text2sign.config import ConfigError
from text2sign.data.render import DEFAULT_APPEARANCE, NECK, UNIT, render
from text2sign.models import UNet3D
from text2sign.models.pose_plan import PosePlanner, pose_maps
from text2sign.training.reporting import MemoryTracker
from text2sign.training.trainer import pose_plan_training, train

POSE_TINY = dataclasses.replace(TINY, pose_plan=True, pose_plan_width=16, pose_plan_depth=1)
K = skeleton.NUM_POINTS


def random_skeletons(batch: int, frames: int) -> torch.Tensor:
    """[B, T, 50, 3]: every point seen, somewhere in the frame."""
    return torch.cat([torch.rand(batch, frames, K, 2), torch.ones(batch, frames, K, 1)], dim=-1)


def synthetic_skeleton(glosses=("MOTHER",), frames: int = 4) -> torch.Tensor:
    _, keypoints = render(glosses, DEFAULT_APPEARANCE, 32, frames)
    return torch.from_numpy(skeleton.from_synthetic(keypoints))[None]


def channel_of(*points: str) -> int:
    wanted = {skeleton.POINT_NAMES.index(p) for p in points}
    return next(c for c, members in enumerate(skeleton.CHANNELS) if wanted <= set(members))


def test_each_bone_is_drawn_in_its_channel_bright_on_its_segment_and_dark_far_from_it():
    keypoints = torch.full((1, 2, K, 3), 0.5)
    keypoints[..., 2] = 1.0
    keypoints[0, :, skeleton.RIGHT_WRIST, :2] = torch.tensor([0.25, 0.5])  # right forearm: elbow (0.5, 0.5) -> wrist
    maps = pose_maps(keypoints, size=32)
    assert maps.shape == (1, len(skeleton.CHANNELS), 2, 32, 32)
    forearm = channel_of("right_wrist")
    row = 16  # pixel centres at (i + 0.5) / 32: row 16 is y = 0.516, within a pixel of the segment
    assert maps[0, forearm, 0, row, 10] > 0.8  # on the segment, between its ends
    assert maps[0, forearm, 0, row, 2] < 0.05  # beyond the wrist
    assert maps[0, forearm, 0, 2, 10] < 1e-6  # far above it
    upper_arm = channel_of("right_elbow")  # a point (shoulder and elbow at the centre): one bright spot
    assert maps[0, upper_arm, 0, row, 10] < 1e-6 and maps[0, upper_arm, 0, row, 15] > 0.7


def test_a_missing_point_draws_nothing_and_its_bone_is_bridged_to_the_nearest_seen_joint():
    keypoints = synthetic_skeleton(frames=2)
    full = pose_maps(keypoints, size=32)
    elbowless = keypoints.clone()
    elbowless[:, 0, 3] = torch.tensor([float("nan"), float("nan"), 0.0])  # the right elbow lost in frame 0
    maps = pose_maps(elbowless, size=32)
    assert torch.isfinite(maps).all()
    assert maps[0, channel_of("right_elbow"), 0].max() == 0  # its bone is not drawn
    assert torch.equal(maps[:, :, 1], full[:, :, 1])  # the other frame is untouched
    wrist = keypoints[0, 0, skeleton.RIGHT_WRIST, :2]
    shoulder = keypoints[0, 0, skeleton.RIGHT_SHOULDER, :2]
    middle = ((wrist + shoulder) / 2 * 32).long()  # the forearm's channel now runs wrist -> shoulder
    assert maps[0, channel_of("right_wrist"), 0, middle[1], middle[0]] > 0.5


def test_the_synthetic_signer_fills_its_ten_slots_and_the_hand_tip_joins_the_wrist_in_the_middle_finger_channel():
    keypoints = synthetic_skeleton()
    seen = skeleton.present(keypoints)[0, 0]
    assert seen.sum() == 10 and seen[list(skeleton.SYNTHETIC_SLOTS)].all()
    assert torch.isnan(keypoints[0, 0, ~seen, :2]).all() and (keypoints[0, 0, ~seen, 2] == 0).all()
    maps = pose_maps(keypoints, size=32)
    lit = [c for c in range(len(skeleton.CHANNELS)) if maps[0, c].max() > 0.5]
    assert len(lit) == 9  # the nine bones the synthetic signer has: head, two arms of three, two hands
    assert channel_of("right_hand_middle_4") in lit and channel_of("right_hand_index_4") not in lit


def test_with_finger_keypoints_the_synthetic_signer_gives_each_finger_s_base_and_tip_and_every_finger_is_drawn():
    _, keypoints = render(("I",), DEFAULT_APPEARANCE, 64, 8, fingers=True)  # I: the dominant hand points
    points = torch.from_numpy(skeleton.from_synthetic(keypoints))[None]
    seen = skeleton.present(points)[0, -1]
    assert seen.sum() == 28 and seen[list(skeleton.SYNTHETIC_FINGER_SLOTS)].all()
    maps = pose_maps(points, size=64)
    lit = [c for c in range(len(skeleton.CHANNELS)) if maps[0, c].max() > 0.5]
    assert len(lit) == len(skeleton.CHANNELS)  # the head, six arm bones and all ten fingers
    frame, hand = points[0, -1], skeleton.RIGHT_HAND

    def length(finger: int) -> float:
        return float((frame[hand + 4 + 4 * finger, :2] - frame[hand + 1 + 4 * finger, :2]).norm())

    assert length(1) > 3 * length(2)  # the pointing index finger is out, the middle finger folded


def test_placement_is_read_from_the_neck_and_the_shoulders():
    neck, scale, valid = skeleton.placement(synthetic_skeleton())
    assert neck.flatten().tolist() == pytest.approx(list(NECK), abs=1e-5)
    assert scale.item() == pytest.approx(UNIT, rel=1e-4) and valid.all()


def test_placement_survives_a_missing_shoulder_and_a_missing_neck():
    keypoints = synthetic_skeleton()
    one_shoulder = keypoints.clone()
    one_shoulder[:, :, skeleton.LEFT_SHOULDER] = torch.tensor([float("nan"), float("nan"), 0.0])
    neck, scale, valid = skeleton.placement(one_shoulder)
    assert neck.flatten().tolist() == pytest.approx(list(NECK), abs=1e-5)
    reach = (keypoints[0, 0, skeleton.RIGHT_SHOULDER, :2] - keypoints[0, 0, skeleton.NECK, :2]).norm()
    assert scale.item() == pytest.approx(reach.item(), rel=1e-4) and valid.all()  # the neck-to-shoulder distance
    no_neck = keypoints.clone()
    no_neck[:, :, skeleton.NECK] = torch.tensor([float("nan"), float("nan"), 0.0])
    neck, scale, valid = skeleton.placement(no_neck)  # the shoulders' midpoint stands in (MediaPipe's neck)
    midpoint = (keypoints[0, 0, skeleton.RIGHT_SHOULDER, :2] + keypoints[0, 0, skeleton.LEFT_SHOULDER, :2]) / 2
    assert neck.flatten().tolist() == pytest.approx(midpoint.tolist(), abs=1e-5) and valid.all()
    nobody = torch.full_like(keypoints, float("nan"))
    nobody[..., 2] = 0
    assert not skeleton.placement(nobody)[2].any()


def test_the_planner_gives_every_frame_its_own_pose_from_the_caption_and_starts_at_the_neck():
    torch.manual_seed(0)
    planner = PosePlanner(CONTEXT_DIM, width=16, depth=2, head_dim=8)
    _, _, context, mask = make_inputs()
    with torch.no_grad():
        untrained = planner(context, mask, num_frames=5)
    assert untrained.shape == (2, 5, K, 3)
    assert not skeleton.present(untrained).any()  # a planner that has seen no keypoints plans no point
    planner.points_seen[:] = True
    with torch.no_grad():
        untrained = planner(context, mask, num_frames=5)
    assert torch.allclose(untrained[..., :2], torch.tensor(NECK).expand_as(untrained[..., :2]))  # a calm start
    with torch.no_grad():
        for parameter in planner.frames.out.parameters():
            parameter.normal_(std=0.1)
        plan, other = planner(context, mask, 5), planner(torch.randn_like(context), mask, 5)
    assert not torch.allclose(plan[:, 0], plan[:, 4])  # frames differ: each knows its moment
    assert not torch.allclose(plan, other)  # and the caption decides the pose


def test_the_planner_loss_ignores_where_the_signer_stands_when_the_pose_is_right():
    """Two clips of one pose, one signer moved and scaled: a planner with the right body pose pays only for placement."""
    torch.manual_seed(0)
    planner = PosePlanner(CONTEXT_DIM, width=16, depth=1, head_dim=8)
    truth = synthetic_skeleton()
    moved = truth.clone()
    moved[..., :2] = torch.tensor([0.52, 0.40]) + 1.1 * (truth[..., :2] - torch.tensor(NECK))
    seen = skeleton.present(truth)[0, 0]
    _, _, context, mask = make_inputs()
    with torch.no_grad():  # make the head output exactly the true body pose
        body_units = torch.nan_to_num((truth[0, 0, :, :2] - torch.tensor(NECK)) / UNIT)
        planner.frames.out.bias.copy_(body_units.flatten())
        body_pose = planner.body_pose(context[:1], mask[:1], 4)
        loss_here, planned = planner.loss(context[:1], mask[:1], truth)
        loss_moved, _ = planner.loss(context[:1], mask[:1], moved)
    assert torch.allclose(body_pose[0, 0], body_units, atol=1e-5)
    motion = (truth[0, :, seen, :2] - truth[0, :1, seen, :2]) / UNIT  # the pose error counts the seen points only
    assert loss_here.item() == pytest.approx(motion.pow(2).mean().item(), abs=1e-5)
    assert torch.equal(skeleton.present(planned)[0, 0], seen)  # it plans the points its corpus showed it
    placement_cost = ((torch.tensor([NECK[0], NECK[1], UNIT]) - torch.tensor([0.52, 0.40, 1.1 * UNIT])) ** 2).mean()
    assert loss_moved.item() == pytest.approx(loss_here.item() + placement_cost.item(), abs=1e-5)


def test_the_unet_reads_the_skeleton_beside_the_noisy_clip():
    model = make_model(POSE_TINY)
    assert model.conv_in.in_channels == 3 + len(skeleton.CHANNELS)
    model.pose_planner.points_seen[:] = True
    x, timesteps, context, mask = make_inputs()
    keypoints = random_skeletons(2, x.shape[2])
    with torch.no_grad():
        shown = model(x, timesteps, context, mask, keypoints)
        other_pose = model(x, timesteps, context, mask, random_skeletons(2, x.shape[2]))
        planned = model(x, timesteps, context, mask)
        planned_by_hand = model(x, timesteps, context, mask, model.pose_planner(context, mask, x.shape[2]))
    assert shown.shape == x.shape
    assert not torch.allclose(shown, other_pose)  # the skeleton shown steers the prediction
    assert torch.allclose(planned, planned_by_hand)  # no keypoints: the planner's, from the text


def test_the_skeleton_at_every_level_starts_as_the_same_function_and_then_reaches_the_lower_resolutions():
    torch.manual_seed(0)
    at_input = UNet3D(POSE_TINY, CONTEXT_DIM)
    torch.manual_seed(0)
    every_level = UNet3D(dataclasses.replace(POSE_TINY, pose_at_every_level=True), CONTEXT_DIM)
    assert len(every_level.pose_inputs) == len(POSE_TINY.channel_mult) - 1  # one per lower resolution
    every_level.load_state_dict(at_input.state_dict(), strict=False)  # a checkpoint from before the switch
    x, timesteps, context, mask = make_inputs()
    keypoints = random_skeletons(2, x.shape[2])
    with torch.no_grad():
        assert torch.equal(every_level(x, timesteps, context, mask, keypoints),
                           at_input(x, timesteps, context, mask, keypoints))  # zero-initialised: nothing added yet

    every_level.conv_out.weight.data.normal_(std=0.1)  # let a gradient flow back from the output
    loss = every_level(x, timesteps, context, mask, keypoints).square().mean()
    loss.backward()
    assert every_level.pose_inputs[0].weight.grad.abs().sum() > 0  # the skeleton at 8x8 is learnt from
    with torch.no_grad():
        every_level.pose_inputs[0].weight.normal_(std=0.1)
        shown = every_level(x, timesteps, context, mask, keypoints)
        other_pose = every_level(x, timesteps, context, mask, random_skeletons(2, x.shape[2]))
    assert not torch.allclose(shown, other_pose)


def test_the_skeleton_at_every_level_does_nothing_without_a_pose_plan():
    plain = UNet3D(dataclasses.replace(TINY, pose_at_every_level=True), CONTEXT_DIM)
    assert plain.pose_inputs is None and plain.conv_in.in_channels == 3


def test_keypoints_for_a_unet_without_a_pose_plan_are_refused_and_off_adds_nothing():
    plain = UNet3D(TINY, CONTEXT_DIM)
    assert plain.pose_planner is None and plain.conv_in.in_channels == 3
    x, timesteps, context, mask = make_inputs()
    with pytest.raises(ValueError, match="model.pose_plan is off"):
        plain(x, timesteps, context, mask, random_skeletons(2, x.shape[2]))


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.pose_plan_depth=0", "model.pose_plan_depth: 0 is not allowed; it must be at least 1"),
        ("model.pose_plan_width=12", "model.pose_plan_width: 12 is not allowed; it must be a positive multiple of model.head_dim"),
        ("model.pose_plan_weight=0", "model.pose_plan_weight: 0.0 is not allowed; it must be a positive number"),
    ],
)
def test_impossible_pose_plan_settings_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config("baseline", "tiny", overrides=f"model.pose_plan=true {override}")


def test_a_corpus_without_keypoints_cannot_train_a_pose_plan(tmp_path):
    corpus = make_folder(tmp_path / "clips")
    with pytest.raises(ConfigError, match="model.pose_plan: True is not allowed; it must be false for this corpus"):
        resolve_config("baseline", "tiny", overrides=f"model.pose_plan=true data.name=folder:{corpus}")


def test_the_pose_plan_is_on_where_the_corpus_has_keypoints_unless_the_ablation_or_overrides_say_no(tmp_path):
    corpus = make_folder(tmp_path / "clips")
    assert resolve_config("baseline", "tiny").model.pose_plan
    assert resolve_config("text_finetuned", "full").model.pose_plan
    assert not resolve_config("pixel_only", "tiny").model.pose_plan
    assert not resolve_config("baseline", "tiny", overrides="model.pose_plan=false").model.pose_plan
    assert not resolve_config("baseline", "tiny", data=f"folder:{corpus}").model.pose_plan
    assert not resolve_config("baseline", "tiny", overrides=f"data.name=folder:{corpus}").model.pose_plan


def test_pose_first_requires_the_pose_plan_so_a_corpus_without_keypoints_is_refused(tmp_path):
    corpus = make_folder(tmp_path / "clips")
    assert resolve_config("pose_first", "tiny").model.pose_plan
    with pytest.raises(ConfigError, match="model.pose_plan: True is not allowed"):
        resolve_config("pose_first", "tiny", data=f"folder:{corpus}")


def test_training_shows_the_true_skeleton_and_dropped_captions_the_plan_of_their_empty_text():
    torch.manual_seed(0)
    unet = make_model(POSE_TINY)
    seen = {}
    training = SimpleNamespace(model=SimpleNamespace(unet=unet), device=torch.device("cpu"),
                               forward=lambda *args, keypoints=None: seen.setdefault("keypoints", keypoints))
    x, timesteps, context, mask = make_inputs()
    truth = random_skeletons(2, x.shape[2])
    denoiser, pose_loss = pose_plan_training(training, {"keypoints": truth}, context, mask, torch.tensor([False, True]))
    denoiser(x, timesteps, context, mask)
    with torch.no_grad():
        plan = unet.pose_planner(context, mask, x.shape[2])
    assert torch.equal(seen["keypoints"][0], truth[0])  # teacher forcing
    assert torch.allclose(seen["keypoints"][1], plan[1])  # every point: the planner has now seen them all  # the dropped caption: what sampling's unconditional half sees
    pose_loss.backward()
    assert pose_loss.item() > 0 and unet.pose_planner.frames.out.weight.grad.abs().sum() > 0


def test_a_pose_plan_run_logs_the_plan_s_loss_and_errors(tmp_path):
    config = resolve_config("baseline", "tiny", overrides="model.pose_plan=true train.epochs=1")
    tracker = MemoryTracker()
    result = train(config, tmp_path / "run", tracker, progress=False)
    assert [step for step, _ in tracker.history("train/pose_loss")] == list(range(1, result.steps + 1))
    assert all(value > 0 for _, value in tracker.history("train/pose_loss"))
    assert [step for step, _ in tracker.history("pose_plan/first_loss")] == [0]  # the planner-only stage
    for key in ("val/pose_plan_error_px", "val/pose_plan_motion_error_px"):
        assert [step for step, _ in tracker.history(key)] == [step for step, _ in tracker.history("val/loss")], key


def test_plan_first_leaves_no_gradient_for_the_first_video_step_to_add_to():
    # The video training accumulates into .grad: a planner gradient left from the last planner-only step was
    # once added to the first video step's own (and counted in its clipped norm).
    from text2sign.data import build_dataset
    from text2sign.training.planner_first import plan_poses_first
    from text2sign.training.state import build_models

    config = resolve_config("baseline", "tiny", overrides="model.pose_plan=true model.pose_plan_steps=2 model.pose_plan_batch=2")
    model, ema_model = build_models(config, torch.device("cpu"))
    plan_poses_first(config, model, ema_model, build_dataset(config.data, "train"))
    assert all(parameter.grad is None for parameter in model.parameters())


def test_plan_first_teaches_the_planner_alone_and_starts_the_ema_from_it():
    from text2sign.data import build_dataset
    from text2sign.training.planner_first import plan_poses_first
    from text2sign.training.state import build_models

    config = resolve_config("baseline", "tiny", overrides="model.pose_plan=true model.pose_plan_steps=60 model.pose_plan_batch=8")
    model, ema_model = build_models(config, torch.device("cpu"))
    train_set = build_dataset(config.data, "train")
    unet_before = {k: v.clone() for k, v in model.unet.state_dict().items() if not k.startswith("pose_planner.")}
    texts = [train_set[i]["text"] for i in range(8)]
    truth = torch.stack([train_set[i]["keypoints"] for i in range(8)])
    with torch.no_grad():
        before, _ = model.unet.pose_planner.loss(*model.encode(texts), truth)
    metrics = plan_poses_first(config, model, ema_model, train_set)
    with torch.no_grad():
        after, _ = model.unet.pose_planner.loss(*model.encode(texts), truth)
    assert after < 0.5 * before and metrics["pose_plan/first_loss"] > 0 and metrics["pose_plan/first_s"] > 0
    for key, value in model.unet.pose_planner.state_dict().items():
        assert torch.equal(value, ema_model.unet.pose_planner.state_dict()[key]), key
    for key, value in model.unet.state_dict().items():  # the video model is untouched
        if key in unet_before:
            assert torch.equal(value, unet_before[key]), key


def test_the_planner_can_read_more_synthetic_captions_than_the_video_model_trains_on():
    from text2sign.data import build_dataset
    from text2sign.training.planner_first import _captions_and_keypoints

    config = resolve_config("baseline", "tiny", overrides="model.pose_plan_captions=40")
    train_set = build_dataset(config.data, "train")
    texts, keypoints = _captions_and_keypoints(config, train_set)
    assert len(texts) == 40 and keypoints.shape[0] == 40
    assert texts[: len(train_set)] == [train_set[i]["text"] for i in range(len(train_set))]  # the split, then more
    assert torch.equal(keypoints[3].nan_to_num(), train_set[3]["keypoints"].nan_to_num())
    assert len(set(texts) - set(texts[: len(train_set)])) > 0
    fewer = dataclasses.replace(config, model=dataclasses.replace(config.model, pose_plan_captions=8))
    assert len(_captions_and_keypoints(fewer, train_set)[0]) == len(train_set)  # never fewer than the split's own


def test_plan_first_encodes_each_caption_once_outside_the_encoder_s_cache():
    from text2sign.training.planner_first import _encode_once
    from text2sign.training.state import build_models

    config = resolve_config("baseline", "tiny")
    model, _ = build_models(config, torch.device("cpu"))
    texts = ["a cat runs", "the big dog eats an apple", "a cat runs"]
    caption_of, contexts, masks = _encode_once(model, texts, chunk=2)
    assert caption_of.tolist() == [0, 1, 0] and model.text_encoder.cache_size == 0
    assert masks[1].all() and not masks[0].all()  # cut to the longest caption's tokens
    alone, alone_mask = model.encode(["the big dog eats an apple"])
    length = contexts.shape[1]
    assert torch.equal(alone_mask[0, :length], masks[1]) and not alone_mask[0, length:].any()
    assert torch.allclose(alone[0, :length], contexts[1], atol=1e-5)
    finetuned = resolve_config("text_finetuned", "tiny")
    model, _ = build_models(finetuned, torch.device("cpu"))
    model.train()
    _, first, _ = _encode_once(model, texts)
    _, again, _ = _encode_once(model, texts)
    assert torch.equal(first, again) and model.text_encoder.training  # no dropout in the table; mode restored


@pytest.mark.parametrize(
    "overrides, message",
    [
        ("model.pose_plan_captions=-1", r"model.pose_plan_captions: -1 is not allowed; it must be 0 \(the training split's captions\) or more"),
        ("model.pose_plan_captions=64 data.name=folder:{corpus}", "model.pose_plan_captions: 64 is not allowed; it must be 0 for a real corpus"),
        ("data.finger_keypoints=true data.name=folder:{corpus}", "data.finger_keypoints: True is not allowed; it must be false for a real corpus"),
    ],
)
def test_what_only_the_synthetic_corpus_can_give_is_refused_on_a_real_one(tmp_path, overrides, message):
    corpus = make_folder(tmp_path / "clips")
    with pytest.raises(ConfigError, match=message):
        resolve_config("pixel_only", "tiny", overrides=overrides.format(corpus=corpus))


def test_a_real_corpus_at_medium_reads_its_own_captions_only(tmp_path):
    corpus = make_folder(tmp_path / "clips")
    assert resolve_config("pixel_only", "medium", data=f"folder:{corpus}").model.pose_plan_captions == 0


def test_generation_can_draw_given_skeletons_and_evaluation_reads_them_as_the_true_pose_reading(tmp_path):
    import math

    from evaluation.evaluate_model import EvalSettings, Judges, evaluate_model
    from evaluation.judge.training import train_recognizer
    from text2sign.checkpoint import load_checkpoint
    from text2sign.data import build_dataset
    from text2sign.diffusion import GaussianDiffusion
    from text2sign.pipeline import TextToSign, generate

    config = resolve_config("baseline", "tiny", overrides="model.pose_plan=true train.epochs=1")
    result = train(config, tmp_path / "run", MemoryTracker(), progress=False)
    model, _ = TextToSign.for_inference(config, load_checkpoint(result.last_checkpoint))
    diffusion = GaussianDiffusion(config.diffusion)
    test = build_dataset(config.data, "test")
    texts, truth = test.texts[:2], torch.stack([test[i]["keypoints"] for i in range(2)])
    settings = dict(num_frames=config.data.num_frames, image_size=config.data.image_size, guidance_scale=2.0,
                    steps=2, sampler="ddim", seed=0)
    planned = generate(model, diffusion, texts, **settings)
    drawn = generate(model, diffusion, texts, **settings, keypoints=truth)
    assert drawn.shape == planned.shape and not torch.allclose(drawn, planned)

    recognizer, _ = train_recognizer(config.data, epochs=1, batch_size=2, lr=1e-3, seed=0, width=16, progress=False)
    evaluation = evaluate_model(model, diffusion, config,
                                EvalSettings(num_videos=2, steps=2, batch_size=2, steering=False, guidance_sweep=()),
                                Judges(recognizer=recognizer), torch.device("cpu"), progress=False)
    for key in ("eval/backtranslation_wer_true_pose", "eval/backtranslation_bleu4_true_pose"):
        assert math.isfinite(evaluation.metrics[key]), key


def test_skeletons_for_a_model_without_a_pose_plan_are_refused():
    from text2sign.diffusion import GaussianDiffusion
    from text2sign.pipeline import TextToSign, generate

    config = resolve_config("pixel_only", "tiny")
    with pytest.raises(ValueError, match="model.pose_plan is off"):
        generate(TextToSign(config), GaussianDiffusion(config.diffusion), ["a"], num_frames=4, image_size=16,
                 guidance_scale=1.0, steps=1, sampler="ddim", keypoints=random_skeletons(1, 4))


def test_a_checkpoint_from_before_the_common_skeleton_loads_as_the_same_model():
    """Pose-plan checkpoints of the 10-point synthetic skeleton (and the older planner layer names) still load."""
    from text2sign.pipeline import _TEN_POINT_BONE_CHANNELS, TextToSign

    config = resolve_config("baseline", "tiny", overrides="model.pose_plan=true")
    torch.manual_seed(0)
    model = TextToSign(config)
    slots = torch.tensor(skeleton.SYNTHETIC_SLOTS)
    rows = torch.stack([2 * slots, 2 * slots + 1], dim=1).flatten()
    channels = [0, 1, 2] + [3 + c for c in _TEN_POINT_BONE_CHANNELS]
    with torch.no_grad():  # what a 10-point model can hold: nothing in the other points' rows and channels
        out, conv_in = model.unet.pose_planner.frames.out, model.unet.conv_in
        for tensor in (out.weight, out.bias):
            kept = tensor[rows].clone()
            tensor.zero_()
            tensor[rows] = kept
        kept = conv_in.weight[:, channels].clone()
        conv_in.weight.zero_()
        conv_in.weight[:, channels] = kept
        model.unet.pose_planner.points_seen[slots] = True
    saved = model.trainable_state_dict()
    old = {k: v for k, v in saved.items() if k != "unet.pose_planner.points_seen"}
    old["unet.pose_planner.frames.out.weight"] = saved["unet.pose_planner.frames.out.weight"][rows]
    old["unet.pose_planner.frames.out.bias"] = saved["unet.pose_planner.frames.out.bias"][rows]
    old["unet.conv_in.weight"] = saved["unet.conv_in.weight"][:, channels]
    # 8d77b19 named the planner's layers `pose_planner.<layer>`; the learnt placement kept its name.
    old = {k.replace("pose_planner.frames.", "pose_planner."): v for k, v in old.items()}
    loaded = TextToSign(config)
    loaded.load_trainable_state_dict(old)
    for key, value in loaded.trainable_state_dict().items():
        assert torch.equal(value, saved[key]), key


def test_the_large_network_draws_a_64x64_clip_of_16_frames_from_its_finger_skeleton():
    # `large` is the seed study's clip size on a CPU: its UNet takes the skeleton with the finger channels and
    # its gradients reach the first layer, at the real sizes (one clip).
    import dataclasses

    from text2sign import skeleton
    from text2sign.data import build_dataset
    from text2sign.models import UNet3D

    config = resolve_config("baseline", "large")
    clip = build_dataset(dataclasses.replace(config.data, train_size=1), "train")[0]
    assert clip["video"].shape == (3, 16, 64, 64)
    keypoints = clip["keypoints"][None]
    assert (keypoints[0, :, list(skeleton.SYNTHETIC_FINGER_SLOTS), 2] == 1).all()  # every finger seen in every frame
    unet = UNet3D(config.model, context_dim=16)
    noisy = torch.randn(1, 3, 16, 64, 64)
    prediction = unet(noisy, torch.tensor([500]), torch.randn(1, 5, 16), torch.ones(1, 5, dtype=torch.bool), keypoints)
    assert prediction.shape == noisy.shape
    prediction.square().mean().backward()
    assert unet.conv_in.weight.grad is not None
