"""train.cpu_bf16: bf16 autocast on a CPU, only where the CPU does bf16 in hardware."""

from __future__ import annotations

import pytest
import torch

from mlproject.config_from_params import resolve_config
from text2sign import hardware
from text2sign.config import ConfigError, TrainConfig
from text2sign.models import UNet3D
from text2sign.scales import scale_overrides

CPU = torch.device("cpu")


def test_the_bf16_hardware_flags_are_read_from_cpuinfo():
    assert hardware.cpu_has_native_bf16("flags\t\t: fpu sse avx2 avx512f avx512_bf16 vaes")
    assert hardware.cpu_has_native_bf16("flags\t\t: fpu amx_tile amx_bf16 amx_int8")
    assert not hardware.cpu_has_native_bf16("flags\t\t: fpu sse avx2 avx512f avx512_vnni")
    assert not hardware.cpu_has_native_bf16("")


def test_a_cpu_autocasts_to_bf16_only_when_asked_and_able(monkeypatch):
    monkeypatch.setattr(hardware, "_this_cpu_has_native_bf16", lambda: True)
    assert hardware.autocast_dtype(TrainConfig(), CPU) is None  # off by default: fp32 on a CPU
    assert hardware.autocast_dtype(TrainConfig(cpu_bf16=True), CPU) is torch.bfloat16
    assert hardware.autocast_dtype(TrainConfig(cpu_bf16=True, precision="fp32"), CPU) is None
    assert hardware.autocast_dtype(TrainConfig(), torch.device("cuda")) is torch.bfloat16
    monkeypatch.setattr(hardware, "_this_cpu_has_native_bf16", lambda: False)
    assert hardware.autocast_dtype(TrainConfig(cpu_bf16=True), CPU) is None  # evaluated in fp32 elsewhere


def test_cpu_bf16_on_a_cpu_without_bf16_hardware_is_refused_with_the_fix(monkeypatch):
    monkeypatch.setattr(hardware, "_this_cpu_has_native_bf16", lambda: False)
    with pytest.raises(ConfigError, match=r"train.cpu_bf16: .*no bf16 arithmetic in hardware.*drop train.cpu_bf16=true"):
        hardware.check_cpu_bf16(TrainConfig(cpu_bf16=True), CPU)
    hardware.check_cpu_bf16(TrainConfig(), CPU)  # not asked: nothing to refuse


def test_the_train_entry_point_refuses_it_before_opening_a_run(monkeypatch, tmp_path, capsys):
    from mlproject import train

    monkeypatch.setattr(hardware, "_this_cpu_has_native_bf16", lambda: False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    code = train.main(["--scale", "tiny", "--overrides", "train.cpu_bf16=true"])
    assert code == 2
    assert "train.cpu_bf16" in capsys.readouterr().err
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.skipif(not hardware.cpu_has_native_bf16(), reason="this CPU has no bf16 hardware")
def test_the_unet_runs_forward_and_backward_under_cpu_bf16_autocast():
    config = resolve_config("baseline", "tiny")
    unet = UNet3D(config.model, context_dim=8)
    x = torch.randn(2, 3, config.data.num_frames, config.data.image_size, config.data.image_size)
    with torch.autocast("cpu", dtype=hardware.autocast_dtype(TrainConfig(cpu_bf16=True), CPU)):
        out = unet(x, torch.tensor([10, 500]), torch.randn(2, 5, 8), torch.ones(2, 5, dtype=torch.bool))
        loss = out.float().pow(2).mean()
    loss.backward()
    assert out.dtype == torch.bfloat16 and out.shape == x.shape
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in unet.parameters())
    assert scale_overrides("small").get("train.cpu_bf16") is None  # not a default until measured on the corpus
