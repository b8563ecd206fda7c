"""`python -m evaluation.metrics.fvd REAL FAKE`: anyone's videos in, the FVD and its conventions out, or a clear error."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from evaluation.metrics.fvd.cli import main
from tests.corpus_builders import clip_frames, write_mp4
from tests.helpers import REPO


def clips(count: int, frames: int = 9, size: int = 8, seed: int = 0) -> np.ndarray:
    return np.stack([clip_frames(frames, size, size, seed=seed + i) for i in range(count)])


def test_fvd_of_two_npz_sets_prints_the_value_and_its_conventions(tmp_path):
    np.savez(tmp_path / "real.npz", videos=clips(2, seed=0))
    np.save(tmp_path / "fake.npy", clips(2, seed=10))
    out = subprocess.run([sys.executable, "-m", "evaluation.metrics.fvd", str(tmp_path / "real.npz"), str(tmp_path / "fake.npy")],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    first, *conventions = out.stdout.splitlines()
    assert first.startswith("FVD ") and float(first.split()[1]) > 0
    text = "\n".join(conventions)
    for expected in ("2 real, 2 fake, each 8x8", "9 frames as they are", "TF1 bilinear", "i3d-kinetics-400",
                     "real floor: not computed"):
        assert expected in text


def test_a_folder_of_videos_is_read_frame_for_frame(tmp_path):
    from evaluation.metrics.fvd.cli import read_video_set

    for i, clip in enumerate(clips(3, frames=5, size=16)):
        write_mp4(tmp_path / f"clip{i}.mp4", clip)
    (tmp_path / "notes.txt").write_text("not a video")
    videos = read_video_set(tmp_path)
    assert videos.shape == (3, 5, 16, 16, 3) and videos.dtype == np.uint8


@pytest.mark.parametrize("real, fake, message", [
    (clips(2, frames=9), clips(2, frames=10), r"REAL videos are \(9, 8, 8, 3\) and FAKE videos \(10, 8, 8, 3\)"),
    (clips(2), clips(1), "at least 2 videos in each, got 2 real and 1 fake"),
    (clips(2).astype(np.float32), clips(2), r"float32 \(2, 9, 8, 8, 3\); expected uint8 \[N, T, H, W, 3\]"),
])
def test_unusable_sets_exit_2_saying_what_is_wrong(tmp_path, capsys, real, fake, message):
    np.save(tmp_path / "real.npy", real)
    np.save(tmp_path / "fake.npy", fake)
    assert main([str(tmp_path / "real.npy"), str(tmp_path / "fake.npy")]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_unreadable_and_missing_files_exit_2_naming_them(tmp_path, capsys):
    np.save(tmp_path / "fake.npy", clips(2))
    (tmp_path / "broken.npy").write_bytes(b"not numpy")
    assert main([str(tmp_path / "broken.npy"), str(tmp_path / "fake.npy")]) == 2
    assert "broken.npy cannot be read as a numpy file" in capsys.readouterr().err
    assert main([str(tmp_path / "absent.npz"), str(tmp_path / "fake.npy")]) == 2
    assert "absent.npz does not exist" in capsys.readouterr().err
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "bad.mp4").write_bytes(b"\x00" * 64)
    assert main([str(tmp_path / "videos"), str(tmp_path / "fake.npy")]) == 2
    assert "bad.mp4 cannot be decoded" in capsys.readouterr().err
