"""`.pose` files (pose-format, the sign-language processing community's format) to and from our skeleton.

A `.pose` file holds a header (components, each a list of named points; the frame's pixel size) and a body
(fps, data [frames, people, points, dims] masked where the confidence is 0). Two layouts are read:

    MediaPipe Holistic   as pose-format's `video_to_pose` writes it: POSE_LANDMARKS (33), FACE_LANDMARKS
                         (468 or 478), LEFT_HAND_LANDMARKS and RIGHT_HAND_LANDMARKS (21 each), and
                         sometimes POSE_WORLD_LANDMARKS (metres, not pixels: ignored, like the face)
    OpenPose             its 137 points: pose_keypoints_2d (BODY_25), face_keypoints_2d,
                         hand_left_keypoints_2d, hand_right_keypoints_2d

Points are found by their names in the file's header, so a file whose components come in another order,
or that lacks the face, reads the same. `write_pose` writes the OpenPose layout (body and hands).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from pose_format import Pose
from pose_format.numpy import NumPyPoseBody
from pose_format.pose_header import PoseHeader, PoseHeaderDimensions
from pose_format.utils.openpose import BODY_POINTS as OPENPOSE_BODY, HAND_POINTS as OPENPOSE_HAND
from pose_format.utils.openpose import OpenPose_Components

from text2sign import skeleton
from text2sign.data.keypoints import KeypointError, KeypointTrack
from text2sign.data.video_io import ClipError

SUFFIX = ".pose"

# MediaPipe Holistic names its points for the person, not the image: its pose model's LEFT_SHOULDER is the
# signer's left shoulder (on the viewer's right), and LEFT_HAND_LANDMARKS is the hand it crops around that
# side's pose wrist, so the signer's left hand too. (pose-format's own mirror_horizontal swaps the LEFT_ and
# RIGHT_ names and the two hand components together, which holds only under this convention.) OpenPose also
# names its points for the person. Our skeleton does the same, so no layout is mirrored here.
_MEDIAPIPE_HAND = ("WRIST", "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP") + tuple(
    f"{finger}_{joint}" for finger in ("INDEX_FINGER", "MIDDLE_FINGER", "RING_FINGER", "PINKY")
    for joint in ("MCP", "PIP", "DIP", "TIP"))
_MEDIAPIPE_BODY = ("NOSE", None, "RIGHT_SHOULDER", "RIGHT_ELBOW", "RIGHT_WRIST", "LEFT_SHOULDER", "LEFT_ELBOW",
                   "LEFT_WRIST")  # None: MediaPipe has no neck; the shoulders' midpoint stands in for it

# (component, point names in skeleton order) for each block of the skeleton, and where pixel 0's centre is.
# MediaPipe's coordinates are fractions of the image's width and height, which pose-format multiplies by the
# pixel size: that is the continuous image plane, where pixel 0 spans [0, 1) and its centre is 0.5. OpenPose
# gives a pixel's index, so pixel 0's centre is 0.
_LAYOUTS = {
    "MediaPipe Holistic": ((("POSE_LANDMARKS", _MEDIAPIPE_BODY), ("RIGHT_HAND_LANDMARKS", _MEDIAPIPE_HAND),
                            ("LEFT_HAND_LANDMARKS", _MEDIAPIPE_HAND)), 0.5),
    "OpenPose": ((("pose_keypoints_2d", tuple(OPENPOSE_BODY[:len(skeleton.BODY)])),
                  ("hand_right_keypoints_2d", tuple(OPENPOSE_HAND)),
                  ("hand_left_keypoints_2d", tuple(OPENPOSE_HAND))), 0.0),
}
_EXPECTED = "; or ".join(f"{name}'s ({', '.join(c for c, _ in blocks)}, and others)"
                         for name, (blocks, _) in _LAYOUTS.items())
_WRITTEN = [c for c in OpenPose_Components if c.name != "face_keypoints_2d"]


def read_track(path: Path) -> KeypointTrack:
    """The `.pose` file's skeleton [N, 50, 3] in the pixels of its header's frame size, at its body's fps, so
    that it aligns with its clip by time (`keypoints.fit_track`). Raises KeypointError naming the file."""
    pose = _read(path)
    names = [c.name for c in pose.header.components]
    layout = next((name for name, (blocks, _) in _LAYOUTS.items() if {c for c, _ in blocks} <= set(names)), None)
    if layout is None:
        raise KeypointError(f"{path}: components {', '.join(names) or 'none'}; expected {_EXPECTED}")
    blocks, pixel_centre = _LAYOUTS[layout]
    width, height = int(pose.header.dimensions.width), int(pose.header.dimensions.height)
    if width <= 0 or height <= 0:
        raise KeypointError(f"{path}: frame size {width}x{height} in its header; the points need the pixel size of "
                            "the video they were taken from (a normalised .pose cannot be placed on its clip)")
    if len(pose.body.data) == 0:
        raise KeypointError(f"{path}: holds no frames")
    people = _to_skeleton(pose, _source_indices(pose.header, blocks, path))
    fps = float(pose.body.fps)
    # A file without a frame rate is taken to span its clip (aligned by position, like a frame folder).
    return KeypointTrack(_follow_one_person(people), width, height, pixel_centre, fps if fps > 0 else None)


def _read(path: Path) -> Pose:
    try:
        buffer = path.read_bytes()
    except OSError as error:
        raise KeypointError(f"{path}: cannot be read ({error.strerror or error})") from None
    try:
        return Pose.read(buffer)
    except Exception as error:  # on damaged bytes the reader raises whatever struct, numpy or str decoding do
        raise KeypointError(f"{path}: not a readable .pose file ({type(error).__name__}: {error}); write it again "
                            "with pose-format (video_to_pose), or remove it") from None


def _source_indices(header: PoseHeader, blocks, path: Path) -> np.ndarray:
    """int [50]: each skeleton point's index among the file's points; -1 for MediaPipe's neck."""
    offsets, start = {}, 0
    for component in header.components:
        offsets[component.name] = (component, start)
        start += len(component.points)
    indices = []
    for name, points in blocks:
        component, offset = offsets[name]
        for point in points:
            if point is not None and point not in component.points:
                raise KeypointError(f"{path}: component {name} has no point {point} (it has "
                                    f"{', '.join(component.points[:8])}{', ...' if len(component.points) > 8 else ''})")
            indices.append(-1 if point is None else offset + component.points.index(point))
    return np.array(indices)


