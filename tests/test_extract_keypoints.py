"""The MediaPipe keypoint extractor: the landmark mapping, the cache, the command's refusals, and a real
extraction of a photograph of a person (scikit-image's astronaut) with the network blocked.

The slow tests need the extractor's environment (`python -m text2sign.data setup-extractor`); without it
they are skipped, except in CI (CI=true), where `.ci/run` makes it and its absence is a failure."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.corpus_builders import write_mp4, write_png_folder
from text2sign import skeleton
from text2sign.data import extract
from text2sign.data import mediapipe_worker as worker
from text2sign.data.__main__ import main
from text2sign.data.keypoints import KeypointError

SIDE, PHOTO = 384, 320  # the frame, and the astronaut photo scaled into it
# Where the astronaut's face, shoulders and hands are in the 512 x 512 photo (looked up by eye: generous boxes).
FACE_BOX = ((170, 290), (60, 190))  # x range, y range
SHOULDER_LINE = (150, 300)  # y range


# ---- the network, blocked for the worker


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


# Two layers: Python's sockets refuse to connect (mediapipe's downloads are urllib.request), and where this
# user may make a network namespace (root), the process has no network at all, which covers C++ too.
_REFUSE = ("import socket\n"
           "def _refuse(*args, **kwargs):\n"
           "    raise OSError('network blocked by the test')\n"
           "socket.socket.connect = socket.socket.connect_ex = _refuse\n"
           "socket.getaddrinfo = socket.create_connection = _refuse\n")
_OFFLINE = ["unshare", "-n"] if _unshare_works() else []


def offline(python: Path, code: str) -> list[str]:
    """A command that runs `code` in `python` with no network."""
    return [*_OFFLINE, str(python), "-I", "-c", _REFUSE + code]


def offline_worker_command(python: Path) -> list[str]:
    script = str(Path(worker.__file__))
    run_script = f"import runpy, sys\nsys.argv = [{script!r}]\nrunpy.run_path({script!r}, run_name='__main__')\n"
    return offline(python, run_script)


def extractor() -> Path:
    try:
        return extract.extractor_python()
    except extract.ExtractorMissing as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must have the extractor's environment (.ci/run makes it): {error}")
        pytest.skip(f"no keypoint extractor environment here ({extract.SETUP_COMMAND} makes it)")


# ---- fast: no extractor needed


def test_to_skeleton_puts_mediapipe_landmarks_in_the_50_point_slots():
    pose = np.zeros((33, 3), dtype=np.float32)
    pose[:, 2] = 0.9
    pose[0] = (0.5, 0.2, 0.99)  # nose
    pose[12], pose[14], pose[16] = (0.3, 0.4, 0.8), (0.25, 0.6, 0.7), (0.3, 0.8, 0.6)  # the person's right arm
    pose[11], pose[13], pose[15] = (0.7, 0.4, 0.95), (0.75, 0.6, 0.5), (0.7, 0.8, 0.4)  # the left arm
    right = np.stack([np.full(21, 0.3), np.linspace(0.8, 0.9, 21)], axis=1).astype(np.float32)
    points = worker.to_skeleton(pose, right, None, width=200, height=100)
    assert points.shape == (skeleton.NUM_POINTS, 3) and points.dtype == np.float32
    np.testing.assert_allclose(points[skeleton.NOSE], (100, 20, 0.99), rtol=1e-6)
    np.testing.assert_allclose(points[skeleton.NECK], (100, 40, 0.8), rtol=1e-6)  # shoulders' midpoint, weaker one
    np.testing.assert_allclose(points[skeleton.RIGHT_SHOULDER], (60, 40, 0.8), rtol=1e-6)
    np.testing.assert_allclose(points[skeleton.RIGHT_WRIST], (60, 80, 0.6), rtol=1e-6)
    np.testing.assert_allclose(points[skeleton.LEFT_SHOULDER], (140, 40, 0.95), rtol=1e-6)
    np.testing.assert_allclose(points[skeleton.LEFT_WRIST], (140, 80, 0.4), rtol=1e-6)
    hand = points[skeleton.RIGHT_HAND:skeleton.RIGHT_HAND + 21]
    np.testing.assert_allclose(hand[:, :2], right * (200, 100), rtol=1e-6)
    assert (hand[:, 2] == 1).all()
    left = points[skeleton.LEFT_HAND:]
    assert (left[:, 2] == 0).all() and np.isnan(left[:, :2]).all()  # not found: missing


def test_to_skeleton_of_a_frame_without_a_person_is_all_missing():
    points = worker.to_skeleton(None, None, None, width=64, height=48)
    np.testing.assert_array_equal(points, skeleton.missing(1)[0])


def test_read_entry_gives_the_track_and_rejects_a_damaged_entry(tmp_path):
    points = skeleton.missing(4)
    points[:, skeleton.NOSE] = (10.0, 5.0, 0.9)
    entry = tmp_path / "ab" / "entry.npz"
    worker.write_entry(str(entry), points, width=64, height=48, fps=25.0, source="clip.mp4")
    track = extract.read_entry(entry)
    np.testing.assert_array_equal(track.points, points)
    assert (track.width, track.height, track.pixel_centre, track.fps) == (64, 48, 0.5, None)
    assert not list(entry.parent.glob("*.tmp"))
    with np.load(entry) as data:
        fields = dict(data)
    fields["points"] = fields["points"] + 1  # a bit flipped on disk
    np.savez(entry, **fields)
    with pytest.raises(KeypointError, match="checksum"):
        extract.read_entry(entry)
    entry.write_bytes(b"not an npz")
    with pytest.raises(KeypointError, match=str(entry)):
        extract.read_entry(entry)


def test_the_content_hash_is_memoised_until_the_clip_changes(tmp_path, monkeypatch):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"frames" * 1000)
    hashed = []
    real_hash = extract._hash_content
    monkeypatch.setattr(extract, "_hash_content", lambda source: hashed.append(source) or real_hash(source))
    cache = tmp_path / "cache"
    first = extract.content_hash(clip, cache)
    assert extract.content_hash(clip, cache) == first and len(hashed) == 1  # the memo answered
    clip.write_bytes(b"other " * 1000)
    os.utime(clip, ns=(1, 1))
    assert extract.content_hash(clip, cache) != first and len(hashed) == 2
    moved = tmp_path / "moved" / "clip.mp4"
    moved.parent.mkdir()
    shutil.copy(clip, moved)
    assert extract.entry_path(extract.content_hash(moved, cache), cache) == extract.entry_path(
        extract.content_hash(clip, cache), cache)  # the entry follows the content, not the path


def test_the_content_hash_of_a_frame_folder_covers_every_image(tmp_path):
    folder = tmp_path / "clip"
    write_png_folder(folder, np.zeros((3, 8, 8, 3), dtype=np.uint8))
    cache = tmp_path / "cache"
    before = extract.content_hash(folder, cache)
    Image.fromarray(np.full((8, 8, 3), 255, dtype=np.uint8)).save(folder / "images0002.png")
    assert extract.content_hash(folder, cache) != before


@pytest.mark.parametrize("complexity", [0, 2])
def test_model_complexities_that_would_download_are_refused_before_anything_runs(complexity, tmp_path, monkeypatch,
                                                                                   capsys):
    monkeypatch.setenv(extract.ENV_VARIABLE, str(tmp_path / "no-env"))
    monkeypatch.setattr(extract, "extract_clips", lambda *args: pytest.fail("extraction started"))
    (tmp_path / "corpus").mkdir()
    assert main(["extract-keypoints", f"folder:{tmp_path / 'corpus'}", "--model-complexity", str(complexity)]) == 2
    error = capsys.readouterr().err
    assert f"--model-complexity {complexity}" in error and "download" in error


def test_a_missing_extractor_environment_names_the_command_that_creates_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(extract.ENV_VARIABLE, str(tmp_path / "no-env"))
    (tmp_path / "corpus").mkdir()
    assert main(["extract-keypoints", f"folder:{tmp_path / 'corpus'}"]) == 2
    error = capsys.readouterr().err
    assert extract.SETUP_COMMAND in error and str(tmp_path / "no-env") in error


# ---- slow: the real extractor on the astronaut


def astronaut_frames(count: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [count, SIDE, SIDE, 3]: the astronaut photo moving in a circle on grey, and each frame's offset."""
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (the dev extra) holds the astronaut")
    photo = np.asarray(Image.fromarray(skimage_data.astronaut()).resize((PHOTO, PHOTO), Image.BILINEAR))
    frames = np.full((count, SIDE, SIDE, 3), 128, dtype=np.uint8)
    angles = 2 * np.pi * np.arange(count) / count
    offsets = np.stack([32 + 24 * np.cos(angles), 32 + 24 * np.sin(angles)], axis=1).astype(int)
    for frame, (x, y) in zip(frames, offsets):
        frame[y:y + PHOTO, x:x + PHOTO] = photo
    return frames, offsets


