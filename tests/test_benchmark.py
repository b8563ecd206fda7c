"""The speed benchmark: diffusers' UNet at our size, the same training step for both, figures logged."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from mlflow.tracking import MlflowClient

from mlproject.config_from_params import resolve_config
from tests.helpers import REPO, mlflow_cli, subprocess_env
from mlproject.benchmark import diffusers_unet_like, peak_flops
from text2sign.models import UNet3D


@pytest.mark.parametrize("scale", ["tiny", "small", "large", "full"])
def test_diffusers_unet_is_built_to_our_parameter_count_within_ten_percent(scale):
    config = resolve_config("baseline", scale)
    with torch.device("meta"):
        ours = sum(p.numel() for p in UNet3D(config.model, context_dim=384).parameters())
        theirs = diffusers_unet_like(config, 384, ours)
    count = sum(p.numel() for p in theirs.parameters())
    assert abs(count / ours - 1) < 0.10, (ours, count)
    assert len(theirs.config.block_out_channels) == len(config.model.channel_mult)
    assert theirs.config.layers_per_block == config.model.num_res_blocks
    assert theirs.config.cross_attention_dim == 384 and theirs.config.in_channels == 3


def test_the_benchmark_trains_by_the_trainers_step_with_caption_dropout_and_the_lr_schedule():
    from mlproject.benchmark import SpanClock, TextTable, _loader, bench_training, train_steps
    from text2sign.data import build_dataset
    from text2sign.training.optimization import warmup_cosine

    class RecordingTable(TextTable):
        def __call__(self, texts):
            self.asked += texts
            return super().__call__(texts)

    config = resolve_config("baseline", "tiny", overrides="diffusion.text_dropout=0.5 train.warmup_steps=4")
    device = torch.device("cpu")
    dataset = build_dataset(config.data, "train")
    text = RecordingTable(config, dataset.texts, "random", device, seed=0)
    text.asked = []
    training = bench_training(UNet3D(config.model, context_dim=text.dim), config, text, device, len(dataset))
    train_steps(training, _loader(dataset, config, device)(), 2, SpanClock(device))

    assert "" in text.asked and set(text.asked) - {""}, text.asked  # some captions dropped, not all
    assert training.optimizer.param_groups[0]["lr"] == pytest.approx(config.train.lr * warmup_cosine(2, 4, training.num_steps))
    assert training.position.step == 2


def test_mfu_has_no_peak_off_cuda():
    assert peak_flops(torch.device("cpu")) is None


@pytest.mark.slow
def test_bench_entry_point_logs_a_bench_run_and_prints_the_speedup_last(tmp_path):
    out = subprocess.run(
        [*mlflow_cli(), "run", str(REPO), "-e", "bench", "-P", "scale=tiny", "-P", "device=cpu", "-P", "steps=2",
         "-P", "warmup_steps=1", "-P", "sample_videos=1", "-P", f"output={tmp_path / 'bench'}",
         "-P", "switches=ema_every,bf16", "-P", "overrides=ema.update_every=2",
         "--env-manager", "local", "--experiment-name", "text2sign-bench"],
        cwd=tmp_path, env=subprocess_env(tmp_path), capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("speedup (ours / diffusers, training videos/s):")

    figures = json.loads((tmp_path / "bench" / "bench_tiny_cpu.json").read_text())
    ours, theirs = figures["models"]
    assert (ours["name"], theirs["name"]) == ("ours", "diffusers")
    assert figures["speedup"] == pytest.approx(ours["videos_per_s"] / theirs["videos_per_s"])
    for model in (ours, theirs):
        assert model["videos_per_s"] > 0 and model["flops_per_step"] > 0 and 0 <= model["data_wait_frac"] < 1
        assert set(model["sample_s_per_video"]) == {"ddim_50", "dpmsolverpp_20"}
        assert model["mfu"] is None and model["peak_mem_gib"] is None  # CPU: no peak to divide by, no GPU memory
    assert f"{figures['speedup']:.2f}x" in last
    # bf16 autocast does nothing on a CPU, so only the EMA switch is measured there.
    (switch,) = figures["switches"]
    assert switch["key"] == "ema_every" and switch["gain"] == pytest.approx(switch["on_videos_per_s"] / switch["off_videos_per_s"])

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("text2sign-bench")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.tags["bench"] == "true" and run.info.status == "FINISHED"
    for key in ("bench/ours_videos_per_s", "bench/diffusers_videos_per_s", "bench/speedup", "bench/data_wait_frac",
                "bench/ema_frac", "bench/switch_gain/ema_every"):
        assert key in run.data.metrics, key
    assert run.data.metrics["bench/speedup"] == pytest.approx(figures["speedup"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--device", "tpu"], "device: got 'tpu'"),
        (["--device", "cpu", "--scale", "full"], "use -P scale=small"),
        (["--device", "cpu", "--text-encoder", "bert"], "text_encoder: got 'bert'"),
        (["--device", "cpu", "--scale", "huge"], "huge"),
        (["--device", "cpu", "--switches", "turbo"], "switches: unknown turbo"),
    ] + ([] if torch.cuda.is_available() else [(["--device", "cuda"], "no CUDA device is visible")]),
)
def test_bad_bench_input_is_a_usage_error_naming_the_fix(tmp_path, args, message):
    out = subprocess.run([sys.executable, "-m", "mlproject.bench", *args, "--output", str(tmp_path)], cwd=tmp_path,
                         env=subprocess_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and message in out.stderr, out.stderr[-2000:]


def test_switches_none_measures_no_switch_and_all_measures_every_one():
    # "none" maps to an empty list, which once read as "not given" and fell through to the comma split.
    from mlproject.bench import parse_switches
    from mlproject.benchmark import SWITCH_KEYS

    assert parse_switches("none", SWITCH_KEYS) == []
    assert parse_switches("all", SWITCH_KEYS) == list(SWITCH_KEYS)
    assert parse_switches(" bf16, compile ", SWITCH_KEYS) == ["bf16", "compile"]


def test_mlproject_declares_the_switches_parameter_of_bench():
    import yaml

    from tests.helpers import REPO

    bench = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]["bench"]
    assert bench["parameters"]["switches"]["default"] == "all" and "--switches {switches}" in bench["command"]


def test_a_bad_device_is_answered_before_pytorch_is_loaded(tmp_path):
    code = "import sys; from mlproject.bench import main; code = main(['--device', 'tpu']); print(code, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=subprocess_env(tmp_path),
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["2", "False"], out.stderr[-2000:]
