"""A diverging loss and a GPU out of memory stop training with a message that says what to do; the run
ends FAILED with tag `failure_reason`, and no checkpoint is written after a divergence."""

from __future__ import annotations

import pytest
import torch

from mlproject.config_from_params import resolve_config
from mlproject.train import main
from text2sign.diffusion import GaussianDiffusion
from text2sign.training.failures import TrainingDiverged, TrainingOutOfMemory
from text2sign.training.reporting import MemoryTracker
from text2sign.training.trainer import train

TINY = "train.epochs=3 train.num_sample_prompts=0"  # 4 steps per epoch, a checkpoint after each


def break_training_step(monkeypatch, step: int, make_bad) -> None:
    """From optimizer step `step` on (batch 4, no accumulation: one loss per step), the loss goes through
    `make_bad`. Validation computes the same loss without gradients and is left alone."""
    real_loss = GaussianDiffusion.training_loss
    calls = {"training": 0}

    def loss(self, *args, **kwargs):
        value = real_loss(self, *args, **kwargs)
        if not torch.is_grad_enabled():
            return value
        calls["training"] += 1
        return make_bad(value) if calls["training"] >= step else value

    monkeypatch.setattr(GaussianDiffusion, "training_loss", loss)


def run_out_of_memory(loss: torch.Tensor) -> torch.Tensor:
    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_loss_stops_at_its_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, bad):
    # Logged every 4 steps: the bad step 6 is only read at step 8, yet named exactly and never saved.
    config = resolve_config("baseline", "tiny", overrides=f"{TINY} train.log_every=4")
    break_training_step(monkeypatch, 6, lambda loss: loss * bad)
    tracker = MemoryTracker()
    with pytest.raises(TrainingDiverged) as caught:
        train(config, tmp_path, tracker, progress=False)
    message = str(caught.value)
    assert f"train/loss was {bad} at step 6" in message
    assert "the last finite train/loss was" in message and "at step 5" in message
    assert "step_00000004.pt" in message and "learning rate too high (train.lr=0.001" in message
    assert "bad sample" in message and "train.grad_clip=1" in message
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step_00000004.pt"]
    assert [step for step, _ in tracker.history("train/loss")] == [4]  # the window holding step 6 is not logged


def test_cuda_out_of_memory_names_the_batch_the_memory_and_the_fix(tmp_path, monkeypatch):
    config = resolve_config("baseline", "tiny", overrides=TINY)
    break_training_step(monkeypatch, 3, run_out_of_memory)
    with pytest.raises(TrainingOutOfMemory) as caught:
        train(config, tmp_path, MemoryTracker(), progress=False)
    message = str(caught.value)
    assert "out of GPU memory with 2 steps done, at train.batch_size=4 x train.grad_accum=1 (effective batch 4)" in message
    assert "Memory figures: none, the run is on the cpu" in message
    assert "The failed allocation asked for 2.00 GiB" in message
    assert 'overrides="train.batch_size=2 train.grad_accum=2"' in message
    assert "model.gradient_checkpointing=true" in message


@pytest.mark.parametrize(("make_bad", "reason", "says"), [
    (lambda loss: loss * float("nan"), "diverged", "train/loss was nan at step 3"),
    (run_out_of_memory, "out_of_memory", "out of GPU memory with 2 steps done"),
])
def test_the_entry_point_ends_the_run_failed_with_the_reason(tmp_store, monkeypatch, capsys, make_bad, reason, says):
    break_training_step(monkeypatch, 3, make_bad)
    code = main(["--scale", "tiny", "--overrides", "train.num_sample_prompts=0", "--evaluate", "false",
                 "--register", "false"])
    assert code == 1
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    (run,) = tmp_store.search_runs([tmp_store.get_experiment_by_name("text2sign-ablations").experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.tags["failure_reason"].startswith(f"{reason}: ") and says in run.data.tags["failure_reason"]
