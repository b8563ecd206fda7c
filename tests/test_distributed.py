"""Data-parallel training under torchrun (gloo on the CPU): N processes train what one process trains."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
import torch

from mlproject.config_from_params import resolve_config
from tests.helpers import REPO, module_folder, subprocess_env
from text2sign.checkpoint import load_checkpoint
from text2sign.config import ConfigError
from text2sign.diffusion import GaussianDiffusion
from text2sign.training.distributed import World, rank_order
from text2sign.training.reporting import MemoryTracker
from text2sign.training.trainer import draw_step, train

# 8 steps an epoch of 2 x 2 clips, 3 epochs, a checkpoint after each.
OVERRIDES = "train.batch_size=2 train.grad_accum=2 data.train_size=32 train.epochs=3 train.num_sample_prompts=0"
STEPS = 24


def test_each_rank_reads_its_own_micro_batches_of_every_step():
    order = list(range(100, 126))  # 26 clips: 3 whole steps of 8, 2 left over
    one = rank_order(order, batch_size=2, grad_accum=4, world=World())
    assert one == order[:24]
    shares = [rank_order(order, batch_size=2, grad_accum=4, world=World(rank, 2)) for rank in range(2)]
    # Step 0's slots are [100,101] [102,103] [104,105] [106,107]: slots 0 and 2 to rank 0, 1 and 3 to rank 1.
    assert shares[0][:4] == [100, 101, 104, 105] and shares[1][:4] == [102, 103, 106, 107]
    assert sorted(shares[0] + shares[1]) == order[:24] and len(shares[0]) == len(shares[1]) == 12


def test_every_rank_draws_the_noise_one_process_would_give_its_clips():
    config = resolve_config("baseline", "tiny", overrides="train.batch_size=2 train.grad_accum=4")
    diffusion = GaussianDiffusion(config.diffusion)

    def draws(world: World) -> list:
        training = SimpleNamespace(config=config, world=world, diffusion=diffusion,
                                   generator=torch.Generator().manual_seed(3))
        return draw_step(training)

    alone = draws(World())
    for rank in range(2):
        mine = draws(World(rank, 2))
        for local, slot in enumerate(range(rank, 4, 2)):
            assert torch.equal(mine[local].noise.noise, alone[slot].noise.noise)
            assert torch.equal(mine[local].noise.timesteps, alone[slot].noise.timesteps)
            assert torch.equal(mine[local].caption_uniforms, alone[slot].caption_uniforms)


def test_a_number_of_processes_that_does_not_divide_the_accumulation_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match=r"train.grad_accum=2 cannot be shared by 3 processes.*divides 2"):
        World(0, 3).local_accumulation(2)
    result = subprocess.run([sys.executable, "-m", "mlproject.train", "--scale", "tiny", "--nproc-per-node", "3",
                             "--overrides", "train.grad_accum=2"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "cannot be shared by 3 processes" in result.stderr


@pytest.fixture(scope="module")
def folder(request, tmp_path_factory):
    with module_folder(request, tmp_path_factory, "distributed") as path:
        yield path


@pytest.fixture(scope="module")
def one_process(folder):
    """The reference: the same config trained in one process, uninterrupted."""
    config = resolve_config("baseline", "tiny", overrides=OVERRIDES)
    tracker = MemoryTracker()
    result = train(config, folder / "one", tracker, progress=False)
    return tracker, load_checkpoint(result.last_checkpoint)


def start_training(store: Path, processes: int, resume: str = "") -> subprocess.Popen:
    command = [sys.executable, "-m", "mlproject.train", "--scale", "tiny", "--nproc-per-node", str(processes),
               "--evaluate", "false", "--register", "false", "--overrides", f"{OVERRIDES} train.output_dir={store / 'outputs'}"]
    if resume:
        command += ["--resume", resume]
    return subprocess.Popen(command, cwd=REPO, env=subprocess_env(store), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def only_run(store: Path):
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return client, run


def assert_same_weights(checkpoint: dict, reference: dict) -> None:
    for part in ("model", "ema"):
        for key, value in reference[part].items():
            torch.testing.assert_close(checkpoint[part][key], value, rtol=1e-4, atol=1e-5, msg=f"{part} {key}")


@pytest.mark.slow
def test_two_gloo_processes_log_one_point_per_step_and_end_with_the_weights_of_one_process(folder, one_process):
    store = folder / "two"
    process = start_training(store, 2)
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    client, run = only_run(store)
    assert run.info.status == "FINISHED" and run.data.tags["world_size"] == "2"
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert [point.step for point in history] == list(range(1, STEPS + 1))  # never one point per rank
    reference_tracker, reference = one_process
    assert [point.value for point in history] == pytest.approx(
        [value for _, value in reference_tracker.history("train/loss")], rel=1e-4)
    final = load_checkpoint(store / "outputs" / run.info.run_id / "checkpoints" / f"step_{STEPS:08d}.pt")
    assert final["world_size"] == 2 and len(final["rank_rng"]) == 2
    assert_same_weights(final, reference)


@pytest.mark.slow
def test_a_killed_rank_fails_the_run_with_the_reason_and_one_process_resumes_it_exactly(folder, one_process):
    store = folder / "killed"
    process = start_training(store, 2)
    first_epoch = None
    while first_epoch is None and process.poll() is None:
        first_epoch = next(iter(store.glob("outputs/*/checkpoints/step_00000008.pt")), None)
        time.sleep(0.05)
    assert first_epoch is not None, process.communicate()[0]
    (rank_1,) = [child for child in psutil.Process(process.pid).children(recursive=True)
                 if child.environ().get("RANK") == "1"]
    rank_1.kill()
    output, _ = process.communicate(timeout=300)
    assert process.returncode != 0
    client, run = only_run(store)
    assert run.info.status == "FAILED", output
    reason = run.data.tags["failure_reason"]
    assert reason.startswith("process_lost: a process of this 2-process run stopped at step") and "resume" in reason
    assert f"resume={run.info.run_id}" in run.data.tags["resume_with"]

    resumed = start_training(store, 1, resume=run.info.run_id)  # another number of processes, the same batch
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output
    _, run = only_run(store)
    assert run.info.status == "FINISHED" and run.data.tags["world_size"] == "1"
    final = load_checkpoint(store / "outputs" / run.info.run_id / "checkpoints" / f"step_{STEPS:08d}.pt")
    assert_same_weights(final, one_process[1])
