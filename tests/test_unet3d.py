import copy
import dataclasses

import pytest
import torch

from text2sign.config import ModelConfig
from text2sign.models import UNet3D

CONTEXT_DIM = 32
TINY = ModelConfig(channels=16, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,),
                   transformer_depth=1, head_dim=8)


def make_model(config: ModelConfig = TINY, seed: int = 0) -> UNet3D:
    """A tiny UNet whose zero-initialised layers are randomised, so the output depends on everything."""
    torch.manual_seed(seed)
    model = UNet3D(config, CONTEXT_DIM)
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.any():
                parameter.normal_(std=0.1)
    return model


def make_inputs(frames: int = 4, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, frames, 16, 16, generator=generator)
    timesteps = torch.tensor([3, 700])
    context = torch.randn(2, 5, CONTEXT_DIM, generator=generator)
    mask = torch.tensor([[True, True, True, False, False], [True, True, True, True, True]])
    return x, timesteps, context, mask


@pytest.mark.parametrize("frames", [4, 2])
def test_output_shape_matches_input(frames):
    x, timesteps, context, mask = make_inputs(frames)
    assert UNet3D(TINY, CONTEXT_DIM)(x, timesteps, context, mask).shape == x.shape


def test_fresh_model_predicts_zero():
    x, timesteps, context, mask = make_inputs()
    assert torch.equal(UNet3D(TINY, CONTEXT_DIM)(x, timesteps, context, mask), torch.zeros_like(x))


def test_float_and_scalar_timesteps_are_accepted():
    model = make_model().eval()
    x, _, context, mask = make_inputs()
    by_int = model(x, torch.tensor([250, 250]), context, mask)
    assert torch.allclose(model(x, torch.tensor([250.0, 250.0]), context, mask), by_int)
    assert torch.allclose(model(x, torch.tensor(250), context, mask), by_int)


def test_backward_gives_finite_gradients_to_every_parameter():
    model = make_model()
    x, timesteps, context, mask = make_inputs()
    model(x, timesteps, context, mask).square().mean().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_masked_context_tokens_have_no_effect():
    model = make_model().eval()
    x, timesteps, context, mask = make_inputs()
    changed = context.clone()
    changed[0, 3:] = 100 * torch.randn(2, CONTEXT_DIM)
    with torch.no_grad():
        assert torch.allclose(model(x, timesteps, context, mask), model(x, timesteps, changed, mask), atol=1e-5)


def test_context_without_real_tokens_gives_finite_output():
    model = make_model().eval()
    x, timesteps, context, mask = make_inputs()
    mask[0] = False
    with torch.no_grad():
        assert torch.isfinite(model(x, timesteps, context, mask)).all()


def test_output_depends_on_context():
    model = make_model().eval()
    x, timesteps, context, mask = make_inputs()
    with torch.no_grad():
        difference = model(x, timesteps, context, mask) - model(x, timesteps, torch.randn_like(context), mask)
    assert difference[0].abs().max() > 1e-3
    assert difference[1].abs().max() > 1e-3


def test_output_depends_on_other_frames():
    model = make_model().eval()
    x, timesteps, context, mask = make_inputs()
    changed = x.clone()
    changed[:, :, -1] = torch.randn_like(changed[:, :, -1])
    with torch.no_grad():
        difference = model(x, timesteps, context, mask) - model(changed, timesteps, context, mask)
    assert difference[:, :, 0].abs().max() > 1e-3  # frame 0 sees the last frame through time


def test_gradient_checkpointing_matches_plain_backward():
    config = dataclasses.replace(TINY, dropout=0.1)
    plain = make_model(config)
    checkpointed = make_model(dataclasses.replace(config, gradient_checkpointing=True))
    checkpointed.load_state_dict(plain.state_dict())
    x, timesteps, context, mask = make_inputs()
    outputs = []
    for model in (plain, checkpointed):
        torch.manual_seed(5)  # the same dropout masks in both runs
        output = model(x, timesteps, context, mask)
        output.square().mean().backward()
        outputs.append(output)
    assert torch.allclose(outputs[0], outputs[1], atol=1e-6)
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-6), name


def test_channels_last_gives_the_same_output():
    model = make_model().eval()
    x, timesteps, context, mask = make_inputs()
    with torch.no_grad():
        expected = model(x, timesteps, context, mask)
        model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last_3d)
        output = model_cl(x.contiguous(memory_format=torch.channels_last_3d), timesteps, context, mask)
    assert torch.allclose(output, expected, atol=1e-5)


def test_the_frame_planner_gives_each_frame_its_own_vector_from_the_caption():
    from text2sign.models.frame_plan import FramePlanner

    torch.manual_seed(0)
    planner = FramePlanner(CONTEXT_DIM, width=16, embedding_dim=24, depth=2, head_dim=8)
    _, _, context, mask = make_inputs()
    with torch.no_grad():
        plan = planner(context, mask, num_frames=5)
        other = planner(torch.randn_like(context), mask, num_frames=5)
    assert plan.shape == (2, 5, 24)
    assert not torch.allclose(plan[:, 0], plan[:, 4])  # frames differ: each knows its moment
    assert not torch.allclose(plan, other)  # and what it reads depends on the caption
