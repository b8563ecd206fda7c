"""How2Sign with its OpenPose keypoints, written tiny in a test's temporary folder in both layouts users have:
the flat one of the unpacked archives and the official `sentence_level/` tree. Real files, read by the real code.

Every clip is 48x32 (landscape like How2Sign's 1280x720, so the centred square, columns 8-39, drops 8 columns
each side), 8 frames, black with a white 2x2 dot that moves 2 pixels right and down each frame. Each frame's
JSON puts the signer's right wrist, and the right hand's wrist, on the dot's centre: after loading, the
keypoint must sit on the dot's pixel of the same frame. The left wrist stands outside the centred square, the
right little fingertip too, and the left hand is not detected (confidence 0, coordinates left in place).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.corpus_builders import HOW2SIGN_HEADER, write_mp4

WIDTH, HEIGHT, FRAMES = 48, 32, 8
HAND = 21


def dot_corner(frame: int) -> tuple[int, int]:
    """(x, y) of the dot's top-left pixel in `frame`; at an image_size of 16 it moves one pixel a frame."""
    return 10 + 2 * frame, 4 + 2 * frame


def dot_centre(frame: int) -> tuple[float, float]:
    x, y = dot_corner(frame)
    return x + 0.5, y + 0.5  # in OpenPose's pixel-index coordinates: between the dot's two pixels


def dot_clip(frames: int = FRAMES) -> np.ndarray:
    video = np.zeros((frames, HEIGHT, WIDTH, 3), np.uint8)
    for frame in range(frames):
        x, y = dot_corner(frame)
        video[frame, y : y + 2, x : x + 2] = 255
    return video


def flat(points: list[tuple[float, float, float]], shift: float = 0.0) -> list[float]:
    """OpenPose's flat x, y, confidence list, moved `shift` pixels right."""
    return [float(value) for x, y, c in points for value in (x + shift, y, c)]


def person(frame: int, confidence: float = 0.9, shift: float = 0.0) -> dict:
    """One person as OpenPose writes it: the signer of the module docstring in `frame`, moved `shift` pixels right."""
    wrist = dot_centre(frame)
    body = [(0.0, 0.0, 0.0)] * 25
    body[:8] = [(24, 6, confidence), (24, 12, confidence), (17, 13, confidence), (14, 20, confidence),
                (*wrist, confidence), (31, 13, confidence), (38, 20, confidence), (3, 22, confidence)]
    right = [(*wrist, 0.8)] + [(wrist[0] + 1, wrist[1] + 1, 0.7)] * (HAND - 2) + [(45.0, 20.0, 0.6)]
    left = [(30.0, 20.0, 0.0)] * HAND  # not detected: OpenPose leaves coordinates that mean nothing
    return {"person_id": [-1], "pose_keypoints_2d": flat(body, shift), "face_keypoints_2d": flat([(20, 8, 0.5)] * 70),
            "hand_left_keypoints_2d": flat(left, shift), "hand_right_keypoints_2d": flat(right, shift),
            "pose_keypoints_3d": [], "face_keypoints_3d": [], "hand_left_keypoints_3d": [], "hand_right_keypoints_3d": []}


def frame_file(folder: Path, frame: int) -> Path:
    return folder / f"{folder.name}_{frame:012d}_keypoints.json"


def write_frame(folder: Path, frame: int, people: list[dict]) -> Path:
    path = frame_file(folder, frame)
    path.write_text(json.dumps({"version": 1.3, "people": people}), encoding="utf-8")
    return path


def write_openpose(folder: Path, frames: int = FRAMES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for frame in range(frames):
        write_frame(folder, frame, [person(frame)])
    return folder


def split_folders(root: Path, split: str, layout: str) -> tuple[Path, Path, Path]:
    """(the table, the clips folder, the keypoint folders' folder) of `split` in `layout` (flat or official)."""
    if layout == "flat":
        return (root / f"how2sign_realigned_{split}.csv", root / f"{split}_rgb_front_clips" / "raw_videos",
                root / f"{split}_2D_keypoints" / "openpose_output" / "json")
    tree = root / "sentence_level" / split
    return (tree / "text" / "en" / "raw_text" / "re_aligned" / f"how2sign_realigned_{split}.csv",
            tree / "rgb_front" / "raw_videos", tree / "rgb_front" / "features" / "openpose_output" / "json")


def sentence_name(split: str, i: int) -> str:
    video_id = f"-dAn{split}{i}Xy" if i == 0 else f"kP{split}{i}xYz"  # the first starts with '-', like many YouTube ids
    return f"{video_id}_{i}-8-rgb_front"


def make_how2sign_keypoints(root: Path, layout: str = "flat", sizes: dict[str, int] | None = None) -> Path:
    """How2Sign in `layout` with a dot clip and its OpenPose folder per sentence."""
    sizes = sizes or {"train": 3, "val": 1, "test": 1}
    clip = dot_clip()
    for split, count in sizes.items():
        table, clips, keypoints = split_folders(root, split, layout)
        rows = [HOW2SIGN_HEADER]
        for i in range(count):
            name = sentence_name(split, i)
            video_id = name.split("_")[0]
            rows.append([video_id, f"{video_id}-8-rgb_front", f"{video_id}_{i}", name, "1.0", "2.5", f"Sentence {i} of {split}."])
            write_mp4(clips / f"{name}.mp4", clip)
            write_openpose(keypoints / name)
        table.parent.mkdir(parents=True, exist_ok=True)
        table.write_text("\n".join("\t".join(row) for row in rows) + "\n", encoding="utf-8")
    return root
