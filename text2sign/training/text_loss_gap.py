"""How much the denoiser relies on its text: the same denoising task under the true and a wrong caption.

A text-to-video model can learn its videos' look and ignore what it is asked, and nothing in the
training loss says so. The direct test needs no sampling: denoise the same clips, from the same noise
at the same timesteps, once under their own captions and once under other clips' captions. A model
that reads its text predicts worse under the wrong one, so

    text_loss_gap = loss(shuffled captions) - loss(true captions)

is about 0 for a model that ignores its text and grows as it learns to use it. It costs one more
validation pass, so training logs it every epoch (`val/text_loss_gap`) and a user sees in the UI the
step at which the text starts to matter, long before sampled videos can show it.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from text2sign.diffusion import Denoiser, GaussianDiffusion


def derangement(count: int, seed: int) -> list[int]:
    """For each of `count` items the index of another one: a random cyclic derangement, reproducible from `seed`.

    Walking a random permutation and pairing each item with the next one in the walk means no item is ever
    paired with itself, which a plain random permutation would do for about one in N.
    """
    if count < 2:
        raise ValueError(f"shuffling needs at least 2 items, got {count}")
    order = np.random.default_rng(seed).permutation(count)
    partner = [0] * count
    for position, index in enumerate(order):
        partner[index] = int(order[(position + 1) % count])
    return partner


def shuffled_texts(texts: Sequence[str], seed: int) -> list[str]:
    """Each text replaced by another prompt's (`derangement`)."""
    return [texts[j] for j in derangement(len(texts), seed)]


def losses_under_captions(model: Denoiser, encode: Callable[[list[str]], tuple[Tensor, Tensor]],
                          diffusion: GaussianDiffusion, x0: Tensor, captions: dict[str, list[str]],
                          generator: torch.Generator) -> dict[str, Tensor]:
    """The diffusion loss of the clips `x0` under each set of captions, every set from the same noise
    and timesteps: the generator's state is replayed for each, so only the text differs. Timesteps are
    uniform and unweighted whatever the training draws, so runs with other loss settings compare.

    `encode(texts)` gives (context, mask) for `model`; each caption list has one text per clip.
    """
    start = generator.get_state()
    losses = {}
    for name, texts in captions.items():
        generator.set_state(start)
        context, mask = encode(texts)
        losses[name] = diffusion.training_loss(model, x0, context, mask, generator, plain=True)
    return losses
