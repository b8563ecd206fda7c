import pytest
import torch

from text2sign.config import DiffusionConfig
from text2sign.diffusion import GaussianDiffusion

SHAPE = (2, 3, 2, 8, 8)
PREDICTION_TYPES = ["epsilon", "v_prediction"]
SAMPLERS = ["ddim", "dpmsolver++"]


def text_inputs(batch: int = 2):
    context = torch.randn(batch, 4, 6, generator=torch.Generator().manual_seed(3))
    mask = torch.ones(batch, 4, dtype=torch.bool)
    null_context, null_mask = torch.zeros(1, 4, 6), torch.ones(1, 4, dtype=torch.bool)
    return context, mask, null_context, null_mask


def scaled_input(x, t, context, mask):
    return 0.3 * x + 0.01 * context.mean()


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_training_loss_is_a_finite_float32_scalar(prediction_type):
    diffusion = GaussianDiffusion(DiffusionConfig(prediction_type=prediction_type))
    x0 = torch.rand(SHAPE) * 2 - 1
    context, mask, _, _ = text_inputs()
    loss = diffusion.training_loss(scaled_input, x0, context, mask, torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and loss.dtype == torch.float32 and torch.isfinite(loss)


def test_training_loss_is_reproducible_from_the_generator_seed():
    diffusion = GaussianDiffusion(DiffusionConfig())
    x0 = torch.rand(SHAPE) * 2 - 1
    context, mask, _, _ = text_inputs()

    def loss(seed):
        return diffusion.training_loss(scaled_input, x0, context, mask, torch.Generator().manual_seed(seed))

    assert loss(7) == loss(7)
    assert loss(7) != loss(8)


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_training_loss_is_zero_for_the_exact_target(prediction_type):
    diffusion = GaussianDiffusion(DiffusionConfig(prediction_type=prediction_type))
    x0 = torch.rand(SHAPE) * 2 - 1
    context, mask, _, _ = text_inputs()
    loss = diffusion.training_loss(oracle(diffusion, x0), x0, context, mask, torch.Generator().manual_seed(0))
    assert loss < 1e-8


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_sample_has_the_requested_shape_and_range(prediction_type, sampler):
    diffusion = GaussianDiffusion(DiffusionConfig(prediction_type=prediction_type))
    context, mask, null_context, null_mask = text_inputs()
    sample = diffusion.sample(scaled_input, context, mask, null_context, null_mask, SHAPE, guidance_scale=3.0,
                              steps=5, sampler=sampler, generator=torch.Generator().manual_seed(0))
    assert sample.shape == SHAPE
    assert torch.isfinite(sample).all() and sample.abs().max() <= 1.0


def test_sample_is_reproducible_from_the_generator_seed():
    diffusion = GaussianDiffusion(DiffusionConfig())
    context, mask, null_context, null_mask = text_inputs()

    def sample(seed):
        return diffusion.sample(scaled_input, context, mask, null_context, null_mask, SHAPE, guidance_scale=2.0,
                                steps=3, sampler="dpmsolver++", generator=torch.Generator().manual_seed(seed))

    assert torch.equal(sample(1), sample(1))
    assert not torch.equal(sample(1), sample(2))


@pytest.mark.parametrize("guidance_scale, batch_per_call", [(1.0, 2), (4.0, 4)])
def test_guidance_batches_the_unconditional_pass_only_when_needed(guidance_scale, batch_per_call):
    diffusion = GaussianDiffusion(DiffusionConfig())
    context, mask, null_context, null_mask = text_inputs()
    batch_sizes = []

    def recording_model(x, t, context, mask):
        batch_sizes.append((x.shape[0], t.shape[0], context.shape[0], mask.shape[0]))
        return torch.zeros_like(x)

    diffusion.sample(recording_model, context, mask, null_context, null_mask, SHAPE,
                     guidance_scale=guidance_scale, steps=4, sampler="ddim", generator=torch.Generator())
    assert batch_sizes == [(batch_per_call,) * 4] * 4


def test_guidance_extrapolates_from_unconditional_to_conditional():
    diffusion = GaussianDiffusion(DiffusionConfig(prediction_type="epsilon"))
    context, mask, null_context, null_mask = text_inputs()
    context = torch.ones_like(context)  # null_context is zeros

    def text_model(x, t, context, mask):  # predicts 0.1 with the caption, 0 without
        return 0.1 * context[:, :1, :1, None, None].expand_as(x)

    def guided_model(x, t, context, mask):  # what guidance at scale 3 should turn text_model into
        return torch.full_like(x, 0.3)

    def run(model, scale):
        return diffusion.sample(model, context, mask, null_context, null_mask, SHAPE, guidance_scale=scale,
                                steps=3, sampler="ddim", generator=torch.Generator().manual_seed(0))

    assert torch.allclose(run(text_model, 3.0), run(guided_model, 1.0), atol=1e-6)


def oracle(diffusion: GaussianDiffusion, x0: torch.Tensor):
    """A model that knows the clean clip x0: it returns the exact epsilon or v target for any x_t."""
    alphas_cumprod = diffusion.noise_scheduler.alphas_cumprod.double()

    def model(x_t, t, context, mask):
        alpha = alphas_cumprod[t.long()].view(-1, 1, 1, 1, 1)
        x_t, clean = x_t.double(), x0.double().repeat(x_t.shape[0] // x0.shape[0], 1, 1, 1, 1)
        epsilon = (x_t - alpha.sqrt() * clean) / (1 - alpha).sqrt()
        if diffusion.config.prediction_type == "epsilon":
            return epsilon.float()
        return (alpha.sqrt() * epsilon - (1 - alpha).sqrt() * clean).float()

    return model


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("steps", [2, 7, 25])
def test_sampler_recovers_x0_from_an_oracle_model(prediction_type, sampler, steps):
    # Not steps=1: x0 from epsilon at the last training timestep divides by sqrt(alpha_bar) ~ 5e-5,
    # which turns float32 rounding into ~1e-3 errors; any later step corrects them.
    diffusion = GaussianDiffusion(DiffusionConfig(prediction_type=prediction_type))
    x0 = torch.rand(SHAPE, generator=torch.Generator().manual_seed(4)) * 1.8 - 0.9
    context, mask, null_context, null_mask = text_inputs()
    sample = diffusion.sample(oracle(diffusion, x0), context, mask, null_context, null_mask, SHAPE,
                              guidance_scale=1.0, steps=steps, sampler=sampler,
                              generator=torch.Generator().manual_seed(0))
    assert torch.allclose(sample, x0, atol=1e-4)


def test_unknown_sampler_is_refused():
    with pytest.raises(ValueError, match="ddim"):
        GaussianDiffusion(DiffusionConfig()).make_sampler("euler")


def test_plain_loss_ignores_the_motion_weight():
    from text2sign.config import DiffusionConfig

    x0 = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    context, mask, _, _ = text_inputs()
    plain_mse = GaussianDiffusion(DiffusionConfig())
    weighted = GaussianDiffusion(DiffusionConfig(motion_weight=1.0))

    def loss(diffusion, plain):
        return diffusion.training_loss(scaled_input, x0, context, mask, torch.Generator().manual_seed(7), plain=plain)

    assert torch.allclose(loss(weighted, plain=True), loss(plain_mse, plain=False))
    assert not torch.equal(loss(weighted, plain=False), loss(plain_mse, plain=False))


def test_motion_weights_lean_on_moving_pixels_and_are_one_when_off():
    from text2sign.diffusion import motion_weights

    x0 = torch.zeros(1, 3, 4, 8, 8)
    x0[:, :, :, 2, 3] = torch.tensor([-1.0, 1.0, -1.0, 1.0])  # one pixel moves, the rest is still
    weights = motion_weights(x0, strength=1.0)
    assert weights.shape == (1, 1, 4, 8, 8)
    assert float(weights[0, 0, 0, 0, 0]) == 1.0  # a still pixel keeps weight 1
    assert float(weights[0, 0, 0, 2, 3]) == 1.0 + 64.0  # the one mover carries the clip's whole motion
    assert torch.equal(motion_weights(x0, strength=0.0), torch.ones(1, 1, 4, 8, 8))


def test_motion_weighted_loss_counts_errors_on_moving_pixels_more():
    from text2sign.config import DiffusionConfig

    x0 = torch.zeros(1, 3, 2, 8, 8)
    x0[:, :, 1, :2] = 1.0  # the top rows change between the frames
    context, mask, _, _ = text_inputs(1)

    def loss(motion_weight, error_rows):
        def model(x, t, c, m):
            target = diffusion.noise_scheduler.get_velocity(x0, noise, t)
            error = torch.zeros_like(x0)
            error[..., error_rows, :] = 0.5
            return target + error
        diffusion = GaussianDiffusion(DiffusionConfig(motion_weight=motion_weight))
        generator = torch.Generator().manual_seed(0)
        noise = diffusion.draw_noise(tuple(x0.shape), torch.Generator().manual_seed(0)).noise
        return float(diffusion.training_loss(model, x0, context, mask, generator))

    moving, still = slice(0, 2), slice(4, 6)
    assert loss(0.0, moving) == pytest.approx(loss(0.0, still))
    assert loss(1.0, moving) > 3 * loss(1.0, still)


def test_shared_noise_gives_a_text_blind_model_one_clip_for_every_caption():
    _, mask, null_context, null_mask = text_inputs(3)
    context = torch.randn(3, 4, 6)

    def text_blind(x, t, c, m):
        return 0.3 * x

    def run(shared_noise):
        return GaussianDiffusion(DiffusionConfig()).sample(
            text_blind, context, mask, null_context, null_mask, (3, 3, 2, 8, 8), guidance_scale=1.0, steps=4,
            sampler="ddim", generator=torch.Generator().manual_seed(0), shared_noise=shared_noise)

    shared, separate = run(shared_noise=True), run(shared_noise=False)
    assert torch.equal(shared[0], shared[1]) and torch.equal(shared[1], shared[2])
    assert not torch.allclose(separate[0], separate[1])
