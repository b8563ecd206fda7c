"""A scale is a number of optimizer steps: a corpus of any size trains the scale's steps, each synthetic scale
trains, validates and checkpoints exactly as it did when it counted epochs, `-P epochs=N` still wins, and a run
trained when scales counted epochs still loads and resumes to its own length."""

from __future__ import annotations

import json

import pytest
import torch

from mlproject.config_from_params import resolve_config
from tests.corpus_builders import make_folder
from text2sign.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from text2sign.config import from_dict, to_json
from text2sign.training.reporting import MemoryTracker
from text2sign.training.state import checkpoint_steps, steps_per_epoch, total_steps, validation_steps
from text2sign.training.trainer import train

# Each scale as it was when it counted epochs (commit 0b82dbf): train.epochs, and train.checkpoint_every in epochs.
EPOCHS_BEFORE = {"tiny": (2, 1), "small": (2, 2), "medium": (8, 2), "large": (3, 1), "full": (150, 5)}


@pytest.mark.parametrize("scale", EPOCHS_BEFORE)
def test_a_synthetic_scale_trains_validates_and_checkpoints_at_the_steps_of_the_epochs_it_had(scale):
    epochs, checkpoint_every = EPOCHS_BEFORE[scale]
    config = resolve_config("baseline", scale)
    per_epoch = steps_per_epoch(config, config.data.train_size)
    num_steps = total_steps(config, config.data.train_size)
    epoch_ends = [epoch * per_epoch for epoch in range(1, epochs + 1)]
    assert num_steps == epochs * per_epoch == config.train.max_steps
    assert validation_steps(config, per_epoch, num_steps) == epoch_ends
    assert checkpoint_steps(config, epoch_ends, num_steps) == [
        step for epoch, step in enumerate(epoch_ends, 1) if epoch % checkpoint_every == 0 or epoch == epochs]


def test_tiny_s_steps_train_the_same_run_as_its_two_epochs_did(tmp_path):
    # A run of epochs trains as before: test_trainer pins its losses to those of the loop before this change.
    runs = {}
    for name, epochs in (("steps", None), ("epochs", "2")):
        config = resolve_config("baseline", "tiny", epochs=epochs, overrides="train.num_sample_prompts=1")
        tracker = MemoryTracker()
        result = train(config, tmp_path / name, tracker, progress=False)
        runs[name] = (result, tracker)
    (by_steps, steps_tracker), (by_epochs, epochs_tracker) = runs["steps"], runs["epochs"]
    assert (by_steps.steps, by_steps.epochs) == (by_epochs.steps, by_epochs.epochs) == (8, 2)
    for key in ("train/loss", "train/grad_norm", "val/loss"):  # the same batches in the same order, step by step
        assert steps_tracker.history(key) == epochs_tracker.history(key), key
    for folder in ("checkpoints", "samples"):
        assert sorted(p.name for p in (by_steps.run_dir / folder).iterdir()) == sorted(
            p.name for p in (by_epochs.run_dir / folder).iterdir()), folder
    assert sorted(p.name for p in (by_steps.run_dir / "samples").iterdir()) == ["epoch_0001", "epoch_0002"]
    final, other = load_checkpoint(by_steps.last_checkpoint), load_checkpoint(by_epochs.last_checkpoint)
    for part in ("model", "ema"):
        for key, value in final[part].items():
            assert torch.equal(value, other[part][key]), (part, key)


@pytest.fixture
def six_clips(tmp_path):
    """A folder corpus of 6 training clips: one step of tiny's batch of 4 per epoch."""
    return f"folder:{make_folder(tmp_path / 'corpus', sizes={'train': 6, 'val': 2, 'test': 2})}"


def test_a_folder_corpus_of_six_clips_trains_tiny_s_eight_steps_over_eight_epochs(six_clips, tmp_path):
    config = resolve_config("baseline", "tiny", data=six_clips,
                            overrides=f"train.num_sample_prompts=0 data.cache_dir={tmp_path / 'cache'}")
    tracker = MemoryTracker()
    result = train(config, tmp_path / "run", tracker, progress=False)
    assert (result.steps, result.epochs) == (8, 8)  # by epochs, 2 steps
    assert [step for step, _ in tracker.history("val/loss")] == [4, 8]  # tiny validates twice, not every epoch
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step_00000004.pt", "step_00000008.pt"]


