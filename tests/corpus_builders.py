"""Tiny corpora in the exact published layouts, written into a test's temporary folder:
PHOENIX-2014-T (pipe-separated tables, PNG frame folders), How2Sign (tab-separated tables, mp4 clips)
and a folder corpus (mp4 clips and texts.csv). Real files, read by the real code."""

from __future__ import annotations

import csv
from pathlib import Path

import av
import numpy as np
from PIL import Image

SENTENCES = [
    ("morgen regnet es im norden", "MORGEN NORD REGEN"),
    ("am tag scheint die sonne", "TAG SONNE"),
    ("in der nacht wird es kalt", "NACHT KALT"),
    ("der wind weht stark aus west", "WIND STARK WEST"),
    ("am wochenende schneit es", "WOCHENENDE SCHNEE"),
    ("es bleibt trocken", "TROCKEN BLEIBEN"),
]


def clip_frames(count: int, height: int, width: int, seed: int) -> np.ndarray:
    """uint8 [count, height, width, 3]: frame i is a flat colour that differs from frame to frame and
    from clip to clip, so sampled frames can be told apart after decoding."""
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 90, size=3)
    levels = (base[None, :] + 24 * np.arange(count)[:, None]) % 220 + 20
    return np.broadcast_to(levels[:, None, None, :], (count, height, width, 3)).astype(np.uint8).copy()


def write_png_folder(folder: Path, frames: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames, start=1):
        Image.fromarray(frame).save(folder / f"images{i:04d}.png")


def write_mp4(path: Path, frames: np.ndarray, fps: int = 25) -> None:
    """A real MPEG-4 Part 2 file (FFmpeg's mpeg4 encoder, in every PyAV wheel), near-lossless."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps, options={"qscale": "1"})
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def make_phoenix(root: Path, sizes: dict[str, int] | None = None, frames: int = 6) -> Path:
    """PATH/annotations/manual/PHOENIX-2014-T.{train,dev,test}.corpus.csv and PNG frames (21x26, portrait)."""
    sizes = sizes or {"train": 4, "dev": 2, "test": 2}
    manual = root / "annotations" / "manual"
    manual.mkdir(parents=True)
    for split_number, (split, count) in enumerate(sizes.items()):
        lines = ["name|video|start|end|speaker|orth|translation"]
        for i in range(count):
            name = f"{split}_{i:02d}April_2010_Thursday_heute-{6694 + i}"
            text, glosses = SENTENCES[(i + split_number) % len(SENTENCES)]
            lines.append(f"{name}|{name}/1/*.png|-1|-1|Signer0{i % 3 + 1}|{glosses}|{text}")
            write_png_folder(root / "features" / "fullFrame-210x260px" / split / name,
                             clip_frames(frames + i, 26, 21, seed=100 * split_number + i))
        (manual / f"PHOENIX-2014-T.{split}.corpus.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


HOW2SIGN_HEADER = ["VIDEO_ID", "VIDEO_NAME", "SENTENCE_ID", "SENTENCE_NAME", "START_REALIGNED", "END_REALIGNED", "SENTENCE"]


def make_how2sign(root: Path, sizes: dict[str, int] | None = None, frames: int = 5) -> Path:
    """PATH/how2sign_realigned_{split}.csv and PATH/{split}_rgb_front_clips/raw_videos/*.mp4 (32x24, landscape).
    The first clip of each split is named like a YouTube id that starts with '-'."""
    sizes = sizes or {"train": 4, "val": 2, "test": 2}
    root.mkdir(parents=True, exist_ok=True)
    for split_number, (split, count) in enumerate(sizes.items()):
        rows = [HOW2SIGN_HEADER]
        for i in range(count):
            video_id = f"-fZc293MpJ{i}" if i == 0 else f"g0fj{split}{i}xY"
            sentence = f"{video_id}_{i}-5-rgb_front"
            text = SENTENCES[(i + split_number) % len(SENTENCES)][0].replace("es", "it's")
            rows.append([video_id, f"{video_id}-5-rgb_front", f"{video_id}_{i}", sentence, f"{i}.5", f"{i + 3}.25",
                         f'And then "{text}".'])
            write_mp4(root / f"{split}_rgb_front_clips" / "raw_videos" / f"{sentence}.mp4",
                      clip_frames(frames + i, 24, 32, seed=200 + 10 * split_number + i))
        (root / f"how2sign_realigned_{split}.csv").write_text("\n".join("\t".join(r) for r in rows) + "\n", encoding="utf-8")
    return root


def make_folder(root: Path, sizes: dict[str, int] | None = None, frames: int = 5, glosses: bool = True) -> Path:
    """PATH/texts.csv (clip,text[,glosses],split) and PATH/clips/*.mp4 (24x32, portrait)."""
    sizes = sizes or {"train": 4, "val": 2, "test": 2}
    root.mkdir(parents=True, exist_ok=True)
    with (root / "texts.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["clip", "text", *(["glosses"] if glosses else []), "split"])
        for split_number, (split, count) in enumerate(sizes.items()):
            for i in range(count):
                clip = f"clips/{split}_{i}.mp4"
                text, gloss = SENTENCES[(i + split_number) % len(SENTENCES)]
                writer.writerow([clip, f"{text}, sagt er", *([gloss] if glosses else []), split])
                write_mp4(root / clip, clip_frames(frames + i, 32, 24, seed=300 + 10 * split_number + i))
    return root
