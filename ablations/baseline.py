"""Baseline: the pretrained text encoder frozen (its embeddings cached), EMA of the weights on."""

overrides = {
    "text.freeze": True,
    "ema.enabled": True,
}
