"""The pose plan: text -> pose -> video. Before the UNet draws a clip, a small transformer reads the caption
and says where the signer's head, shoulders, elbows, wrists and hands are in every frame; the UNet then draws
the clip with that skeleton in front of it, as extra input channels.

Why: most sign-language production systems generate keypoints from text and render them afterwards
(Progressive Transformers, Saunders et al. 2020; G2P-DDM; Sign-IDD; SignDiff; T2S-GPT). Text -> pose is a
small, supervised regression in which the caption decides nearly everything; pose -> pixels is local,
pixel-aligned work a convolutional network learns in a few hundred steps. Through cross-attention alone the
pixel model had to find which arm position a word asks for from a diffusion loss in which the arms are a
few percent of the pixels, and in the two-caption probe it never did (docs/steering.md).

At sampling time the UNet gets the text only: the planner turns it into the skeleton. In training the UNet
is shown the clip's true skeleton (teacher forcing) and the planner learns from the true keypoints by mean
squared error; a corpus without keypoints cannot train this path (config validation says so).

Where the signer stands and how big they are is not in the text. The planner therefore predicts the pose in
the signer's own body units (keypoints relative to the neck, in shoulder half-widths), which the caption
decides, and places it with one learnt placement (the corpus's mean neck position and body size), so the
signers' differing placements do not blur what it learns from the caption.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from text2sign import skeleton
from text2sign.data.render import NECK, UNIT
from text2sign.models.frame_plan import FramePlanner

NUM_KEYPOINTS = skeleton.NUM_POINTS
# A bone is drawn as a Gaussian ridge this wide (standard deviation, in frame widths): about an arm's
# radius in the synthetic signer, one pixel at 32x32.
BONE_WIDTH = 0.03


class PosePlanner(nn.Module):
    """Caption tokens -> keypoints [B, T, K, 3] (x, y in [0, 1] image coordinates, x right, y down, and a
    confidence), per frame, K = the 50 points of `text2sign.skeleton`.

    One query per frame, carrying the frame's relative time, attends to the caption and to the other frames
    (the frame plan's transformer, `FramePlanner`); its output is each frame's pose in body units, which the
    learnt placement puts into the image. The planner plans only the points its training corpus has
    (`points_seen`, a buffer filled from the keypoints it learns from, so it travels with the checkpoint):
    the synthetic signer's 10, or all 50 where a detector gave hands.
    """

    def __init__(self, context_dim: int, width: int, depth: int, head_dim: int):
        super().__init__()
        # The frame plan's transformer, its output a pose (x and y of every keypoint) instead of a conditioning vector.
        self.frames = FramePlanner(context_dim, width, NUM_KEYPOINTS * 2, depth, head_dim)
        # The untrained planner puts every keypoint at the neck: a calm start for the UNet.
        nn.init.zeros_(self.frames.out.weight)
        nn.init.zeros_(self.frames.out.bias)
        # Neck x, y and the shoulder half-width, as fractions of the frame; starts at the renderer's default signer.
        self.placement = nn.Parameter(torch.tensor([NECK[0], NECK[1], UNIT]))
        self.register_buffer("points_seen", torch.zeros(NUM_KEYPOINTS, dtype=torch.bool))

    def forward(self, context: Tensor, context_mask: Tensor, num_frames: int) -> Tensor:
        """context [B, L, D], context_mask [B, L] bool (a row with at least one True) -> [B, T, K, 3]."""
        return self.place(self.body_pose(context, context_mask, num_frames))

    def body_pose(self, context: Tensor, context_mask: Tensor, num_frames: int) -> Tensor:
        """The planned pose in body units [B, T, K, 2]: relative to the neck, in shoulder half-widths."""
        return self.frames(context, context_mask, num_frames).unflatten(-1, (NUM_KEYPOINTS, 2))

    def place(self, body_pose: Tensor, neck: Tensor | None = None, scale: Tensor | None = None) -> Tensor:
        """Body units [B, T, K, 2] -> keypoints [B, T, K, 3] at the learnt placement (or at `neck` [B, 1, 1, 2] and
        `scale` [B, 1, 1, 1]); the points the corpus never showed are missing."""
        xy = (self.placement[:2] if neck is None else neck) + (self.placement[2] if scale is None else scale) * body_pose
        seen = self.points_seen.expand(xy.shape[:-1])
        nan = torch.full_like(xy, float("nan"))
        return torch.cat([torch.where(seen[..., None], xy, nan), seen[..., None].to(xy.dtype)], dim=-1)

    def loss(self, context: Tensor, context_mask: Tensor, keypoints: Tensor) -> tuple[Tensor, Tensor]:
        """The planner's training loss against true keypoints [B, T, K, 3] (a float32 scalar: mean squared error
        of the body-unit pose over the points seen, plus that of the placement), and the planned keypoints
        [B, T, K, 3]."""
        seen = skeleton.present(keypoints)
        with torch.no_grad():
            self.points_seen |= seen.flatten(0, 1).any(0)
        body_pose = self.body_pose(context, context_mask, keypoints.shape[1]).float()
        neck, scale, placed = skeleton.placement(keypoints.float())
        target = (skeleton.positions(keypoints).float() - neck) / scale
        seen = seen & placed[:, None, None]  # a clip without a neck and shoulders has no body units
        squared = torch.where(seen[..., None], (body_pose - target) ** 2, 0.0)
        pose_error = squared.sum() / (2 * seen.sum()).clamp_min(1)
        true_placement = torch.cat([neck, scale], dim=-1).flatten(1)[placed]  # [B', 3]
        placement_error = (F.mse_loss(self.placement.float().expand_as(true_placement), true_placement)
                           if len(true_placement) else self.placement.sum() * 0.0)
        return pose_error + placement_error, self.place(body_pose)


def pose_maps(keypoints: Tensor, size: int) -> Tensor:
    """The skeleton as pictures: keypoints [B, T, K, 3] in [0, 1] -> [B, len(skeleton.CHANNELS), T, size, size] in
    [0, 1], each channel its bones (an arm segment, the nose, a finger) drawn as Gaussian ridges around their
    segments. A missing point draws nothing; its bone's neighbours join across it (`skeleton.bone_ends`)."""
    seen = skeleton.present(keypoints)
    xy = skeleton.positions(keypoints)
    ends = skeleton.bone_ends(seen)
    a = xy[..., None, None, :]  # [B, T, K, 1, 1, 2]
    b = torch.gather(xy, 2, ends[..., None].expand_as(xy))[..., None, None, :]
    centres = (torch.arange(size, device=keypoints.device, dtype=xy.dtype) + 0.5) / size
    pixels = torch.stack(torch.meshgrid(centres, centres, indexing="xy"), dim=-1)  # [H, W, 2] as (x, y)
    along = b - a
    reach = ((pixels - a) * along).sum(-1) / (along * along).sum(-1).clamp_min(1e-8)
    nearest = a + reach.clamp(0.0, 1.0)[..., None] * along
    ridges = torch.exp(-((pixels - nearest) ** 2).sum(-1) / (2 * BONE_WIDTH**2)) * seen[..., None, None]
    # Each channel the brightest of its bones; the padding index K points at a blank picture.
    blank = torch.zeros_like(ridges[:, :, :1])
    members = _channel_members(keypoints.device)
    grouped = torch.cat([ridges, blank], dim=2)[:, :, members]  # [B, T, C, M, H, W]
    return grouped.amax(dim=3).transpose(1, 2)


def _channel_members(device: torch.device) -> Tensor:
    """[C, M] point indices of each channel, padded with K (a blank picture)."""
    width = max(len(points) for points in skeleton.CHANNELS)
    rows = [list(points) + [NUM_KEYPOINTS] * (width - len(points)) for points in skeleton.CHANNELS]
    return torch.tensor(rows, device=device)
