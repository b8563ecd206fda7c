"""The generator as one module, text encoder + video UNet, and how to sample videos from it.

The diffusion process (`text2sign.diffusion`) stays outside: the network predicts, the process decides
what to predict and how to walk from noise to a video.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from text2sign import skeleton
from text2sign.config import Config, ConfigError
from text2sign.diffusion import GaussianDiffusion
from text2sign.models import UNet3D
from text2sign.text_encoder import TextEncoder


class TextToSign(nn.Module):
    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        self.text_encoder = TextEncoder(config.text.encoder, config.text.max_length, freeze=config.text.freeze)
        self.unet = UNet3D(config.model, context_dim=self.text_encoder.dim)

    def encode(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """Token embeddings [B, L, D] and their mask [B, L]."""
        return self.text_encoder(texts)

    def forward(self, x: Tensor, timesteps: Tensor, context: Tensor, context_mask: Tensor,
                keypoints: Tensor | None = None) -> Tensor:
        """x [B, 3, T, H, W] noisy video -> the UNet's prediction [B, 3, T, H, W]. `keypoints` [B, T, K, 3]:
        the skeleton a pose-plan model draws in training; otherwise (and always at sampling) None."""
        return self.unet(x, timesteps, context, context_mask, keypoints)

    def trainable_state_dict(self) -> dict[str, Tensor]:
        """What a checkpoint must hold: the UNet, and the encoder only if it is trained."""
        state = {f"unet.{k}": v for k, v in self.unet.state_dict().items()}
        if not self.config.text.freeze:
            state.update({f"text_encoder.{k}": v for k, v in self.text_encoder.state_dict().items()})
        return state

    @classmethod
    def for_inference(cls, config: Config, checkpoint: dict, weights: str = "auto") -> tuple["TextToSign", str]:
        """The model of a checkpoint with the weights it is evaluated and served with: by default ("auto") the
        EMA's unless the run trained without EMA; "ema" or "raw" to ask for one. Returns the model (in eval
        mode) and which weights it holds, "ema" or "raw"."""
        weights = _inference_weights(config, checkpoint, weights)
        model = cls(config)
        model.load_trainable_state_dict(checkpoint[weights])
        return model.eval(), "ema" if weights == "ema" else "raw"

    @staticmethod
    def inference_checkpoint(config: Config, checkpoint: dict) -> dict:
        """The part of a training checkpoint that `for_inference` reads: the weights it picks, the step and
        the config. No optimizer state and no second copy of the weights, so a registered model of a run
        whose text encoder trained is a quarter of its checkpoint (~90 MB against ~370 MB)."""
        weights = _inference_weights(config, checkpoint)
        return {"model": {}, "ema": {}, weights: checkpoint[weights], "step": checkpoint["step"],
                "config": checkpoint["config"]}

    def load_trainable_state_dict(self, state: dict[str, Tensor]) -> None:
        unet = {k.removeprefix("unet."): v for k, v in state.items() if k.startswith("unet.")}
        self.unet.load_state_dict(ten_point_skeleton_upgraded(planner_layers_renamed(unet)))
        text = {k.removeprefix("text_encoder."): v for k, v in state.items() if k.startswith("text_encoder.")}
        if text:
            self.text_encoder.load_state_dict(text)
            self.text_encoder.clear_cache()


def planner_layers_renamed(unet_state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A UNet state dict with the pose planner's layers under today's names.

    Checkpoints written before the planner became the frame plan's transformer with a pose head hold its
    layers as `pose_planner.<layer>`; they are `pose_planner.frames.<layer>` since, with the same shapes. Its
    learnt `placement` kept its name. Any other state dict is returned as it is."""
    if any(k.startswith("pose_planner.frames.") for k in unet_state) or "pose_planner.placement" not in unet_state:
        return unet_state

    def renamed(key: str) -> str:
        if key.startswith("pose_planner.") and key != "pose_planner.placement":
            return "pose_planner.frames." + key.removeprefix("pose_planner.")
        return key
    return {renamed(k): v for k, v in unet_state.items()}


# The pose-plan input channels of checkpoints from before the common skeleton, in their order (one bone each:
# neck-head, the right arm's three segments and its hand, the same on the left), as channels of today's drawing.
_TEN_POINT_BONE_CHANNELS = (0, 1, 2, 3, 9, 4, 5, 6, 14)