def photo_coordinates(points: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """[T, 50, 2] frame pixels -> pixels of the original 512 x 512 photo."""
    return (points[..., :2] - offsets[:, None, :]) * 512 / PHOTO


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """A folder corpus (the astronaut as an mp4 and as a PNG folder, and a broken clip in val) extracted once."""
    python = extractor()
    root = tmp_path_factory.mktemp("corpus")
    frames, offsets = astronaut_frames(10)
    write_mp4(root / "astronaut.mp4", frames)
    write_png_folder(root / "astronaut_frames", frames[:4])
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is no video" * 10)
    (root / "texts.csv").write_text("clip,text,split\nastronaut.mp4,hello,train\nastronaut_frames,hello again,train\n"
                                    "broken.mp4,goodbye,val\n", encoding="utf-8")
    cache = tmp_path_factory.mktemp("keypoints")
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, redirect_stdout(out), redirect_stderr(err):
        patch.setattr(extract, "worker_command", offline_worker_command)
        code = main(["extract-keypoints", f"folder:{root}", "--splits", "train", "val", "--cache-dir", str(cache),
                     "--processes", "2"])
    return {"root": root, "cache": cache, "code": code, "out": out.getvalue(), "err": err.getvalue(),
            "offsets": offsets}


def run(extracted: dict, capsys, root: Path | None = None) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["extract-keypoints", f"folder:{root or extracted['root']}", "--splits", "train",
                 "--cache-dir", str(extracted["cache"]), "--processes", "2"])
    return code, capsys.readouterr().out


