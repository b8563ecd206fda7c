"""val/text_loss_gap: the same denoising task under true and wrong captions, so only the text differs."""

from __future__ import annotations

import pytest
import torch

from text2sign.config import DiffusionConfig
from text2sign.diffusion import GaussianDiffusion
from text2sign.training.text_loss_gap import losses_under_captions, shuffled_texts

CLIPS = 4
DIFFUSION = GaussianDiffusion(DiffusionConfig(prediction_type="v_prediction"))
# Clip i is the constant video i/4: a caption "clip i" names it exactly.
X0 = torch.stack([torch.full((3, 2, 4, 4), i / CLIPS) for i in range(CLIPS)])
CAPTIONS = [f"clip {i}" for i in range(CLIPS)]


def encode(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    values = torch.tensor([float(text.split()[1]) / CLIPS for text in texts])
    return values[:, None, None], torch.ones(len(texts), 1, dtype=torch.bool)


def text_blind(x, timesteps, context, mask):
    return 0.5 * x


def oracle(x, timesteps, context, mask):
    """Reads the clean clip off the caption and returns the exact velocity for it: loss 0 when told the truth."""
    alpha_bar = DIFFUSION.noise_scheduler.alphas_cumprod[timesteps].view(-1, 1, 1, 1, 1)
    x0 = context.view(-1, 1, 1, 1, 1).expand_as(x)
    noise = (x - alpha_bar.sqrt() * x0) / (1 - alpha_bar).sqrt()
    return alpha_bar.sqrt() * noise - (1 - alpha_bar).sqrt() * x0


def gap(model) -> float:
    captions = {"true": CAPTIONS, "shuffled": shuffled_texts(CAPTIONS, seed=0)}
    losses = losses_under_captions(model, encode, DIFFUSION, X0, captions, torch.Generator().manual_seed(5))
    return (losses["shuffled"] - losses["true"]).item()


def test_a_model_that_ignores_its_text_has_a_gap_of_exactly_zero():
    # Exactly: both caption sets see the same noise and timesteps, so nothing but the text can differ.
    assert gap(text_blind) == 0.0


def test_a_model_that_reads_its_text_has_a_positive_gap():
    assert gap(oracle) > 0.01


def test_the_true_captions_loss_is_the_plain_diffusion_loss_from_the_same_generator():
    losses = losses_under_captions(oracle, encode, DIFFUSION, X0, {"true": CAPTIONS, "shuffled": CAPTIONS[::-1]},
                                   torch.Generator().manual_seed(5))
    context, mask = encode(CAPTIONS)
    plain = DIFFUSION.training_loss(oracle, X0, context, mask, torch.Generator().manual_seed(5))
    assert losses["true"].item() == pytest.approx(plain.item(), abs=1e-7)


def test_shuffled_captions_never_keep_a_clips_own_text():
    for seed in range(20):
        assert all(wrong != own for wrong, own in zip(shuffled_texts(CAPTIONS, seed), CAPTIONS))
