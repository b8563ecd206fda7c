import copy

import pytest
import torch
from torch import nn

from text2sign.training.ema import ema_decay, update_ema


def make_pair():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    ema = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter))
    model.train()(torch.randn(8, 4))  # moves the BatchNorm running statistics (buffers)
    return ema, model


def test_one_update_mixes_old_and_new_weights_by_decay():
    ema, model = make_pair()
    before = [p.clone() for p in ema.parameters()]
    update_ema(ema, model, decay=0.9)
    for ema_parameter, old, new in zip(ema.parameters(), before, model.parameters()):
        assert torch.allclose(ema_parameter, 0.9 * old + 0.1 * new)


def test_decay_zero_copies_the_model():
    ema, model = make_pair()
    update_ema(ema, model, decay=0.0)
    for ema_parameter, parameter in zip(ema.parameters(), model.parameters()):
        assert torch.equal(ema_parameter, parameter)


def test_buffers_are_copied_not_averaged():
    ema, model = make_pair()
    update_ema(ema, model, decay=0.99)
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers()):
        assert torch.equal(ema_buffer, buffer)


def test_update_leaves_the_model_and_its_gradients_alone():
    ema, model = make_pair()
    expected = [p.clone() for p in model.parameters()]
    update_ema(ema, model, decay=0.5)
    assert all(torch.equal(p, e) for p, e in zip(model.parameters(), expected))
    assert all(not p.requires_grad or p.grad is None for p in ema.parameters())


def test_mismatched_models_are_refused():
    with pytest.raises(ValueError, match="parameters"):
        update_ema(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), decay=0.9)


def test_decay_warms_up_then_caps_at_max_decay():
    assert ema_decay(0, 0.9999) == pytest.approx(0.1)
    assert ema_decay(10, 0.9999) == pytest.approx(11 / 20)
    assert ema_decay(890, 0.9999) == pytest.approx(0.99)
    assert ema_decay(10**6, 0.9999) == 0.9999
    assert ema_decay(10**6, 0.5) == 0.5
    decays = [ema_decay(n, 0.9999) for n in range(2000)]
    assert decays == sorted(decays)


def test_ema_changes_what_is_validated_never_what_trains(tmp_path):
    # The study's stability reading rests on this: with one seed, a run with EMA and one without take the same
    # optimizer steps (the same train/loss), and differ only in the weights that are validated and evaluated.
    from mlproject.config_from_params import resolve_config
    from text2sign.training.reporting import MemoryTracker
    from text2sign.training.trainer import train

    histories = {}
    for ablation in ("baseline", "no_ema"):
        tracker = MemoryTracker()
        train(resolve_config(ablation, "tiny"), tmp_path / ablation, tracker, progress=False)
        histories[ablation] = tracker.history("train/loss"), tracker.history("val/loss")
    assert histories["baseline"][0] == histories["no_ema"][0]
    assert histories["baseline"][1] != histories["no_ema"][1]