def ten_point_skeleton_upgraded(unet_state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A UNet state dict of a pose-plan model from before the common 50-point skeleton, when the
    planner and the drawing had the synthetic signer's 10 points, as today's model that computes the same: the
    planner's output rows move to those points' slots (`skeleton.SYNTHETIC_SLOTS`), the UNet's skeleton input
    channels to the channels that draw the same bones, and the rest is zero. Any other state dict is returned
    as it is, so registered models trained before the change still load and sample alike."""
    if "pose_planner.placement" not in unet_state or "pose_planner.points_seen" in unet_state:
        return unet_state
    state = dict(unet_state)
    slots = torch.tensor(skeleton.SYNTHETIC_SLOTS)
    rows = torch.stack([2 * slots, 2 * slots + 1], dim=1).flatten()
    for name in ("weight", "bias"):
        old = state[f"pose_planner.frames.out.{name}"]
        new = old.new_zeros((2 * skeleton.NUM_POINTS, *old.shape[1:]))
        new[rows] = old
        state[f"pose_planner.frames.out.{name}"] = new
    old = state["conv_in.weight"]  # [C, 3 + 9, ...]
    new = old.new_zeros((old.shape[0], 3 + len(skeleton.CHANNELS), *old.shape[2:]))
    new[:, :3] = old[:, :3]
    new[:, [3 + c for c in _TEN_POINT_BONE_CHANNELS]] = old[:, 3:]
    state["conv_in.weight"] = new
    seen = torch.zeros(skeleton.NUM_POINTS, dtype=torch.bool)
    seen[slots] = True
    state["pose_planner.points_seen"] = seen
    return state


def _inference_weights(config: Config, checkpoint: dict, asked: str = "auto") -> str:
    """The checkpoint key a run is evaluated and served with. "auto": "ema" unless the run trained without
    EMA. The raw weights are there to compare with the EMA's at the same step, without training again."""
    has_ema = config.ema.enabled and bool(checkpoint["ema"])
    if asked == "auto":
        return "ema" if has_ema else "model"
    if asked == "raw" and checkpoint["model"]:
        return "model"
    if asked == "ema" and has_ema:
        return "ema"
    if asked not in ("ema", "raw"):
        raise ConfigError(f"weights: got {asked!r}, expected auto, ema or raw.")
    other = "raw" if asked == "ema" else "ema"
    raise ConfigError(f"weights: this checkpoint holds no {asked} weights (the run trained without EMA, or it is a "
                      f"registered model, which keeps only the weights it serves); use weights=auto or weights={other}.")


@torch.no_grad()
def generate(
    model: TextToSign,
    diffusion: GaussianDiffusion,
    texts: list[str],
    *,
    num_frames: int,
    image_size: int,
    guidance_scale: float,
    steps: int,
    sampler: str,
    seed: int = 0,
    autocast_dtype: torch.dtype | None = None,
    shared_noise: bool = False,
    keypoints: Tensor | None = None,
    video_seeds: list[int] | None = None,
) -> Tensor:
    """Videos [B, 3, T, H, W] in [-1, 1] for `texts`, reproducible from `seed` on any device.
    `shared_noise`: every text starts from the same noise, so the videos differ only by their text.
    `video_seeds`, one per text: each video's noise drawn from its own seed instead, so that a video does not
    depend on the batch it is generated in (`evaluation` picks its batch size for speed).
    `keypoints` [B, T, K, 3], for a pose-plan model only: draw these skeletons instead of the ones planned from
    the texts (evaluation's ground-truth-pose reading; guidance's unconditional half keeps the empty text's plan)."""
    if keypoints is not None and model.unet.pose_planner is None:
        raise ValueError("keypoints given to a model without a pose plan (model.pose_plan is off)")
    was_training = model.training
    model.eval()
    device = next(model.unet.parameters()).device
    context, mask = model.encode(texts)
    null_context, null_mask = model.encode([""])
    generator = torch.Generator().manual_seed(seed)
    with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        videos = diffusion.sample(
            model if keypoints is None else _drawing(model, keypoints),
            context,
            mask,
            null_context,
            null_mask,
            (len(texts), 3, num_frames, image_size, image_size),
            guidance_scale=guidance_scale,
            steps=steps,
            sampler=sampler,
            generator=generator,
            shared_noise=shared_noise,
            noise=None if video_seeds is None else starting_noise(video_seeds, (3, num_frames, image_size, image_size)),
        )
    model.train(was_training)
    return videos.float()


def starting_noise(video_seeds: list[int], shape: tuple[int, ...]) -> Tensor:
    """[len(video_seeds), *shape] standard normal noise, each video's from its own seed alone."""
    return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(seed)) for seed in video_seeds])


def _drawing(model: TextToSign, keypoints: Tensor):
    """A denoiser that shows the UNet `keypoints` [B, T, K, 3] for the first B rows of a batch (the texts) and
    the planner's skeletons for the rest (the empty text of classifier-free guidance)."""

    def denoise(x: Tensor, timesteps: Tensor, context: Tensor, context_mask: Tensor) -> Tensor:
        planned = model.unet.pose_planner(context, context_mask, x.shape[2])
        shown = torch.cat([keypoints.to(planned), planned[len(keypoints):]])
        return model(x, timesteps, context, context_mask, keypoints=shown)

    return denoise
