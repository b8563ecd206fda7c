"""The text encoder trained with the video model, at its own, smaller learning rate."""

overrides = {
    "text.freeze": False,
    "text.lr": 1e-5,
}
