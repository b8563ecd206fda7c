"""One skeleton for every corpus: 50 points of the upper body and both hands, each x, y and a confidence.

    points 0-7    OpenPose BODY_25 points 0-7, in its order: nose, neck, right shoulder, elbow, wrist,
                  left shoulder, elbow, wrist ("right" is the signer's right, on the viewer's left)
    points 8-28   the right hand's 21 points, 29-49 the left hand's: OpenPose's and MediaPipe's hand order
                  (wrist; thumb, index, middle, ring, little finger, four points each from the palm out)

A clip's keypoints are float32 [T, 50, 3]: x and y in [0, 1] of the square the model sees (x right, y
down), then the detector's confidence. A point with confidence 0 is *missing*: not detected, no person in
the frame, a hand the detector lost, or a point the crop cut off. Its x and y are NaN, so that any code
that forgets the mask fails loudly instead of reading a zero as a position; every loss and metric masks
missing points, and the skeleton drawing leaves them out.

Corpora fill what they have: How2Sign's OpenPose JSON and MediaPipe Holistic fill all 50; the synthetic
signer fills 10 (`from_synthetic`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

BODY = ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist")
FINGERS = ("thumb", "index", "middle", "ring", "little")
HAND = ("wrist",) + tuple(f"{finger}_{joint}" for finger in FINGERS for joint in range(1, 5))
POINT_NAMES = BODY + tuple(f"right_hand_{p}" for p in HAND) + tuple(f"left_hand_{p}" for p in HAND)
NUM_POINTS = len(POINT_NAMES)  # 50
NOSE, NECK, RIGHT_SHOULDER, RIGHT_WRIST, LEFT_SHOULDER, LEFT_WRIST = 0, 1, 2, 4, 5, 7
RIGHT_HAND, LEFT_HAND = 8, 29  # where each hand's 21 points start


def _parents() -> tuple[int, ...]:
    """Each point's parent in the kinematic tree; the neck is the root (its own parent)."""
    parents = [NECK, NECK, NECK, 2, 3, NECK, 5, 6]
    for start, body_wrist in ((RIGHT_HAND, RIGHT_WRIST), (LEFT_HAND, LEFT_WRIST)):
        parents.append(body_wrist)  # the hand's wrist hangs from the arm's
        for finger in range(5):
            base = start + 1 + 4 * finger
            parents += [start] + [base + joint for joint in range(3)]
    return tuple(parents)


PARENT = _parents()
_DEPTH = 8  # the longest chain: a fingertip up through its finger, the hand, the arm to the neck


def _channels() -> tuple[tuple[int, ...], ...]:
    """The skeleton drawing's channels, as the points whose bones (to their parents) each one holds: a channel
    per arm segment and the nose, so the UNet tells left from right and upper arm from forearm, and one per
    finger, so a hand's shape is more than a blob. The hand's own wrist goes with the middle finger, the palm's axis."""
    body = tuple((point,) for point in range(1, len(BODY)) if point != NECK) + ((NOSE,),)
    hands = []
    for start in (RIGHT_HAND, LEFT_HAND):
        for finger in range(5):
            joints = tuple(start + 1 + 4 * finger + joint for joint in range(4))
            hands.append(((start,) if FINGERS[finger] == "middle" else ()) + joints)
    return tuple(sorted(body)) + tuple(hands)


CHANNELS = _channels()  # 7 body + 10 finger channels

# The synthetic signer's 10 points (text2sign.data.render.KEYPOINT_NAMES) in their nearest slots: its head
# centre stands in for the nose, and each hand's tip (the end of the hand's long axis) for that hand's middle
# fingertip; shoulders, elbows, wrists and neck are the same points. The other 40 slots stay missing.
SYNTHETIC_SLOTS = (NOSE, NECK, 2, 3, 4, RIGHT_HAND + 12, 5, 6, 7, LEFT_HAND + 12)


def missing(frames: int) -> np.ndarray:
    """Keypoints [frames, 50, 3] with every point missing."""
    points = np.full((frames, NUM_POINTS, 3), np.nan, dtype=np.float32)
    points[..., 2] = 0.0
    return points


# With fingers (`DataConfig.finger_keypoints`), each finger's base and tip go to its first and last point, right
# hand first; the hand tip then gives way to the middle finger's own tip, and the joints between stay missing.
SYNTHETIC_FINGER_SLOTS = tuple(
    hand + 1 + 4 * finger + joint for hand in (RIGHT_HAND, LEFT_HAND) for finger in range(5) for joint in (0, 3)
)
_HAND_TIPS = (5, 9)  # the synthetic signer's hand-tip points, in its own order


def from_synthetic(points: np.ndarray) -> np.ndarray:
    """The synthetic signer's [T, 10, 2] keypoints (all seen, confidence 1), or [T, 30, 2] with its fingers,
    -> [T, 50, 3]."""
    if points.shape[1] == len(SYNTHETIC_SLOTS):
        slots, chosen = SYNTHETIC_SLOTS, points
    else:
        body = [i for i in range(len(SYNTHETIC_SLOTS)) if i not in _HAND_TIPS]
        slots = tuple(SYNTHETIC_SLOTS[i] for i in body) + SYNTHETIC_FINGER_SLOTS
        chosen = np.concatenate([points[:, body], points[:, len(SYNTHETIC_SLOTS):]], axis=1)
    skeleton = missing(len(points))
    skeleton[:, slots, :2] = chosen
    skeleton[:, slots, 2] = 1.0
    return skeleton


