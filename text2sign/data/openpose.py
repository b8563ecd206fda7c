"""OpenPose's JSON output, as How2Sign publishes it, read into the common skeleton (`text2sign.skeleton`).

OpenPose writes a folder per clip and a file per frame, `<NAME>_<12-digit frame>_keypoints.json`, numbered
from 000000000000. Each file holds `people`, one entry per person found, with flat [x, y, confidence, ...]
lists in pixels:

    pose_keypoints_2d        BODY_25, 25 points: points 0-7 are the skeleton's body points 0-7
    hand_right_keypoints_2d  21 points: the skeleton's right hand, points 8-28 (the person's right, as ours)
    hand_left_keypoints_2d   21 points: the left hand, points 29-49
    face_keypoints_2d        not used

x and y are pixel indices (the centre of pixel 0 is 0), and a point of confidence 0 is one OpenPose did not
find. JSON files do not record the frame size, so the reader is told it (the clip's decoded frames).
Paths are opened by Python only, never handed to a command line: How2Sign's names often start with '-'.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from text2sign import skeleton
from text2sign.data.keypoints import KeypointError, KeypointTrack

FRAME_FILE = re.compile(r"_(\d{12})_keypoints\.json$")
HAND_POINTS = 21
# (the JSON list, how many points it holds, where its points go in the skeleton, how many of them)
_PARTS = (
    ("pose_keypoints_2d", 25, 0, len(skeleton.BODY)),
    ("hand_right_keypoints_2d", HAND_POINTS, skeleton.RIGHT_HAND, HAND_POINTS),
    ("hand_left_keypoints_2d", HAND_POINTS, skeleton.LEFT_HAND, HAND_POINTS),
)


def frame_files(folder: Path) -> list[Path]:
    """The folder's frame files in frame order. Raises KeypointError for a missing folder, one without frame
    files, or a gap in the numbering (naming the first missing file), since a gap would shift every later
    frame's keypoints onto the wrong picture."""
    if not folder.is_dir():
        raise KeypointError(f"{folder}: missing (expected a folder of OpenPose *_keypoints.json files)")
    numbered: dict[int, Path] = {}
    for path in folder.iterdir():
        match = FRAME_FILE.search(path.name)
        if match is None:
            continue
        frame = int(match[1])
        if frame in numbered:
            raise KeypointError(f"{path}: a second file for frame {frame} (the other is {numbered[frame].name}); "
                                f"keep one")
        numbered[frame] = path
    if not numbered:
        raise KeypointError(f"{folder}: holds no OpenPose frame files (<NAME>_000000000000_keypoints.json, ...)")
    # n distinct numbers are 0 .. n-1 exactly when none of those is absent.
    gap = next((frame for frame in range(len(numbered)) if frame not in numbered), None)
    if gap is not None:
        expected = folder / FRAME_FILE.sub(f"_{gap:012d}_keypoints.json", numbered[min(numbered)].name)
        after = min(frame for frame in numbered if frame > gap)
        raise KeypointError(f"{expected}: missing, a gap in the frame files (the next one is frame {after}); "
                            f"restore it from the release")
    return [numbered[frame] for frame in range(len(numbered))]


def read_people(path: Path) -> list[np.ndarray]:
    """Every person of one frame file, each [50, 3] in pixels with missing points marked. Raises KeypointError."""
    try:
        content = json.loads(path.read_bytes())
    except (OSError, ValueError) as error:  # unreadable, not UTF-8, not JSON (JSONDecodeError is a ValueError)
        raise KeypointError(f"{path}: not readable OpenPose JSON ({getattr(error, 'strerror', None) or error})") from None
    people = content.get("people") if isinstance(content, dict) else None
    if not isinstance(people, list) or not all(isinstance(person, dict) for person in people):
        raise KeypointError(f"{path}: not OpenPose output (no 'people' list of persons)")
    return [_person(person, path) for person in people]


def _person(entry: dict, path: Path) -> np.ndarray:
    points = skeleton.missing(1)[0]
    for key, count, start, used in _PARTS:
        values = entry.get(key)
        if not values:  # absent or empty: OpenPose ran without that part, or found none of it
            continue
        try:
            part = np.asarray(values, dtype=np.float32)
        except (TypeError, ValueError):
            raise KeypointError(f"{path}: {key} holds something other than numbers") from None
        if part.shape != (3 * count,):
            raise KeypointError(f"{path}: {key} has {part.size} numbers, expected {3 * count} "
                                f"({count} points of x, y, confidence)")
        points[start : start + used] = part.reshape(count, 3)[:used]
    return skeleton.mark_missing(points)


def signer(people: list[np.ndarray], previous_neck: np.ndarray | None) -> np.ndarray:
    """The signer among a frame's people [50, 3]; every point missing when there is nobody.

    Within a clip, the person whose neck is nearest the signer's neck in the previous frame: people barely
    move from one frame to the next, so this follows the signer even when a bystander is detected more
    confidently for a frame. In the first frame, or after a frame without the signer's neck, there is nothing
    to follow, and the person whose body points are most confident is taken: the signer faces the camera
    and is seen whole, while a second detection is mostly a passer-by or a false one, with few, unsure points."""
    if not people:
        return skeleton.missing(1)[0]
    with_neck = [person for person in people if person[skeleton.NECK, 2] > 0]
    if previous_neck is not None and with_neck:
        return min(with_neck, key=lambda person: float(np.linalg.norm(person[skeleton.NECK, :2] - previous_neck)))
    return max(people, key=lambda person: float(person[: len(skeleton.BODY), 2].sum()))


def read_folder(folder: Path, width: int, height: int) -> KeypointTrack:
    """A clip's OpenPose folder as a track of its signer, one row per frame file, in the pixels of a `width` x
    `height` frame. Raises KeypointError naming the file that cannot be read."""
    files = frame_files(folder)
    points = np.empty((len(files), skeleton.NUM_POINTS, 3), dtype=np.float32)
    neck = None
    for row, path in enumerate(files):
        points[row] = signer(read_people(path), neck)
        neck = points[row, skeleton.NECK, :2] if points[row, skeleton.NECK, 2] > 0 else None
    return KeypointTrack(points, width, height, pixel_centre=0.0)
