"""No EMA: samples and evaluation use the raw trained weights."""

overrides = {
    "ema.enabled": False,
}