def _to_skeleton(pose: Pose, indices: np.ndarray) -> np.ndarray:
    """float32 [frames, people, 50, 3] from the body, masked or zero-confidence points missing."""
    data = np.ma.getdata(pose.body.data)[..., :2].astype(np.float32)
    masked = np.ma.getmaskarray(pose.body.data)[..., :2].any(-1)
    confidence = np.where(masked, 0.0, np.asarray(pose.body.confidence, dtype=np.float32))
    points = np.concatenate([data, confidence[..., None]], axis=-1)
    people = skeleton.mark_missing(points[:, :, np.maximum(indices, 0)])
    neck = skeleton.NECK
    if indices[neck] < 0:
        right, left = people[..., skeleton.RIGHT_SHOULDER, :], people[..., skeleton.LEFT_SHOULDER, :]
        # NaN where either shoulder is missing, so the neck is present only when both are.
        people[..., neck, :2] = (right[..., :2] + left[..., :2]) / 2
        people[..., neck, 2] = np.minimum(right[..., 2], left[..., 2])
        people = skeleton.mark_missing(people)
    return people


def _follow_one_person(people: np.ndarray) -> np.ndarray:
    """[frames, people, 50, 3] -> [frames, 50, 3]: the one person (video_to_pose writes one), or with several the
    one whose neck is nearest the last neck seen (the first person with a neck before any is seen)."""
    frames, count = people.shape[:2]
    if count == 0:
        return skeleton.missing(frames)
    if count == 1:
        return people[:, 0]
    chosen, last_neck = np.empty((frames,) + people.shape[2:], dtype=np.float32), None
    for f in range(frames):
        necks = people[f, :, skeleton.NECK]
        seen = necks[:, 2] > 0
        if not seen.any():
            pick = 0
        elif last_neck is None:
            pick = int(np.argmax(seen))
        else:
            distance = np.where(seen, np.linalg.norm(necks[:, :2] - last_neck, axis=-1), np.inf)
            pick = int(np.argmin(distance))
        chosen[f] = people[f, pick]
        if necks[pick, 2] > 0:
            last_neck = necks[pick, :2]
    return chosen


def write_pose(keypoints: np.ndarray, path: Path, fps: float, size: int) -> None:
    """Write a skeleton [T, 50, 3] (x, y in [0, 1] of a `size` x `size` square, confidence, missing = 0) as a
    `.pose` file in OpenPose's layout: BODY_25 (the 17 points below the arms missing) and both hands, which
    pose-format's tools recognise and its PoseVisualizer draws (a missing point, and any limb to it, is left out).

    Coordinates are written as OpenPose's pixel indices (x * size - 0.5), so `read_track` and `fit_track` give
    back the same numbers."""
    keypoints = np.asarray(keypoints)
    if keypoints.ndim != 3 or keypoints.shape[1:] != (skeleton.NUM_POINTS, 3):
        raise ValueError(f"keypoints must be [T, {skeleton.NUM_POINTS}, 3], got {list(keypoints.shape)}")
    keypoints = skeleton.mark_missing(keypoints)
    header = PoseHeader(0.2, PoseHeaderDimensions(size, size, 0), _WRITTEN)
    offsets = np.cumsum([0] + [len(c.points) for c in _WRITTEN])
    slots = {c.name: offsets[i] for i, c in enumerate(_WRITTEN)}
    body, hand = len(skeleton.BODY), len(skeleton.HAND)
    where = np.concatenate([slots["pose_keypoints_2d"] + np.arange(body),
                            slots["hand_right_keypoints_2d"] + np.arange(hand),
                            slots["hand_left_keypoints_2d"] + np.arange(hand)])
    data = np.zeros((len(keypoints), 1, offsets[-1], 2), dtype=np.float32)
    confidence = np.zeros((len(keypoints), 1, offsets[-1]), dtype=np.float32)
    # Missing points at 0, as OpenPose writes what it did not see.
    data[:, 0, where] = np.nan_to_num(keypoints[..., :2] * size - 0.5, nan=0.0)
    confidence[:, 0, where] = keypoints[..., 2]
    with open(path, "wb") as handle:
        Pose(header, NumPyPoseBody(fps=float(fps), data=data, confidence=confidence)).write(handle)


def clip_fps(source: Path) -> float | None:
    """A video clip's frame rate (its stream's average rate), to align a `.pose` with it by time; None for a
    frame folder, which has none: its `.pose` is then taken to span the clip, frame for frame in proportion
    (`fit_track` aligns by position). Raises ClipError when the video cannot be opened."""
    if source.is_dir():
        return None
    try:
        with av.open(str(source.absolute())) as container:
            if not container.streams.video:
                raise ClipError("has no video stream")
            rate = container.streams.video[0].average_rate
    except (av.FFmpegError, OSError, ValueError) as error:
        raise ClipError(f"cannot be opened ({getattr(error, 'strerror', None) or error})") from None
    return float(rate) if rate else None
