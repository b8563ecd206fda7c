"""Draws the synthetic signer: glosses and an appearance in, RGB frames and 2-D keypoints out.

Everything is drawn from signed distance fields (capsules, ellipses, a rounded box) with a one-pixel
smooth edge, so the frames are anti-aliased at any size from 8 to 256 pixels. Speed comes from two
choices: the body, head and background do not move, so they are drawn once per clip; the arms and
hands are drawn for all frames at once, but only inside a small window around each limb.

Geometry follows `lexicon`: own-side units (shoulder half-widths from the base of the neck, x out to
the hand's side, y down). The dominant hand is the signer's right, on the viewer's left.

Real motion is drawn by the same painter (`render_skeleton`): a recording's 50-point skeleton
(`text2sign.skeleton`), moved onto this signer's body by `place_on_signer`, gets the same background, body and
head, its arms the same sleeves and its hands skin-coloured capsules along their bones, so a model learns one
drawing whichever corpus the motion came from.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from text2sign import skeleton
from text2sign.data.lexicon import HAND_SHAPES, REST, HandMotion, Sign, ease, hand_track, lookup

KEYPOINT_NAMES = (
    "head",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "right_hand_tip",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "left_hand_tip",
)
# With fingers (`DataConfig.finger_keypoints`), each hand's five fingers follow, from the dominant (right) hand:
# where each finger's capsule starts (its base, at the palm) and ends (its tip), thumb first.
FINGER_KEYPOINT_NAMES = tuple(
    f"{hand}_{finger}_{end}" for hand in ("right", "left")
    for finger in ("thumb", "index", "middle", "ring", "little") for end in ("base", "tip")
)

# Body layout. UNIT is a shoulder half-width as a fraction of the frame at body_scale 1.
UNIT = 0.16
NECK = (0.5, 0.38)
HEAD_CENTRE = (0.0, -0.8)
HEAD_RADII = (0.5, 0.62)
SHOULDER = np.array([1.0, 0.4, 0.0])
UPPER_ARM, FOREARM = 1.25, 1.1
UPPER_ARM_RADIUS, FOREARM_RADIUS = 0.27, 0.22
# Hands sign this far in front of the shoulders. Solving the arm in 3-D with the elbow pulled
# down and back is what keeps elbows from flipping sides as a hand crosses the body.
SIGNING_DEPTH = 0.6
ELBOW_POLE = np.array([0.3, 1.0, -0.3])
WRIST_TO_PALM = 0.35
HAND_LENGTH = 0.75

# Timing, in beats (a sign of duration 1 lasts one beat).
LEAD_IN = 0.6  # from the rest pose to the first sign
TRANSITION = 0.45  # from the end of one sign to the start of the next

# Hand shapes as six capsules (palm, thumb, index, middle, ring, little finger), each
# (ax, ay, bx, by, radius) in hand lengths from the wrist, x along the hand, y across it.
# Every shape has the same six capsules, so a change of shape is a plain interpolation.
_FINGER = 0.085
_CURLED = [  # fingers folded into the palm
    [0.30, 0.18, 0.48, 0.16, _FINGER],
    [0.55, 0.12, 0.62, 0.10, _FINGER],
    [0.58, 0.04, 0.66, 0.03, _FINGER],
    [0.57, -0.05, 0.64, -0.04, _FINGER],
    [0.53, -0.13, 0.60, -0.11, _FINGER],
]
HAND_GEOMETRY: dict[str, np.ndarray] = {
    "fist": np.array([[0.22, 0.0, 0.40, 0.0, 0.25], *_CURLED]),
    "flat": np.array(
        [
            [0.22, 0.0, 0.42, 0.0, 0.2],
            [0.30, 0.18, 0.60, 0.24, _FINGER],
            [0.55, 0.12, 1.00, 0.12, _FINGER],
            [0.58, 0.04, 1.05, 0.04, _FINGER],
            [0.57, -0.04, 1.00, -0.04, _FINGER],
            [0.53, -0.12, 0.90, -0.12, _FINGER],
        ]
    ),
    "open": np.array(
        [
            [0.22, 0.0, 0.42, 0.0, 0.2],
            [0.30, 0.18, 0.50, 0.58, _FINGER],
            [0.55, 0.12, 0.95, 0.40, _FINGER],
            [0.58, 0.04, 1.05, 0.08, _FINGER],
            [0.57, -0.04, 1.00, -0.22, _FINGER],
            [0.53, -0.12, 0.85, -0.44, _FINGER],
        ]
    ),
    "point": np.array([[0.22, 0.0, 0.40, 0.0, 0.25], _CURLED[0], [0.55, 0.10, 1.12, 0.10, _FINGER], *_CURLED[2:]]),
    "v": np.array(
        [[0.22, 0.0, 0.40, 0.0, 0.25], _CURLED[0], [0.55, 0.10, 1.05, 0.32, _FINGER], [0.57, 0.03, 1.08, -0.14, _FINGER], *_CURLED[3:]]
    ),
    "y": np.array(
        [[0.22, 0.0, 0.40, 0.0, 0.25], [0.30, 0.18, 0.55, 0.58, _FINGER], *_CURLED[1:4], [0.53, -0.12, 0.90, -0.45, _FINGER]]
    ),
    # A C seen from the side: fingers (index, then middle) and thumb (thumb, then ring) each bend
    # in two segments around an opening; the little finger lies along the ring finger.
    "c": np.array(
        [
            [0.22, 0.0, 0.40, 0.0, 0.2],
            [0.30, -0.15, 0.65, -0.38, _FINGER],
            [0.50, 0.15, 0.85, 0.40, _FINGER],
            [0.85, 0.40, 1.05, 0.15, _FINGER],
            [0.65, -0.38, 0.88, -0.22, _FINGER],
            [0.65, -0.36, 0.86, -0.20, _FINGER],
        ]
    ),
}
assert set(HAND_GEOMETRY) == set(HAND_SHAPES)

# A hand pose per frame is one row: centre x, y, depth z, finger angle (radians), then the
# 6 x 5 hand-shape capsules. Blending two rows blends everything at once.
_X, _Y, _Z, _ANGLE, _SHAPE = 0, 1, 2, 3, 4
POSE_WIDTH = _SHAPE + 30

_SKIN_TONES = np.array(
    [[0.96, 0.80, 0.69], [0.91, 0.72, 0.58], [0.80, 0.58, 0.43], [0.62, 0.43, 0.30], [0.44, 0.30, 0.21]]
)
_HAIR_COLOURS = np.array(
    [[0.08, 0.06, 0.05], [0.25, 0.15, 0.08], [0.55, 0.35, 0.15], [0.85, 0.72, 0.45], [0.6, 0.6, 0.6], [0.6, 0.22, 0.1]]
)


@dataclass(frozen=True)
class Appearance:
    """How one signer looks and how fast they sign. Colours are RGB in [0, 1]."""

    clothing: tuple[float, float, float]
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    background: tuple[float, float, float]
    body_scale: float = 1.0
    offset: tuple[float, float] = (0.0, 0.0)  # shift of the signer, as a fraction of the frame
    # Signing speed relative to the slowest signer (1.0), who uses the whole clip; a faster
    # signer finishes early and spends the spare time at rest before and holding after.
    speed: float = 1.0

    @staticmethod
    def sample(rng: np.random.Generator) -> Appearance:
        skin = np.clip(_SKIN_TONES[rng.integers(len(_SKIN_TONES))] + rng.uniform(-0.03, 0.03, 3), 0, 1)
        # Clothing is darker or lighter than the skin by a clear margin, so hands stay visible over it;
        # where the drawn side has no room (light skin, lighter clothes), it goes to the other side.
        skin_value, gap = float(skin.max()), float(rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 0.5))
        value = skin_value + gap if 0.12 <= skin_value + gap <= 0.95 else skin_value - gap
        clothing = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.3, 0.8), float(np.clip(value, 0.12, 0.95)))
        background = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.0, 0.15), rng.uniform(0.7, 0.95))
        hair = np.clip(_HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))] + rng.uniform(-0.03, 0.03, 3), 0, 1)
        return Appearance(
            clothing=tuple(float(c) for c in clothing),
            skin=tuple(float(c) for c in skin),
            hair=tuple(float(c) for c in hair),
            background=tuple(float(c) for c in background),
            body_scale=float(rng.uniform(0.88, 1.08)),
            offset=(float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.03, 0.03))),
            speed=float(rng.uniform(1.0, 1.35)),
        )


DEFAULT_APPEARANCE = Appearance(
    clothing=(0.2, 0.3, 0.55), skin=(0.91, 0.72, 0.58), hair=(0.25, 0.15, 0.08), background=(0.85, 0.85, 0.82)
)


def toward_default(appearance: Appearance, variation: float) -> Appearance:
    """`appearance` moved toward DEFAULT_APPEARANCE: every colour, size, offset and speed at `variation` of
    its distance from the default (0: the default signer; 1: `appearance` itself)."""
    if variation == 1.0:
        return appearance

    def blend(default, drawn):
        if isinstance(default, tuple):
            return tuple(float(d + variation * (x - d)) for d, x in zip(default, drawn))
        return float(default + variation * (drawn - default))

    return Appearance(**{name: blend(getattr(DEFAULT_APPEARANCE, name), getattr(appearance, name))
                         for name in Appearance.__dataclass_fields__})


def render(
    glosses: Sequence[str], appearance: Appearance, size: int, num_frames: int, fingers: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Render a signer signing `glosses` in order.

    Returns video float32 [3, T, H, W] in [-1, 1] (H = W = size, T = num_frames) and keypoints
    float32 [T, K, 2] in [0, 1] image coordinates (x right, y down): K = len(KEYPOINT_NAMES), and with
    `fingers` the FINGER_KEYPOINT_NAMES after them.
    """
    if size < 8 or num_frames < 2:
        raise ValueError(f"need size >= 8 and num_frames >= 2, got size={size}, num_frames={num_frames}")
    frame = _Frame(appearance, size)
    dominant, non_dominant = _limbs(glosses, frame, num_frames)
    video = np.repeat(_draw_still_parts(frame, appearance)[:, None], num_frames, axis=1)
    clothing, skin = _colour(appearance.clothing), _colour(appearance.skin)
    # Arms first, then hands, so a hand in front of the other arm stays visible; dominant on top.
    for limb in (non_dominant, dominant):
        _paint_capsules(video, limb.arm_a, limb.arm_b, limb.arm_radius, _sleeve(clothing), 0.6 * clothing, frame.outline)
    for limb in (non_dominant, dominant):
        _paint_capsules(video, limb.hand_a, limb.hand_b, limb.hand_radius, skin, 0.65 * skin, frame.outline)

    video *= 2.0
    video -= 1.0
    return video, _keypoints(frame, dominant, non_dominant, num_frames, fingers)