def test_a_budget_that_ends_mid_epoch_validates_and_checkpoints_there_and_resumes_to_the_same_weights(tmp_path):
    # 8 steps an epoch (16 clips, batch 2): 12 steps end half-way through the second epoch, and tiny's two
    # validations fall at steps 6 and 12, both inside an epoch.
    config = resolve_config("no_ema", "tiny", overrides="train.batch_size=2 train.max_steps=12 train.num_sample_prompts=1")
    tracker = MemoryTracker()
    whole = train(config, tmp_path / "whole", tracker, progress=False)
    assert (whole.steps, whole.epochs) == (12, 1)
    assert [step for step, _ in tracker.history("val/loss")] == [6, 12]
    assert sorted(p.name for p in (tmp_path / "whole" / "samples").iterdir()) == ["step_00000006", "step_00000012"]
    first = tmp_path / "whole" / "checkpoints" / "step_00000006.pt"
    assert (load_checkpoint(first)["step"], load_checkpoint(first)["epoch"]) == (6, 0)
    resumed = train(config, tmp_path / "resumed", resume_from=first, progress=False)
    assert (resumed.steps, resumed.epochs) == (12, 1)
    final, resumed_final = load_checkpoint(whole.last_checkpoint), load_checkpoint(resumed.last_checkpoint)
    for key, value in final["model"].items():
        assert torch.equal(value, resumed_final["model"][key]), key


def as_before_steps(config) -> dict:
    """A config resolved with epochs (so max_steps 0), as a run trained when scales counted epochs saved it:
    without train.validations, which did not exist."""
    raw = json.loads(to_json(config))
    del raw["train"]["validations"]
    return raw


def test_an_old_run_s_config_loads_with_its_epochs_and_validates_at_each_epoch_s_end():
    old = from_dict(as_before_steps(resolve_config("baseline", "small", epochs="2")))
    assert (old.train.epochs, old.train.max_steps) == (2, 0)
    per_epoch = steps_per_epoch(old, 90)  # the README's 90 clips: 11 steps an epoch
    assert total_steps(old, 90) == 22 and validation_steps(old, per_epoch, 22) == [11, 22]


def test_an_old_run_resumed_without_a_length_ends_at_its_own_epochs_and_with_epochs_at_those(six_clips, tmp_store,
                                                                                             tmp_path):
    from mlproject.train import main

    overrides = f"train.num_sample_prompts=0 data.cache_dir={tmp_path / 'cache'}"
    # The old `tiny` was 2 epochs: over 6 clips, 2 steps. Stopped after the first, its checkpoint as it wrote it.
    config = resolve_config("baseline", "tiny", epochs="2", data=six_clips, overrides=overrides)
    whole = train(config, tmp_path / "whole", progress=False)
    stopped = train(config, tmp_path / "stopped", progress=False, should_stop=lambda step: step == 1)
    state = load_checkpoint(stopped.last_checkpoint)
    state["config"] = json.dumps(as_before_steps(config))
    old = save_checkpoint(state, tmp_path / "old" / stopped.last_checkpoint.name)

    common = ["--scale", "tiny", "--data", six_clips, "--overrides", overrides, "--evaluate", "false",
              "--register", "false", "--resume", str(old)]
    assert main(common) == 0
    (run,) = tmp_store.search_runs([tmp_store.get_experiment_by_name("text2sign-ablations").experiment_id])
    resumed = latest_checkpoint(tmp_path / "outputs" / run.info.run_id / "checkpoints")
    assert resumed.name == "step_00000002.pt"  # its own 2 epochs, not tiny's 8 steps now
    final, resumed_final = load_checkpoint(whole.last_checkpoint), load_checkpoint(resumed)
    for part in ("model", "ema"):
        for key, value in final[part].items():
            assert torch.equal(value, resumed_final[part][key]), (part, key)

    assert main([*common, "--epochs", "3"]) == 0  # a length given now wins
    runs = tmp_store.search_runs([run.info.experiment_id], order_by=["attributes.start_time DESC"])
    assert latest_checkpoint(tmp_path / "outputs" / runs[0].info.run_id / "checkpoints").name == "step_00000003.pt"
