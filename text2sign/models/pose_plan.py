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
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from text2sign.data.render import KEYPOINT_NAMES
from text2sign.models.embeddings import sinusoidal_embedding
from text2sign.models.frame_plan import RELATIVE_TIME_SCALE, FramePlanBlock

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
# A bone is drawn as a Gaussian ridge this wide (standard deviation, in frame widths): about an arm's
# radius in the synthetic signer, one pixel at 32x32.
BONE_WIDTH = 0.03


class PosePlanner(nn.Module):
    """Caption tokens -> keypoints [B, T, K, 2] in [0, 1] image coordinates (x right, y down), per frame.

    One query per frame, carrying the frame's relative time, attends to the caption and to the other frames
    (the same blocks as the frame plan); a linear head reads each frame's x and y of every keypoint.
    """

    def __init__(self, context_dim: int, width: int, depth: int, head_dim: int):
        super().__init__()
        self.width = width
        self.text_in = nn.Linear(context_dim, width)
        self.time_in = nn.Linear(width, width)
        self.blocks = nn.ModuleList(FramePlanBlock(width, head_dim) for _ in range(depth))
        self.norm_out = nn.LayerNorm(width)
        self.out = nn.Linear(width, NUM_KEYPOINTS * 2)
        # The untrained planner puts every keypoint at the centre of the frame: a calm start for the UNet.
        nn.init.zeros_(self.out.weight)
        nn.init.constant_(self.out.bias, 0.5)

    def forward(self, context: Tensor, context_mask: Tensor, num_frames: int) -> Tensor:
        """context [B, L, D], context_mask [B, L] bool (a row with at least one True) -> [B, T, K, 2]."""
        times = torch.linspace(0.0, 1.0, num_frames, device=context.device) * RELATIVE_TIME_SCALE
        queries = self.time_in(sinusoidal_embedding(times, self.width).to(context.dtype))
        frames = queries.expand(context.shape[0], -1, -1)
        text = self.text_in(context)
        for block in self.blocks:
            frames = block(frames, text, context_mask)
        return self.out(self.norm_out(frames)).unflatten(-1, (NUM_KEYPOINTS, 2))


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
