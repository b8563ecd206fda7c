"""The keypoint extractor's worker: MediaPipe Holistic over whole clips, in the extractor's own environment.

mediapipe 0.10.21, the last release whose wheel ships its pose and hand models, needs numpy < 2 and
protobuf < 5, which the main environment cannot have; so this file runs as a script in the extractor
environment (`python -m text2sign.data setup-extractor`) and imports only the standard library, numpy,
and, inside `serve`, mediapipe and OpenCV: never text2sign. The main side (`text2sign.data.extract`)
imports it only for `to_skeleton` and the constants.

Protocol: one JSON request a line on stdin, {"source": str, "frames": [str] | null, "entry": str};
"frames" lists a frame folder's images in frame order (the main side's order), null for a video file.
The worker extracts every frame of the clip, writes the entry to "entry" (a temporary file renamed, so
a reader never sees half of one) and answers one JSON line, {"ok": true, "frames": N} or
{"ok": false, "error": why}. End of stdin ends it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile

import numpy as np

# Bump when the mapping or the settings change what an entry holds: old entries stop matching.
EXTRACTOR_VERSION = 1
MEDIAPIPE_VERSION = "0.10.21"
# pose_landmark_full.tflite ships in the 0.10.21 wheel; complexities 0 (lite) and 2 (heavy) would download
# their model from Google's servers the first time, which an offline run must not do.
MODEL_COMPLEXITY = 1
NUM_POINTS = 50
RIGHT_HAND, LEFT_HAND = 8, 29  # as text2sign.skeleton, which this environment cannot import
# MediaPipe pose landmarks for BODY_25's right shoulder, elbow, wrist, then the left ones. MediaPipe names
# points for the person: landmark 12 is the person's right shoulder (on the viewer's left in a frontal
# view; the astronaut test pins it), as BODY_25's point 2 is.
POSE_ARMS = (12, 14, 16, 11, 13, 15)
POSE_NOSE, POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER = 0, 11, 12


def to_skeleton(pose: np.ndarray | None, right_hand: np.ndarray | None, left_hand: np.ndarray | None,
                width: int, height: int) -> np.ndarray:
    """One frame's landmarks -> float32 [50, 3] in pixels of the `width` x `height` frame, pixel centres at +0.5.

    pose: [33, 3] MediaPipe pose landmarks (x, y normalised to the image, visibility), None when no
    person was found; right_hand, left_hand: [21, 2] normalised x, y, None when the hand was not found.
    Holistic's right hand is the person's right: it is cropped around pose landmark 16, the right wrist
    (hand_landmarks_left_and_right_cpu.pbtxt), unlike the Hands solution, which assumes a mirrored selfie.
    """
    points = np.full((NUM_POINTS, 3), np.nan, dtype=np.float32)
    points[:, 2] = 0.0
    scale = np.array([width, height], dtype=np.float32)
    if pose is not None:
        # Pose points carry their visibility as the confidence: a wrist MediaPipe guesses behind a table
        # stays in, weakly; one of visibility 0 is missing.
        slots = [0, 2, 3, 4, 5, 6, 7]
        landmarks = pose[[POSE_NOSE, *POSE_ARMS]]
        points[slots, :2] = landmarks[:, :2] * scale
        points[slots, 2] = landmarks[:, 2]
        # MediaPipe has no neck: the shoulders' midpoint, as sure as the less sure shoulder.
        shoulders = pose[[POSE_RIGHT_SHOULDER, POSE_LEFT_SHOULDER]]
        if (shoulders[:, 2] > 0).all():
            points[1, :2] = shoulders[:, :2].mean(0) * scale
            points[1, 2] = shoulders[:, 2].min()
    for start, hand in ((RIGHT_HAND, right_hand), (LEFT_HAND, left_hand)):
        if hand is not None:
            points[start:start + 21, :2] = hand[:, :2] * scale
            points[start:start + 21, 2] = 1.0  # hand landmarks have no per-point score; found is found
    gone = ~(points[:, 2] > 0)
    points[gone] = (np.nan, np.nan, 0.0)
    return points


def checksum(points: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(points, dtype=np.float32).tobytes()).hexdigest()


def write_entry(path: str, points: np.ndarray, width: int, height: int, fps: float, source: str) -> None:
    """The entry `text2sign.data.extract.read_entry` reads, written to a temporary file and renamed."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, points=points.astype(np.float32), width=np.int64(width), height=np.int64(height),
                     fps=np.float64(fps), frames=np.int64(len(points)), version=np.int64(EXTRACTOR_VERSION),
                     model_complexity=np.int64(MODEL_COMPLEXITY), mediapipe=np.array(MEDIAPIPE_VERSION),
                     source=np.array(source), sha256=np.array(checksum(points)))
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


class ClipUnreadable(Exception):
    pass


def _frames(source: str, frame_files: list[str] | None):
    """(RGB uint8 [H, W, 3] frames, fps or 0): a frame folder's images in the given order, or a video's frames."""
    import cv2

    if frame_files is not None:
        def images():
            for path in frame_files:
                image = cv2.imread(path, cv2.IMREAD_COLOR)
                if image is None:
                    raise ClipUnreadable(f"frame {os.path.basename(path)} cannot be decoded")
                yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return images(), 0.0
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        raise ClipUnreadable("cannot be opened as a video")
    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)

    def decoded():
        try:
            while True:
                ok, image = capture.read()
                if not ok:
                    return
                yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()
    return decoded(), fps


def extract(source: str, frame_files: list[str] | None) -> tuple[np.ndarray, int, int, float]:
    """Every frame's skeleton: (float32 [N, 50, 3] in pixels, width, height, fps or 0). Raises ClipUnreadable."""
    import mediapipe as mp

    frames, fps = _frames(source, frame_files)
    skeletons, size = [], None
    # A fresh graph per clip: tracking (static_image_mode False) must not carry a signer from one clip to the next.
    with mp.solutions.holistic.Holistic(static_image_mode=False, model_complexity=MODEL_COMPLEXITY) as holistic:
        for image in frames:
            if size is None:
                size = image.shape[:2]
            elif image.shape[:2] != size:
                raise ClipUnreadable(f"frame {len(skeletons)} is {image.shape[1]}x{image.shape[0]}, "
                                     f"the first {size[1]}x{size[0]}")
            result = holistic.process(image)
            height, width = size
            skeletons.append(to_skeleton(_array(result.pose_landmarks, visibility=True),
                                         _array(result.right_hand_landmarks), _array(result.left_hand_landmarks),
                                         width, height))
    if not skeletons:
        raise ClipUnreadable("holds no decodable frames")
    return np.stack(skeletons), size[1], size[0], fps


def _array(landmarks, visibility: bool = False) -> np.ndarray | None:
    if landmarks is None:
        return None
    if visibility:
        return np.array([(p.x, p.y, p.visibility) for p in landmarks.landmark], dtype=np.float32)
    return np.array([(p.x, p.y) for p in landmarks.landmark], dtype=np.float32)


def serve() -> None:
    # Replies go to the original stdout; anything the C++ side prints goes to stderr with its logs.
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            points, width, height, fps = extract(request["source"], request["frames"])
            write_entry(request["entry"], points, width, height, fps, request["source"])
            reply = {"ok": True, "frames": len(points)}
        except ClipUnreadable as error:
            reply = {"ok": False, "error": str(error)}
        except Exception as error:  # one clip's failure is reported, not the end of the run
            reply = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        replies.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    serve()