def mark_missing(points: np.ndarray) -> np.ndarray:
    """[..., 50, 3] with every point of confidence <= 0 (or a non-finite coordinate) made missing: NaN x, y and 0."""
    points = points.astype(np.float32, copy=True)
    lost = ~(points[..., 2] > 0) | ~np.isfinite(points[..., :2]).all(-1)
    points[lost] = (np.nan, np.nan, 0.0)
    return points


def to_square(points: np.ndarray, width: int, height: int, pixel_centre: float) -> tuple[np.ndarray, int]:
    """Keypoints [..., 50, 3] in the pixels of a `width` x `height` frame -> the centred square the clip is cut
    to (`text2sign.data.frames.fit_square`), in [0, 1], and how many present points fell outside it (now missing).

    `pixel_centre` is where a detector puts the centre of pixel 0: 0 for OpenPose (x is the pixel's index),
    0.5 for coordinates on the continuous image plane (MediaPipe's, scaled to pixels)."""
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    points = mark_missing(points)
    xy = (points[..., :2] + (0.5 - pixel_centre) - np.array([left, top], dtype=np.float32)) / side
    inside = ((xy >= 0) & (xy <= 1)).all(-1)
    was_present = points[..., 2] > 0
    squared = np.concatenate([xy, points[..., 2:]], axis=-1)
    squared[~inside] = (np.nan, np.nan, 0.0)
    return mark_missing(squared), int((was_present & ~inside).sum())


def present(keypoints: Tensor) -> Tensor:
    """[..., K, 3] -> bool [..., K]: the points that were seen."""
    return keypoints[..., 2] > 0


def positions(keypoints: Tensor) -> Tensor:
    """[..., K, 3] -> [..., K, 2] with missing points at 0: only for arithmetic that the mask then discards."""
    return torch.where(present(keypoints)[..., None], keypoints[..., :2], torch.zeros_like(keypoints[..., :2]))


def bone_ends(seen: Tensor) -> Tensor:
    """bool [..., K] -> long [..., K]: the other end of each point's bone, its nearest seen ancestor (a missing
    finger joint is bridged, and the synthetic signer's hand tip joins its wrist); a point with no seen
    ancestor (the neck, or a nose without a neck) is its own end and is drawn as a dot."""
    parent = torch.tensor(PARENT, device=seen.device).expand_as(seen)
    ends = parent
    for _ in range(_DEPTH):
        end_seen = torch.gather(seen, -1, ends)
        ends = torch.where(end_seen | (ends == NECK), ends, torch.gather(parent, -1, ends))
    end_seen = torch.gather(seen, -1, ends)
    own = torch.arange(seen.shape[-1], device=seen.device).expand_as(seen)
    return torch.where(end_seen & (own != NECK), ends, own)


def placement(keypoints: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Where each clip's signer stands, from keypoints [B, T, K, 3]: the neck [B, 1, 1, 2] and the body unit, a
    shoulder half-width [B, 1, 1, 1], in image coordinates, and whether the clip has a placement at all [B].

    Medians over the clip's frames, so frames that lost a point do not move it. The half-width is half the
    shoulder span; in a frame with a shoulder missing (turned away, cut off) it falls back to the distance
    from the neck to the other shoulder, which is about the same on a real body. Where a frame has no neck,
    the midpoint of the shoulders stands in for it (MediaPipe's neck). A clip with neither is left out of
    everything placement feeds."""
    seen = present(keypoints)
    xy = positions(keypoints).float()
    shoulders_seen = seen[..., RIGHT_SHOULDER] & seen[..., LEFT_SHOULDER]
    midpoint = (xy[..., RIGHT_SHOULDER, :] + xy[..., LEFT_SHOULDER, :]) / 2
    neck_seen = seen[..., NECK] | shoulders_seen
    neck_frames = torch.where(seen[..., NECK, None], xy[..., NECK, :], midpoint)  # [B, T, 2]
    neck = _masked_median(neck_frames, neck_seen[..., None])  # [B, 2]
    # Half the shoulder span; with a shoulder missing, the neck-to-shoulder distance of the other.
    span = (xy[..., RIGHT_SHOULDER, :] - xy[..., LEFT_SHOULDER, :]).norm(dim=-1) / 2
    one_side = torch.where(seen[..., RIGHT_SHOULDER, None], xy[..., RIGHT_SHOULDER, :], xy[..., LEFT_SHOULDER, :])
    reach = (one_side - xy[..., NECK, :]).norm(dim=-1)
    half_width = torch.where(shoulders_seen, span, reach)
    width_seen = shoulders_seen | (seen[..., NECK] & (seen[..., RIGHT_SHOULDER] | seen[..., LEFT_SHOULDER]))
    scale = _masked_median(half_width[..., None], width_seen[..., None])  # [B, 1]
    valid = neck_seen.any(-1) & width_seen.any(-1)
    return neck[:, None, None, :], scale.clamp_min(1e-4)[:, None, None, :], valid


def _masked_median(values: Tensor, mask: Tensor) -> Tensor:
    """The median over dim 1 of `values` [B, T, D] where `mask` [B, T, 1] is True (0 where none is)."""
    filled = torch.where(mask, values, torch.full_like(values, float("nan")))
    median = filled.nanmedian(dim=1).values
    return torch.nan_to_num(median, nan=0.0)


def mean_point_error(predicted: Tensor, truth: Tensor) -> Tensor:
    """Per clip [B]: the mean over frames and present points of the distance between `predicted` [B, T, K, 2]
    and the true keypoints [B, T, K, 3] (missing points left out; 0 for a clip with none seen)."""
    seen = present(truth)
    distance = torch.where(seen, (predicted[..., :2].float() - positions(truth).float()).norm(dim=-1), 0.0)
    return distance.sum(dim=(1, 2)) / seen.sum(dim=(1, 2)).clamp_min(1)
