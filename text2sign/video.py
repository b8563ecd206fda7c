"""Turning generated video tensors into files a person can look at."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from torch import Tensor


def to_uint8_frames(video: Tensor) -> np.ndarray:
    """[3, T, H, W] in [-1, 1] -> [T, H, W, 3] uint8."""
    frames = ((video.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return frames.permute(1, 2, 3, 0).cpu().numpy()


def gif_bytes(video: Tensor, fps: int = 8, upscale: int = 1) -> bytes:
    """One video [3, T, H, W] as a looping GIF, each pixel repeated `upscale` times so small videos are visible."""
    import imageio.v2 as imageio

    frames = to_uint8_frames(video)
    if upscale > 1:
        frames = frames.repeat(upscale, axis=1).repeat(upscale, axis=2)
    buffer = io.BytesIO()
    imageio.mimsave(buffer, list(frames), format="GIF", duration=1000 / fps, loop=0)
    return buffer.getvalue()


GIF_FPS = 8  # the sample GIFs' frame rate, and the `.pose` files' logged beside them


def save_gif(video: Tensor, path: str | Path, fps: int = GIF_FPS, upscale: int = 1) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gif_bytes(video, fps, upscale))
    return path


def save_filmstrip(videos: Tensor, path: str | Path, upscale: int = 1) -> Path:
    """All frames of several videos as one PNG grid: a row per video, a column per frame."""
    import imageio.v2 as imageio

    rows = [np.concatenate(list(to_uint8_frames(v)), axis=1) for v in videos]
    grid = np.concatenate(rows, axis=0)
    if upscale > 1:
        grid = grid.repeat(upscale, axis=0).repeat(upscale, axis=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(path, grid)
    return path