def render_keypoints(
    glosses: Sequence[str], appearance: Appearance, size: int, num_frames: int, fingers: bool = False
) -> np.ndarray:
    """The keypoints `render` returns for the same arguments, without drawing the video (under half the time),
    for what learns from the motion alone (the pose planner's first phase)."""
    frame = _Frame(appearance, size)
    dominant, non_dominant = _limbs(glosses, frame, num_frames)
    return _keypoints(frame, dominant, non_dominant, num_frames, fingers)


def _limbs(glosses: Sequence[str], frame: _Frame, num_frames: int) -> tuple[_Limb, _Limb]:
    """Both arms and hands in every frame: the dominant hand, then the other."""
    if not glosses:
        raise ValueError("need at least one gloss to render")
    signs = [lookup(g) for g in glosses]
    times = _content_times(signs, frame.appearance.speed, num_frames)
    # The dominant hand is the signer's right: mirrored (side -1) onto the viewer's left.
    dominant = _pose_limbs(_hand_poses(signs, "dominant", times), frame, side=-1)
    non_dominant = _pose_limbs(_hand_poses(signs, "non_dominant", times), frame, side=1)
    return dominant, non_dominant


def _keypoints(frame: _Frame, dominant: _Limb, non_dominant: _Limb, num_frames: int, fingers: bool) -> np.ndarray:
    """[T, K, 2] in [0, 1] image coordinates: head, neck, then each arm's shoulder, elbow, wrist and hand tip;
    with `fingers`, then each hand's fingers' bases and tips (the capsules after the palm's)."""
    head_and_neck = frame.to_image(np.array([HEAD_CENTRE, (0.0, 0.0)]), side=1)
    parts = [np.broadcast_to(head_and_neck, (num_frames, 2, 2)), dominant.joints, non_dominant.joints]
    if fingers:
        for limb in (dominant, non_dominant):  # [T, 5, 2, 2]: finger, (base, tip), (x, y)
            parts.append(np.stack([limb.hand_a[:, 1:], limb.hand_b[:, 1:]], axis=2).reshape(num_frames, 10, 2))
    return (np.concatenate(parts, axis=1) / frame.size).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Timing: which pose each frame shows


