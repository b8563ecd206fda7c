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

from text2sign.data.render import KEYPOINT_NAMES, NECK, UNIT
from text2sign.models.frame_plan import FramePlanner

# The skeleton's segments, one input channel each, so the UNet tells left from right and upper arm from hand.
BONES: tuple[tuple[str, str], ...] = (
    ("neck", "head"),
    ("neck", "right_shoulder"),
    ("right_shoulder", "right_elbow"),
    ("right_elbow", "right_wrist"),
    ("right_wrist", "right_hand_tip"),
    ("neck", "left_shoulder"),
    ("left_shoulder", "left_elbow"),
    ("left_elbow", "left_wrist"),
    ("left_wrist", "left_hand_tip"),
)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)
_NECK, _RIGHT_SHOULDER, _LEFT_SHOULDER = (KEYPOINT_NAMES.index(n) for n in ("neck", "right_shoulder", "left_shoulder"))
# A bone is drawn as a Gaussian ridge this wide (standard deviation, in frame widths): about an arm's
# radius in the synthetic signer, one pixel at 32x32.
BONE_WIDTH = 0.03


class PosePlanner(nn.Module):
    """Caption tokens -> keypoints [B, T, K, 2] in [0, 1] image coordinates (x right, y down), per frame.

    One query per frame, carrying the frame's relative time, attends to the caption and to the other frames
    (the frame plan's transformer, `FramePlanner`); its output is each frame's pose in body units, which the
    learnt placement puts into the image.
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

    def forward(self, context: Tensor, context_mask: Tensor, num_frames: int) -> Tensor:
        """context [B, L, D], context_mask [B, L] bool (a row with at least one True) -> [B, T, K, 2]."""
        return self.place(self.body_pose(context, context_mask, num_frames))

    def body_pose(self, context: Tensor, context_mask: Tensor, num_frames: int) -> Tensor:
        """The planned pose in body units [B, T, K, 2]: relative to the neck, in shoulder half-widths."""
        return self.frames(context, context_mask, num_frames).unflatten(-1, (NUM_KEYPOINTS, 2))

    def place(self, body_pose: Tensor) -> Tensor:
        """Body units [B, T, K, 2] -> image coordinates, at the learnt placement."""
        return self.placement[:2] + self.placement[2] * body_pose

    def loss(self, context: Tensor, context_mask: Tensor, keypoints: Tensor) -> tuple[Tensor, Tensor]:
        """The planner's training loss against true keypoints [B, T, K, 2] (a float32 scalar: mean squared error
        of the body-unit pose, plus that of the placement), and the planned keypoints [B, T, K, 2]."""
        body_pose = self.body_pose(context, context_mask, keypoints.shape[1]).float()
        neck, scale = placement_of(keypoints.float())
        true_placement = torch.cat([neck, scale], dim=-1).flatten(1)  # [B, 3]
        pose_error = F.mse_loss(body_pose, (keypoints.float() - neck) / scale)
        placement_error = F.mse_loss(self.placement.float().expand_as(true_placement), true_placement)
        return pose_error + placement_error, self.place(body_pose)


def placement_of(keypoints: Tensor) -> tuple[Tensor, Tensor]:
    """Where a clip's signer stands: the neck [B, 1, 1, 2] and the shoulder half-width [B, 1, 1, 1], both in
    image coordinates, from keypoints [B, T, K, 2] (the first frame: the body does not move)."""
    first = keypoints[:, :1]
    neck = first[:, :, _NECK : _NECK + 1]
    scale = (first[:, :, _RIGHT_SHOULDER] - first[:, :, _LEFT_SHOULDER]).norm(dim=-1)[..., None, None] / 2
    return neck, scale.clamp_min(1e-4)


def pose_maps(keypoints: Tensor, size: int) -> Tensor:
    """The skeleton as pictures: keypoints [B, T, K, 2] in [0, 1] -> [B, len(BONES), T, size, size] in [0, 1],
    each channel one bone drawn as a Gaussian ridge around its segment."""
    index = {name: i for i, name in enumerate(KEYPOINT_NAMES)}
    starts = keypoints[:, :, [index[a] for a, _ in BONES]]  # [B, T, N, 2]
    ends = keypoints[:, :, [index[b] for _, b in BONES]]
    centres = (torch.arange(size, device=keypoints.device, dtype=keypoints.dtype) + 0.5) / size
    pixels = torch.stack(torch.meshgrid(centres, centres, indexing="xy"), dim=-1)  # [H, W, 2] as (x, y)
    a, b = starts[..., None, None, :], ends[..., None, None, :]  # [B, T, N, 1, 1, 2]
    along = b - a
    reach = ((pixels - a) * along).sum(-1) / (along * along).sum(-1).clamp_min(1e-8)
    nearest = a + reach.clamp(0.0, 1.0)[..., None] * along
    squared_distance = ((pixels - nearest) ** 2).sum(-1)  # [B, T, N, H, W]
    return torch.exp(-squared_distance / (2 * BONE_WIDTH**2)).transpose(1, 2)
