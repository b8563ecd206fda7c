""".pose files (pose-format) in both layouts in common use, written here with pose-format's own API, read into
the 50-point skeleton; our skeleton written back as a .pose; folder corpora with a .pose beside each clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pose_format import Pose
from pose_format.numpy import NumPyPoseBody
from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions
from pose_format.utils.generic import detect_known_pose_format
from pose_format.utils.openpose import load_openpose

from tests.corpus_builders import clip_frames, make_folder, write_mp4, write_png_folder
from text2sign import skeleton
from text2sign.data import folder
from text2sign.data.keypoints import KeypointError, fit_track
from text2sign.data.pose_file import clip_fps, read_track, write_pose

# MediaPipe's names, as pose-format's holistic header has them (its module needs mediapipe, so not imported).
MP_BODY = ["NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "LEFT_EYE_OUTER", "RIGHT_EYE_INNER", "RIGHT_EYE", "RIGHT_EYE_OUTER",
           "LEFT_EAR", "RIGHT_EAR", "MOUTH_LEFT", "MOUTH_RIGHT", "LEFT_SHOULDER", "RIGHT_SHOULDER", "LEFT_ELBOW",
           "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST", "LEFT_PINKY", "RIGHT_PINKY", "LEFT_INDEX", "RIGHT_INDEX",
           "LEFT_THUMB", "RIGHT_THUMB", "LEFT_HIP", "RIGHT_HIP", "LEFT_KNEE", "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE",
           "LEFT_HEEL", "RIGHT_HEEL", "LEFT_FOOT_INDEX", "RIGHT_FOOT_INDEX"]
MP_HAND = ["WRIST", "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP", "INDEX_FINGER_MCP", "INDEX_FINGER_PIP",
           "INDEX_FINGER_DIP", "INDEX_FINGER_TIP", "MIDDLE_FINGER_MCP", "MIDDLE_FINGER_PIP", "MIDDLE_FINGER_DIP",
           "MIDDLE_FINGER_TIP", "RING_FINGER_MCP", "RING_FINGER_PIP", "RING_FINGER_DIP", "RING_FINGER_TIP",
           "PINKY_MCP", "PINKY_PIP", "PINKY_DIP", "PINKY_TIP"]
HOLISTIC = [("POSE_LANDMARKS", MP_BODY), ("FACE_LANDMARKS", [str(i) for i in range(478)]),
            ("LEFT_HAND_LANDMARKS", MP_HAND), ("RIGHT_HAND_LANDMARKS", MP_HAND), ("POSE_WORLD_LANDMARKS", MP_BODY)]
OFFSET = dict(zip([name for name, _ in HOLISTIC], np.cumsum([0] + [len(points) for _, points in HOLISTIC])))
MP_SKELETON_BODY = {0: "NOSE", 2: "RIGHT_SHOULDER", 3: "RIGHT_ELBOW", 4: "RIGHT_WRIST", 5: "LEFT_SHOULDER",
                    6: "LEFT_ELBOW", 7: "LEFT_WRIST"}
OPENPOSE_SIZES = {"pose_keypoints_2d": 25, "face_keypoints_2d": 70, "hand_left_keypoints_2d": 21,
                  "hand_right_keypoints_2d": 21}


def holistic_pose(data: np.ndarray, confidence: np.ndarray, width: int, height: int, fps: float) -> Pose:
    """A Pose as video_to_pose writes it: data [F, P, 586, 3] (x, y, z) in pixels, confidence [F, P, 586]."""
    components = [PoseHeaderComponent(name, points, [], [(255, 0, 0)], "XYZC") for name, points in HOLISTIC]
    header = PoseHeader(0.2, PoseHeaderDimensions(width, height, 0), components)
    return Pose(header, NumPyPoseBody(fps=fps, data=data.astype(np.float32), confidence=confidence.astype(np.float32)))


def random_holistic(frames: int, width: int = 640, height: int = 480, fps: float = 30.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    total = OFFSET["POSE_WORLD_LANDMARKS"] + len(MP_BODY)
    data = rng.uniform(1, min(width, height) - 1, size=(frames, 1, total, 3))
    confidence = rng.uniform(0.3, 1.0, size=(frames, 1, total))
    return data, confidence


def save(pose: Pose, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        pose.write(handle)
    return path


def openpose_person(rng: np.random.Generator, width: int, height: int) -> dict:
    """One person of an OpenPose JSON frame: flat x, y, c lists per component, every point seen."""
    person = {}
    for name, count in OPENPOSE_SIZES.items():
        xyc = np.column_stack([rng.uniform(0, width - 1, count), rng.uniform(0, height - 1, count),
                               rng.uniform(0.2, 1, count)])
        person[name] = xyc.ravel().tolist()
    return person


# --- reading the two layouts --------------------------------------------------------------------------


def test_holistic_pose_lands_in_the_skeleton_by_name_with_the_neck_between_the_shoulders(tmp_path):
    data, confidence = random_holistic(4)
    pose_row = lambda name: OFFSET["POSE_LANDMARKS"] + MP_BODY.index(name)
    confidence[2, 0, pose_row("LEFT_SHOULDER")] = 0  # the left shoulder lost in frame 2
    confidence[3, 0, OFFSET["LEFT_HAND_LANDMARKS"]:OFFSET["RIGHT_HAND_LANDMARKS"]] = 0  # no left hand in frame 3
    track = read_track(save(holistic_pose(data, confidence, 640, 480, 30.0), tmp_path / "a.pose"))

    assert (track.width, track.height, track.fps, track.pixel_centre) == (640, 480, 30.0, 0.5)
    points = track.points
    assert points.shape == (4, 50, 3) and points.dtype == np.float32
    for slot, name in MP_SKELETON_BODY.items():  # named for the signer: RIGHT_SHOULDER is the signer's right
        present = confidence[:, 0, pose_row(name)] > 0
        np.testing.assert_allclose(points[present, slot, :2], data[present, 0, pose_row(name), :2], rtol=1e-6)
    for start, component in ((skeleton.RIGHT_HAND, "RIGHT_HAND_LANDMARKS"),
                             (skeleton.LEFT_HAND, "LEFT_HAND_LANDMARKS")):
        rows = OFFSET[component] + np.arange(21)
        np.testing.assert_allclose(points[:3, start:start + 21, :2], data[:3, 0, rows, :2], rtol=1e-6)
    right, left = data[:, 0, pose_row("RIGHT_SHOULDER"), :2], data[:, 0, pose_row("LEFT_SHOULDER"), :2]
    np.testing.assert_allclose(points[[0, 1, 3], skeleton.NECK, :2], ((right + left) / 2)[[0, 1, 3]], rtol=1e-6)

    assert points[2, skeleton.LEFT_SHOULDER, 2] == 0 and np.isnan(points[2, skeleton.LEFT_SHOULDER, :2]).all()
    assert points[2, skeleton.NECK, 2] == 0 and np.isnan(points[2, skeleton.NECK, :2]).all()
    assert (points[3, skeleton.LEFT_HAND:, 2] == 0).all() and np.isnan(points[3, skeleton.LEFT_HAND:, :2]).all()
    assert (points[3, skeleton.RIGHT_HAND:skeleton.LEFT_HAND, 2] > 0).all()


def test_openpose_pose_lands_in_the_skeleton_and_follows_one_of_two_people(tmp_path):
    rng = np.random.default_rng(1)
    signer, other = openpose_person(rng, 320, 240), openpose_person(rng, 320, 240)
    moved = {name: list(values) for name, values in signer.items()}
    moved["pose_keypoints_2d"][0:2] = [101.0, 52.0]  # the nose moves; the neck stays near
    moved["hand_right_keypoints_2d"][3 * 8 + 2] = 0.0  # the right index fingertip unseen in frame 1
    # pose-format's own OpenPose loader; in frame 1 the other person is listed first.
    pose = load_openpose({0: {"people": [signer, other]}, 1: {"people": [other, moved]}}, fps=25, width=320, height=240)
    track = read_track(save(pose, tmp_path / "b.pose"))

    assert (track.width, track.height, track.fps, track.pixel_centre) == (320, 240, 25.0, 0.0)
    body = np.reshape(signer["pose_keypoints_2d"], (25, 3))
    np.testing.assert_allclose(track.points[0, :8], body[:8], rtol=1e-6)  # BODY_25 0-7 are the skeleton's 0-7
    right_hand = np.reshape(signer["hand_right_keypoints_2d"], (21, 3))
    np.testing.assert_allclose(track.points[0, skeleton.RIGHT_HAND:skeleton.LEFT_HAND], right_hand, rtol=1e-6)
    left_hand = np.reshape(signer["hand_left_keypoints_2d"], (21, 3))
    np.testing.assert_allclose(track.points[0, skeleton.LEFT_HAND:], left_hand, rtol=1e-6)
    np.testing.assert_allclose(track.points[1, skeleton.NOSE, :2], [101.0, 52.0])
    fingertip = track.points[1, skeleton.RIGHT_HAND + 8]
    assert fingertip[2] == 0 and np.isnan(fingertip[:2]).all()


def test_pose_at_another_rate_and_length_than_its_clip_aligns_by_time(tmp_path):
    clip = tmp_path / "clip.mp4"
    write_mp4(clip, clip_frames(10, 32, 32, seed=0), fps=25)
    data, confidence = random_holistic(8, width=32, height=32, fps=30.0)
    data[:, 0, OFFSET["POSE_LANDMARKS"], 0] = np.arange(8) + 3.0  # the nose's x says which pose frame it is
    track = read_track(save(holistic_pose(data, confidence, 32, 32, 30.0), tmp_path / "clip.pose"))

    assert clip_fps(clip) == 25.0
    points, cut = fit_track(track, np.arange(10), 10, clip_fps(clip))
    # Clip frame i shows time (i + 0.5) / 25 s, which is pose frame floor(1.2 i + 0.6); the pose (8 frames at
    # 30 fps) ends at 0.27 s, before the clip's last frames (0.4 s).
    rows = [0, 1, 3, 4, 5, 6, 7]
    np.testing.assert_allclose(points[:7, skeleton.NOSE, 0], (np.array(rows) + 3.0) / 32, rtol=1e-6)
    assert (points[7:, :, 2] == 0).all() and np.isnan(points[7:, :, :2]).all()


def test_a_frame_folder_has_no_frame_rate_so_its_pose_spans_it(tmp_path):
    write_png_folder(tmp_path / "b", clip_frames(3, 8, 8, seed=0))
    assert clip_fps(tmp_path / "b") is None


def _truncated(tmp_path: Path) -> bytes:
    data, confidence = random_holistic(3)
    raw = save(holistic_pose(data, confidence, 640, 480, 30.0), tmp_path / "whole.pose").read_bytes()
    return raw[: len(raw) - 100]


def _other_layout(tmp_path: Path) -> bytes:
    component = PoseHeaderComponent("BODY_133", ["nose", "neck"], [], [(0, 0, 0)], "XYC")
    body = NumPyPoseBody(fps=25, data=np.ones((2, 1, 2, 2), np.float32), confidence=np.ones((2, 1, 2), np.float32))
    pose = Pose(PoseHeader(0.2, PoseHeaderDimensions(64, 64, 0), [component]), body)
    return save(pose, tmp_path / "other.pose").read_bytes()


@pytest.mark.parametrize("content, message", [
    (lambda tmp: b"", "not a readable .pose file"),
    (lambda tmp: b"this is a text file, not a pose" * 20, "not a readable .pose file"),
    (_truncated, "not a readable .pose file"),
    (_other_layout,
     r"components BODY_133; expected MediaPipe Holistic's \(POSE_LANDMARKS.*OpenPose's \(pose_keypoints_2d"),
], ids=["empty", "text", "truncated", "unknown layout"])
def test_a_bad_pose_file_is_refused_naming_the_file(tmp_path, content, message):
    path = tmp_path / "clips" / "broken.pose"
    path.parent.mkdir()
    path.write_bytes(content(tmp_path))
    with pytest.raises(KeypointError, match=f"^{path}: {message}"):
        read_track(path)


# --- writing ------------------------------------------------------------------------------------------


def test_written_pose_reads_back_with_pose_format_and_as_the_same_skeleton(tmp_path):
    rng = np.random.default_rng(2)
    keypoints = np.concatenate([rng.uniform(0, 1, (5, 50, 2)), rng.uniform(0.1, 1, (5, 50, 1))], axis=-1)
    keypoints = keypoints.astype(np.float32)
    keypoints[1, skeleton.LEFT_HAND:] = (np.nan, np.nan, 0.0)
    keypoints[3, skeleton.NECK] = (np.nan, np.nan, 0.0)
    path = tmp_path / "ours.pose"
    write_pose(keypoints, path, fps=12.5, size=256)

    pose = Pose.read(path.read_bytes())
    assert detect_known_pose_format(pose) == "openpose"
    assert [c.name for c in pose.header.components] == [
        "pose_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d"]
    assert (pose.header.dimensions.width, pose.header.dimensions.height, pose.body.fps) == (256, 256, 12.5)
    body = pose.body.data[:, 0]
    np.testing.assert_allclose(body[0, :8], keypoints[0, :8, :2] * 256 - 0.5, rtol=1e-6)  # OpenPose's pixel indices
    right_hand = keypoints[0, skeleton.RIGHT_HAND:skeleton.LEFT_HAND, :2]
    np.testing.assert_allclose(body[0, 25 + 21:], right_hand * 256 - 0.5, rtol=1e-6)  # hand_right after hand_left
    assert pose.body.data.mask[1, 0, 25:25 + 21].all() and (pose.body.confidence[1, 0, 25:25 + 21] == 0).all()
    assert pose.body.data.mask[:, 0, 8:25].all()  # BODY_25's hips, legs and face points: we have none

    back, cut = fit_track(read_track(path), np.arange(5), 5)
    assert cut == 0
    np.testing.assert_allclose(back, keypoints, rtol=1e-5, atol=1e-6)  # NaNs where missing, on both sides


# --- folder corpora -----------------------------------------------------------------------------------


def _pose_for(clip: Path, index: int) -> None:
    """A .pose beside the clip, MediaPipe for even index, OpenPose for odd, its nose at x = 10 + index."""
    if index % 2 == 0:
        data, confidence = random_holistic(3, width=24, height=32, seed=index)
        data[:, 0, OFFSET["POSE_LANDMARKS"], 0] = 10 + index
        pose = holistic_pose(data, confidence, 24, 32, 25.0)
    else:
        person = openpose_person(np.random.default_rng(index), 24, 32)
        person["pose_keypoints_2d"][0] = 10 + index
        pose = load_openpose({f: {"people": [person]} for f in range(3)}, fps=25, width=24, height=32)
    save(pose, folder.pose_beside(clip))


def test_folder_corpus_fills_keypoints_from_the_pose_beside_each_clip(tmp_path):
    root = make_folder(tmp_path / "c")
    assert not folder.has_keypoints(root, folder.read_texts(root))
    assert all(r.keypoints is None for r in folder.read_index(root, "train").records)
    for i, clip in enumerate(sorted((root / "clips").glob("*.mp4"))):
        _pose_for(clip, i)
    assert folder.has_keypoints(root, folder.read_texts(root))

    records = folder.read_index(root, "train").records
    assert [r.keypoints for r in records] == [r.source.with_suffix(".pose") for r in records]
    noses = {read_track(r.keypoints).points[0, skeleton.NOSE, 0] for r in records}
    assert len(noses) == len(records)  # each record reads its own clip's file, whichever layout it is in
    layouts = {read_track(r.keypoints).pixel_centre for r in records}
    assert layouts == {0.0, 0.5}


def test_frame_folder_clip_has_its_pose_beside_the_folder(tmp_path):
    root = tmp_path / "c"
    for name in ("b", "d.v1"):
        write_png_folder(root / "clips" / name, clip_frames(2, 8, 8, seed=0))
    (root / "texts.csv").write_text("clip,text,split\nclips/b,one,train\nclips/d.v1,two,val\nclips/b,three,test\n")
    assert folder.pose_beside(root / "clips" / "d.v1") == root / "clips" / "d.v1.pose"
    _pose_for(root / "clips" / "b", 0)
    assert folder.read_index(root, "train").records[0].keypoints == root / "clips" / "b.pose"


def test_a_clip_without_its_pose_in_a_corpus_that_has_them_is_reported_with_the_file_to_write(tmp_path):
    root = make_folder(tmp_path / "c")
    clips = sorted((root / "clips").glob("*.mp4"))
    for i, clip in enumerate(clips):
        if clip.name != "train_2.mp4":
            _pose_for(clip, i)
    index = folder.read_index(root, "train")
    assert [r.name for r in index.records] == ["clips/train_0.mp4", "clips/train_1.mp4", "clips/train_3.mp4"]
    [problem] = index.problems
    assert problem.file == str(root / "clips" / "train_2.pose")
    assert "clip clips/train_2.mp4" in problem.reason and "line 4" in problem.reason
    assert "video_to_pose" in problem.fix