def _content_times(signs: Sequence[Sign], speed: float, num_frames: int) -> np.ndarray:
    """Time into the signing (beats) shown by each of the `num_frames` frames [T]."""
    total = LEAD_IN + sum(s.duration for s in signs) + TRANSITION * (len(signs) - 1)
    clip_times = np.linspace(0.0, total, num_frames)
    spare = total - total / speed
    return np.clip((clip_times - spare / 2) * speed, 0.0, total)


def _motion_pose(motion: HandMotion, u: np.ndarray, depth: float) -> np.ndarray:
    """Pose rows [N, POSE_WIDTH] of one hand motion at normalized times u [N]."""
    track = hand_track(motion, u)
    start = HAND_GEOMETRY[motion.shape]
    end = HAND_GEOMETRY[motion.shape_end or motion.shape]
    shape = start + (end - start) * track.shape_mix[:, None, None]
    return np.concatenate(
        [track.centre, np.full((len(u), 1), depth), track.angle[:, None], shape.reshape(len(u), -1)], axis=1
    )


def _blend_poses(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Pose rows going from a [POSE_WIDTH] to b [POSE_WIDTH] at weights w [N]; the hand turns the short way."""
    out = a + (b - a) * w[:, None]
    turn = (b[_ANGLE] - a[_ANGLE] + np.pi) % (2 * np.pi) - np.pi
    out[:, _ANGLE] = a[_ANGLE] + turn * w
    return out


def _hand_poses(signs: Sequence[Sign], hand: str, times: np.ndarray) -> np.ndarray:
    """Pose rows [T, POSE_WIDTH] of one hand ("dominant" or "non_dominant") at content times [T]."""
    ends = np.array([0.0, 1.0])
    previous_end = _motion_pose(REST, ends[:1], 0.0)[0]
    poses = np.empty((len(times), POSE_WIDTH))
    start_time = 0.0
    for i, sign in enumerate(signs):
        motion = getattr(sign, hand) or REST
        depth = 0.0 if motion is REST else SIGNING_DEPTH
        sign_start, sign_end = _motion_pose(motion, ends, depth)
        gap = LEAD_IN if i == 0 else TRANSITION
        moving = (times >= start_time) & (times < start_time + gap)
        if moving.any():
            w = (times[moving] - start_time) / gap
            poses[moving] = _blend_poses(previous_end, sign_start, ease(w))
        start_time += gap
        signing = (times >= start_time) & ((times < start_time + sign.duration) | (i == len(signs) - 1))
        if signing.any():
            u = np.clip((times[signing] - start_time) / sign.duration, 0.0, 1.0)
            poses[signing] = _motion_pose(motion, u, depth)
        start_time += sign.duration
        previous_end = sign_end
    return poses


# ---------------------------------------------------------------------------------------------
# Kinematics: from hand poses to arm joints and hand capsules in pixels


@dataclass(frozen=True)
class _Frame:
    """The mapping from own-side units to pixels for one signer in one image size."""

    appearance: Appearance
    size: int

    @property
    def pixels_per_unit(self) -> float:
        return UNIT * self.appearance.body_scale * self.size

    @property
    def outline(self) -> float:
        return self.size / 80.0  # outline width in pixels: thin at 64, still visible at 256

    def to_image(self, points: np.ndarray, side: int) -> np.ndarray:
        """Own-side points [..., 2] to pixel coordinates [..., 2]; side -1 mirrors (the signer's right)."""
        origin = (np.array(NECK) + np.array(self.appearance.offset)) * self.size
        scale = np.array([side, 1.0]) * self.pixels_per_unit
        return origin + points * scale


@dataclass
class _Limb:
    joints: np.ndarray  # [T, 4, 2] shoulder, elbow, wrist, hand tip (pixels)
    arm_a: np.ndarray  # [T, 2, 2] upper arm and forearm capsule starts (pixels)
    arm_b: np.ndarray  # [T, 2, 2] their ends
    arm_radius: np.ndarray  # [T, 2] pixels
    hand_a: np.ndarray  # [T, 6, 2]
    hand_b: np.ndarray  # [T, 6, 2]
    hand_radius: np.ndarray  # [T, 6]


def _solve_arm(wrist_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elbow and (reachable) wrist [T, 3] for wrist targets [T, 3], by two-bone inverse kinematics."""
    to_target = wrist_target - SHOULDER
    distance = np.linalg.norm(to_target, axis=1, keepdims=True)
    direction = to_target / np.maximum(distance, 1e-9)
    reach = np.clip(distance, abs(UPPER_ARM - FOREARM) + 1e-3, UPPER_ARM + FOREARM - 1e-3)
    cos_shoulder = (UPPER_ARM**2 + reach**2 - FOREARM**2) / (2 * UPPER_ARM * reach)
    # The elbow lies on a circle around the shoulder-wrist line; take the point nearest the pole.
    pole = ELBOW_POLE - (direction @ ELBOW_POLE)[:, None] * direction
    pole /= np.maximum(np.linalg.norm(pole, axis=1, keepdims=True), 1e-9)
    elbow = SHOULDER + UPPER_ARM * (cos_shoulder * direction + np.sqrt(1 - cos_shoulder**2) * pole)
    return elbow, SHOULDER + direction * reach


def _pose_limbs(poses: np.ndarray, frame: _Frame, side: int) -> _Limb:
    """Arm joints and hand capsules in pixels for pose rows [T, POSE_WIDTH] of one hand."""
    angle = poses[:, _ANGLE]
    along = np.stack([np.cos(angle), np.sin(angle)], axis=1)  # [T, 2] towards the fingertips
    across = np.stack([-along[:, 1], along[:, 0]], axis=1)
    wrist_target = np.concatenate([poses[:, :2] - WRIST_TO_PALM * along, poses[:, _Z : _Z + 1]], axis=1)
    elbow, wrist = _solve_arm(wrist_target)
    elbow, wrist = elbow[:, :2], wrist[:, :2]  # the camera looks straight at the signer

    shape = poses[:, _SHAPE:].reshape(-1, 6, 5)  # hand-local capsules, see HAND_GEOMETRY

    def hand_to_body(local: np.ndarray) -> np.ndarray:  # [T, 6, 2] hand lengths -> own-side units
        return wrist[:, None] + HAND_LENGTH * (local[..., :1] * along[:, None] + local[..., 1:] * across[:, None])

    # The hand-tip keypoint is the hand's farthest reach along the fingers: a fist's is short.
    reach = (np.maximum(shape[:, :, 0], shape[:, :, 2]) + shape[:, :, 4]).max(axis=1, keepdims=True)
    tip = wrist + HAND_LENGTH * reach * along
    shoulder = np.broadcast_to(SHOULDER[:2], wrist.shape)
    pixels_per_unit = frame.pixels_per_unit
    return _Limb(
        joints=frame.to_image(np.stack([shoulder, elbow, wrist, tip], axis=1), side),
        arm_a=frame.to_image(np.stack([shoulder, elbow], axis=1), side),
        arm_b=frame.to_image(np.stack([elbow, wrist], axis=1), side),
        arm_radius=np.broadcast_to(np.array([UPPER_ARM_RADIUS, FOREARM_RADIUS]) * pixels_per_unit, (len(poses), 2)),
        hand_a=frame.to_image(hand_to_body(shape[:, :, 0:2]), side),
        hand_b=frame.to_image(hand_to_body(shape[:, :, 2:4]), side),
        hand_radius=shape[:, :, 4] * HAND_LENGTH * pixels_per_unit,
    )


# ---------------------------------------------------------------------------------------------
# Drawing


def _capsule_distance(px, py, ax, ay, bx, by, radius):
    """Signed distance from points (px, py) to the capsule a-b of `radius`; all arguments broadcast."""
    pax, pay = px - ax, py - ay
    bax, bay = bx - ax, by - ay
    h = np.clip((pax * bax + pay * bay) / np.maximum(bax * bax + bay * bay, 1e-12), 0.0, 1.0)
    return np.sqrt((pax - bax * h) ** 2 + (pay - bay * h) ** 2) - radius


def _colour(rgb: Sequence[float]) -> np.ndarray:
    return np.asarray(rgb, dtype=np.float32)


def _paint(canvas: np.ndarray, distance: np.ndarray, colour: np.ndarray, outline_colour: np.ndarray | None, outline: float) -> None:
    """Paint a shape, given its signed distance in pixels [...], over canvas float32 [3, ...] in place.

    Coverage falls from 1 to 0 over the pixel straddling the edge: that is the anti-aliasing.
    """
    extra = (1,) * distance.ndim
    distance = distance.astype(np.float32, copy=False)
    if outline_colour is not None:
        alpha = np.clip(0.5 + outline - distance, 0.0, 1.0)
        canvas += alpha * (outline_colour.reshape(3, *extra) - canvas)
    alpha = np.clip(0.5 - distance, 0.0, 1.0)
    canvas += alpha * (colour.reshape(3, *extra) - canvas)


def _paint_capsules(
    video: np.ndarray, a: np.ndarray, b: np.ndarray, radius: np.ndarray, colour: np.ndarray, outline_colour: np.ndarray, outline: float
) -> None:
    """Paint the union of N capsules per frame over video [3, T, H, W] in place.

    a, b: capsule ends [T, N, 2] in pixels; radius [T, N] in pixels. The distance field is only
    computed inside one window per frame around the capsules; all frames share the window size
    so they are computed together.
    """
    _, frames, height, width = video.shape
    margin = radius[..., None] + outline + 1.0
    low = (np.minimum(a, b) - margin).min(axis=1)  # [T, 2]
    high = (np.maximum(a, b) + margin).max(axis=1)
    window_w = int(min(width, math.ceil((high[:, 0] - low[:, 0]).max()) + 1))
    window_h = int(min(height, math.ceil((high[:, 1] - low[:, 1]).max()) + 1))
    x0 = np.clip(np.floor(low[:, 0]).astype(int), 0, width - window_w)
    y0 = np.clip(np.floor(low[:, 1]).astype(int), 0, height - window_h)
    xs = x0[:, None] + np.arange(window_w)  # pixel columns of each frame's window, [T, w]
    ys = y0[:, None] + np.arange(window_h)  # [T, h]

    def per_capsule(values: np.ndarray) -> np.ndarray:  # [T, N] -> [T, N, 1, 1]
        return values[:, :, None, None].astype(np.float32)

    distance = _capsule_distance(
        (xs + 0.5).astype(np.float32)[:, None, None, :],
        (ys + 0.5).astype(np.float32)[:, None, :, None],
        per_capsule(a[..., 0]),
        per_capsule(a[..., 1]),
        per_capsule(b[..., 0]),
        per_capsule(b[..., 1]),
        per_capsule(radius),
    ).min(axis=1)  # [T, h, w]
    # Every (h, w) window of every frame, as a view; picking one per frame copies whole rows at a
    # time, and windows of different frames never share memory, so writing back through it is safe.
    windows = np.lib.stride_tricks.sliding_window_view(video, (window_h, window_w), axis=(2, 3), writeable=True)
    frame_index = np.arange(frames)
    window = windows[:, frame_index, y0, x0]  # [3, T, h, w]
    _paint(window, distance, colour, outline_colour, outline)
    windows[:, frame_index, y0, x0] = window


def _sleeve(clothing: np.ndarray) -> np.ndarray:
    """Sleeves a shade off the body's colour, so an arm across the chest stays visible."""
    return np.clip(clothing * 0.85 + 0.04, 0.0, 1.0).astype(np.float32)


def _draw_still_parts(frame: _Frame, appearance: Appearance) -> np.ndarray:
    """Background, torso, neck, head and face: [3, H, W] in [0, 1]."""
    size = frame.size
    pixel_centres = ((np.arange(size) + 0.5) / size).astype(np.float32)
    origin = np.array(NECK) + np.array(appearance.offset)
    unit = UNIT * appearance.body_scale
    x = ((pixel_centres - origin[0]) / unit)[None, :]  # own-side units, [1, W]
    y = ((pixel_centres - origin[1]) / unit)[:, None]  # [H, 1]
    to_pixels = frame.pixels_per_unit
    outline = frame.outline

    background = _colour(appearance.background)
    shade = 1.0 - 0.15 * pixel_centres[:, None]  # a slight vertical gradient, darker at the bottom
    canvas = (background[:, None, None] * shade[None]).repeat(size, axis=2)
    skin, clothing, hair = _colour(appearance.skin), _colour(appearance.clothing), _colour(appearance.hair)

    neck = _capsule_distance(x, y, 0.0, -0.5, 0.0, 0.3, 0.26)
    _paint(canvas, neck * to_pixels, skin, 0.65 * skin, outline)

    # Torso: a box with rounded shoulders, from just above the shoulder joints to below the frame.
    qx = np.abs(x) - 1.15 + 0.55
    qy = np.abs(y - 2.65) - 2.5 + 0.55
    torso = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0) - 0.55
    _paint(canvas, torso * to_pixels, clothing, 0.6 * clothing, outline)

    head = _ellipse_distance(x, y, HEAD_CENTRE, HEAD_RADII)
    _paint(canvas, head * to_pixels, skin, 0.65 * skin, outline)
    hair_cap = np.maximum(_ellipse_distance(x, y, (0.0, -0.84), (0.55, 0.64)), y + 0.95)
    _paint(canvas, hair_cap * to_pixels, hair, None, outline)

    features = _colour((0.12, 0.08, 0.08))
    eyes = _capsule_distance(np.abs(x), y, 0.19, -0.8, 0.19, -0.8, 0.065)
    mouth = _capsule_distance(x, y, -0.12, -0.45, 0.12, -0.45, 0.035)
    _paint(canvas, np.minimum(eyes, mouth) * to_pixels, features, None, outline)
    return canvas


def _ellipse_distance(x: np.ndarray, y: np.ndarray, centre: tuple[float, float], radii: tuple[float, float]) -> np.ndarray:
    """Approximate signed distance to an ellipse, exact enough at its edge for anti-aliasing."""
    k = np.hypot((x - centre[0]) / radii[0], (y - centre[1]) / radii[1])
    return (k - 1.0) * min(radii)


# ---------------------------------------------------------------------------------------------
# Real motion: a recording's skeleton on this signer's body

# Hand bones as (point, point) within one hand's 21 (`skeleton.HAND`): the palm from the wrist to each finger's
# base and across the knuckles, then each finger's three bones. The palm's capsules are thicker, to fill it together.
_PALM_BONES = tuple((0, 1 + 4 * finger) for finger in range(5)) + ((5, 17),)
_FINGER_BONES = tuple((1 + 4 * finger + joint, 2 + 4 * finger + joint) for finger in range(5) for joint in range(3))
_PALM_RADIUS = 0.12  # hand lengths; the synthetic palm is one capsule of 0.2, these are six overlapping ones


def place_on_signer(points: np.ndarray, appearance: Appearance) -> np.ndarray:
    """A recording's skeleton [N, 50, 3] (pixels of its frame, x right, y down; missing points NaN) moved onto
    `appearance`'s body: [N, 50, 3] in [0, 1] image coordinates, points outside the frame kept as they are.

    One shift and one scale for the whole recording: its shoulders' midpoint (median over frames) goes to the
    signer's, and its shoulder half-width (median over frames) becomes the signer's unit, so the motion keeps its
    shape and its size relative to the body, and its arms start where the drawn body's shoulders are. (This
    signer's shoulders sit SHOULDER[1] units below its neck point; a recording's neck, MediaPipe's shoulders'
    midpoint, lands there.) Raises ValueError when no frame shows both shoulders."""
    seen = (points[..., 2] > 0) & np.isfinite(points[..., :2]).all(-1)
    both = seen[:, skeleton.RIGHT_SHOULDER] & seen[:, skeleton.LEFT_SHOULDER]
    if not both.any():
        raise ValueError("no frame shows both shoulders, so the recording cannot be placed on the signer's body")
    right, left = points[both, skeleton.RIGHT_SHOULDER, :2], points[both, skeleton.LEFT_SHOULDER, :2]
    middle = np.median((right + left) / 2, axis=0)
    half_width = float(np.median(np.linalg.norm(right - left, axis=-1) / 2))
    if half_width <= 0:
        raise ValueError("the shoulders coincide in every frame, so the recording has no size to scale by")
    unit = UNIT * appearance.body_scale
    signers_middle = np.array(NECK) + np.array(appearance.offset) + np.array([0.0, SHOULDER[1] * unit])
    placed = points.astype(np.float32, copy=True)
    placed[..., :2] = signers_middle + (points[..., :2] - middle) * (unit / half_width)
    return placed


def render_skeleton(keypoints: np.ndarray, appearance: Appearance, size: int) -> np.ndarray:
    """Draw a skeleton [T, 50, 3] (x, y in [0, 1] image coordinates, as `place_on_signer` gives; confidence 0 or
    a NaN coordinate: missing) as this signer: float32 [3, T, size, size] in [-1, 1].

    The background, body and head as `render` draws them; each arm as its upper arm and forearm, each hand as
    capsules along its palm and finger bones, the signer's right (the dominant hand) on top. A capsule with a
    missing end is left out, except an arm's missing wrist: the forearm then hangs straight down from the
    elbow, at rest, so a one-handed recording still shows a whole body."""
    frame = _Frame(appearance, size)
    num_frames = len(keypoints)
    seen = (keypoints[..., 2] > 0) & np.isfinite(keypoints[..., :2]).all(-1)
    pixels = np.where(seen[..., None], keypoints[..., :2], 0.0).astype(np.float32) * size
    video = np.repeat(_draw_still_parts(frame, appearance)[:, None], num_frames, axis=1)
    clothing, skin = _colour(appearance.clothing), _colour(appearance.skin)
    unit, outline = frame.pixels_per_unit, frame.outline
    sides = ((skeleton.LEFT_SHOULDER, skeleton.LEFT_HAND), (skeleton.RIGHT_SHOULDER, skeleton.RIGHT_HAND))
    forearms = [_forearm_length(pixels, seen, shoulder, hand) for shoulder, hand in sides]
    for (shoulder, hand), own, other in zip(sides, forearms, forearms[::-1]):
        rest_length = next((length for length in (own, other) if length is not None), FOREARM * unit)
        a, b, present = _arm(pixels, seen, shoulder, hand, rest_length)
        radius = np.array([UPPER_ARM_RADIUS, FOREARM_RADIUS]) * unit
        _paint_present(video, a, b, radius, present, _sleeve(clothing), 0.6 * clothing, outline)
    hand_unit = HAND_LENGTH * unit
    radius = np.array([_PALM_RADIUS] * len(_PALM_BONES) + [_FINGER] * len(_FINGER_BONES)) * hand_unit
    for _, hand in sides:
        ends = np.array(_PALM_BONES + _FINGER_BONES) + hand
        present = seen[:, ends[:, 0]] & seen[:, ends[:, 1]]
        _paint_present(video, pixels[:, ends[:, 0]], pixels[:, ends[:, 1]], radius, present, skin, 0.65 * skin, outline)
    video *= 2.0
    video -= 1.0
    return video


def _wrist(pixels: np.ndarray, seen: np.ndarray, shoulder: int, hand: int) -> tuple[np.ndarray, np.ndarray]:
    """An arm's wrist [T, 2] and where it is seen [T]: the body's wrist, or where that is missing the hand's own."""
    body_wrist = shoulder + 2
    use_body = seen[:, body_wrist]
    wrist = np.where(use_body[:, None], pixels[:, body_wrist], pixels[:, hand])
    return wrist, use_body | seen[:, hand]


def _forearm_length(pixels: np.ndarray, seen: np.ndarray, shoulder: int, hand: int) -> float | None:
    """The median elbow-to-wrist distance in pixels over the frames that show both; None when none does."""
    wrist, wrist_seen = _wrist(pixels, seen, shoulder, hand)
    both = wrist_seen & seen[:, shoulder + 1]
    if not both.any():
        return None
    return float(np.median(np.linalg.norm(wrist[both] - pixels[both, shoulder + 1], axis=-1)))


def _arm(pixels: np.ndarray, seen: np.ndarray, shoulder: int, hand: int, rest_length: float):
    """An arm's two capsules: starts and ends [T, 2, 2] (upper arm, forearm) and whether each is drawn [T, 2]."""
    elbow = shoulder + 1
    wrist, wrist_seen = _wrist(pixels, seen, shoulder, hand)
    hanging = pixels[:, elbow] + np.array([0.0, rest_length], dtype=np.float32)
    wrist = np.where(wrist_seen[:, None], wrist, hanging)
    a = np.stack([pixels[:, shoulder], pixels[:, elbow]], axis=1)
    b = np.stack([pixels[:, elbow], wrist], axis=1)
    present = np.stack([seen[:, shoulder] & seen[:, elbow], seen[:, elbow]], axis=1)
    return a, b, present


def _paint_present(video: np.ndarray, a: np.ndarray, b: np.ndarray, radius: np.ndarray, present: np.ndarray,
                   colour: np.ndarray, outline_colour: np.ndarray, outline: float) -> None:
    """`_paint_capsules` for the capsules `present` [T, N] marks; radius [N] in pixels.

    A capsule left out is moved onto one drawn in its frame and given a radius so far below nothing that not even
    its outline reaches a pixel, rather than dropped: `_paint_capsules` paints all frames at once, N capsules each."""
    if not present.any():
        return
    frames = len(present)
    first = present.argmax(axis=1)
    anchor = np.where(present.any(axis=1)[:, None], a[np.arange(frames), first], video.shape[-1] / 2)
    a = np.where(present[..., None], a, anchor[:, None])
    b = np.where(present[..., None], b, anchor[:, None])
    radius = np.where(present, np.broadcast_to(radius, present.shape), -(2.0 * outline + 1.0))
    _paint_capsules(video, a, b, radius, colour, outline_colour, outline)