@pytest.mark.slow
def test_the_network_is_blocked_for_the_extractor(tmp_path):
    """What complexity 2 would do, downloading the heavy pose model, fails under the tests' block."""
    heavy = "mediapipe/modules/pose_landmark/pose_landmark_heavy.tflite"
    code = f"from mediapipe.python.solutions import download_utils\ndownload_utils.download_oss_model({heavy!r})\n"
    result = subprocess.run(offline(extractor(), code), capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode != 0
    assert "network blocked by the test" in result.stderr or "unreachable" in result.stderr.lower()
    probe = "import mediapipe, os\nprint(os.path.dirname(mediapipe.__file__))\n"
    package = subprocess.run([str(extractor()), "-I", "-c", probe], capture_output=True, text=True, check=True)
    assert not (Path(package.stdout.strip()).parent / heavy).exists()


@pytest.mark.slow
@pytest.mark.parametrize("clip", ["astronaut.mp4", "astronaut_frames"])
def test_the_astronauts_nose_shoulders_and_wrists_land_where_she_is(extracted, clip):
    entry = extract.extracted_track(extracted["root"] / clip, extracted["cache"])
    assert entry is not None
    track = extract.read_entry(entry)
    frames = 10 if clip.endswith(".mp4") else 4
    assert (len(track.points), track.width, track.height) == (frames, SIDE, SIDE)
    points = track.points
    body = points[:, :8]
    assert (body[:, [skeleton.NOSE, skeleton.NECK, skeleton.RIGHT_SHOULDER, skeleton.LEFT_SHOULDER], 2] > 0.5).all()
    xy = photo_coordinates(points, extracted["offsets"][:frames])
    nose, neck = xy[:, skeleton.NOSE], xy[:, skeleton.NECK]
    right_shoulder, left_shoulder = xy[:, skeleton.RIGHT_SHOULDER], xy[:, skeleton.LEFT_SHOULDER]
    (x0, x1), (y0, y1) = FACE_BOX
    assert ((x0 < nose[:, 0]) & (nose[:, 0] < x1) & (y0 < nose[:, 1]) & (nose[:, 1] < y1)).all(), nose
    assert (nose[:, 1] < neck[:, 1]).all()  # the nose above the neck
    # The person's right shoulder on the viewer's left, either side of the nose, on the shoulder line.
    assert (right_shoulder[:, 0] < nose[:, 0]).all() and (nose[:, 0] < left_shoulder[:, 0]).all()
    for shoulder in (right_shoulder, left_shoulder):
        assert ((SHOULDER_LINE[0] < shoulder[:, 1]) & (shoulder[:, 1] < SHOULDER_LINE[1])).all(), shoulder
    # Her hands are low in the photo (the left one behind the helmet, a guess MediaPipe marks as unsure),
    # the right one (viewer's left) at its left.
    for wrist, shoulder in ((xy[:, skeleton.RIGHT_WRIST], right_shoulder), (xy[:, skeleton.LEFT_WRIST], left_shoulder)):
        assert (wrist[:, 1] > shoulder[:, 1] + 40).all(), wrist
    assert (xy[:, skeleton.RIGHT_WRIST, 0] < xy[:, skeleton.LEFT_WRIST, 0]).all()


@pytest.mark.slow
def test_an_unreadable_clip_is_named_and_the_others_go_on(extracted):
    assert extracted["code"] == 1
    assert "2 clips extracted, 0 skipped as already extracted, 1 failed" in extracted["out"]
    assert f"failed: {extracted['root'] / 'broken.mp4'}: cannot be opened as a video" in extracted["out"]
    assert f"failed: {extracted['root'] / 'broken.mp4'}" in extracted["err"]  # told at once, not only at the end
    assert extract.extracted_track(extracted["root"] / "astronaut.mp4", extracted["cache"]) is not None
    assert extract.extracted_track(extracted["root"] / "broken.mp4", extracted["cache"]) is None


@pytest.mark.slow
def test_a_rerun_extracts_nothing_already_extracted(extracted, capsys, monkeypatch):
    monkeypatch.setattr(extract._Worker, "_start", lambda self: pytest.fail("a worker was started"))
    code, out = run(extracted, capsys)
    assert code == 0
    assert "0 clips extracted, 2 skipped as already extracted, 0 failed" in out


@pytest.mark.slow
def test_a_changed_clip_is_extracted_again_and_a_moved_one_is_not(extracted, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(extract, "worker_command", offline_worker_command)
    root = tmp_path / "moved"
    shutil.copytree(extracted["root"], root)
    frame = root / "astronaut_frames" / "images0002.png"
    Image.fromarray(np.asarray(Image.open(frame))[:, ::-1]).save(frame)  # mirrored: other content
    code, out = run(extracted, capsys, root)
    assert code == 0
    assert "1 clips extracted, 1 skipped as already extracted, 0 failed" in out
    track = extract.read_entry(extract.extracted_track(root / "astronaut_frames", extracted["cache"]))
    before = extract.read_entry(extract.extracted_track(extracted["root"] / "astronaut_frames", extracted["cache"]))
    assert track.points[1, skeleton.NOSE, 0] != before.points[1, skeleton.NOSE, 0]  # the mirrored frame's own nose


def test_a_worker_that_dies_is_reported_with_its_clip_and_replaced_for_the_next(tmp_path, monkeypatch):
    """A stand-in worker (no MediaPipe needed) that dies on a clip named crash*, and writes entries otherwise."""
    fake = tmp_path / "fake_worker.py"
    fake.write_text(
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('worker', {str(Path(worker.__file__))!r})\n"
        "worker = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(worker)\n"
        "for line in sys.stdin:\n"
        "    request = json.loads(line)\n"
        "    if 'crash' in request['source']:\n"
        "        sys.stderr.write('fatal: out of luck\\n'); sys.exit(3)\n"
        "    points = worker.to_skeleton(None, None, None, 8, 8)[None]\n"
        "    worker.write_entry(request['entry'], points, 8, 8, 25.0, request['source'])\n"
        "    print(json.dumps({'ok': True, 'frames': 1}), flush=True)\n", encoding="utf-8")
    monkeypatch.setattr(extract, "worker_command", lambda python: [sys.executable, str(fake)])
    clips = []
    for name in ("crash.mp4", "fine.mp4", "also_fine.mp4"):
        clips.append(tmp_path / name)
        clips[-1].write_bytes(name.encode())
    summary = extract.extract_clips(clips, tmp_path / "cache", processes=1, python=Path(sys.executable))
    assert summary.extracted == 2 and summary.cached == 0
    [(source, why)] = summary.failed
    assert source == clips[0] and "died" in why and "exit code 3" in why and "out of luck" in why


def test_setup_never_overwrites_a_folder_that_is_no_environment(tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    monkeypatch.setenv(extract.ENV_VARIABLE, str(tmp_path))
    with pytest.raises(extract.ExtractorMissing, match="no virtual environment"):
        extract.setup_extractor()
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"
