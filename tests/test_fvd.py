"""FVD: the Fréchet distance against closed forms, and I3D's layout, weight lookup and loading.

The real I3D weights are never downloaded: the I3D tests save an untrained, randomly initialised network
in the published file layout and find, load and use that, which checks all the plumbing but says nothing
about the values of real FVDs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluation.frechet import frechet_distance, frechet_distance_features, gaussian_stats
from evaluation.fvd import WEIGHTS_ENV_VAR, find_i3d_weights, fvd, i3d_features, load_i3d
from evaluation.i3d import FEATURE_DIM, KINETICS_CLASSES, I3D, preprocess_for_i3d
from evaluation.weights import PretrainedWeightsMissing, hub_checkpoint_dir

# Counted from piergiaj/pytorch-i3d's InceptionI3d: the ~12.3M usually quoted for I3D is the network
# without its 1024 x 400 (+ bias) Kinetics classifier.
PUBLISHED_PARAMETER_COUNT = 12_697_264
PUBLISHED_CLASSIFIER_PARAMETERS = FEATURE_DIM * KINETICS_CLASSES + KINETICS_CLASSES


# ---- Fréchet distance -------------------------------------------------------------------------------------

def test_identical_feature_sets_are_at_distance_zero():
    features = np.random.default_rng(0).normal(size=(200, 8))
    assert frechet_distance_features(features, features) == pytest.approx(0.0, abs=1e-9)


def test_diagonal_gaussians_match_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(var1 + var2 - 2 * np.sqrt(var1 * var2))
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected, rel=1e-10)


def test_one_dimensional_gaussians_match_closed_form():
    # In 1-D the distance is (m1 - m2)^2 + (s1 - s2)^2 with s the standard deviations.
    assert frechet_distance(np.array([3.0]), np.array([[4.0]]), np.array([1.0]), np.array([[9.0]])) == pytest.approx(
        (3.0 - 1.0) ** 2 + (2.0 - 3.0) ** 2
    )
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.0, 1.0, size=(50, 1)), rng.normal(2.0, 3.0, size=(60, 1))
    expected = (a.mean() - b.mean()) ** 2 + (a.std(ddof=1) - b.std(ddof=1)) ** 2
    assert frechet_distance_features(a, b) == pytest.approx(expected)


def test_fewer_samples_than_dimensions_give_a_finite_non_negative_distance():
    rng = np.random.default_rng(2)
    distance = frechet_distance_features(rng.normal(size=(5, 64)), rng.normal(size=(6, 64)) + 0.3)
    assert np.isfinite(distance) and distance >= 0.0


def test_non_symmetric_covariance_whose_product_has_no_square_root_falls_back_to_eps():
    # [[0, 1], [0, 0]] has no square root at all (scipy returns inf); adding eps * I makes one exist.
    nilpotent = np.array([[0.0, 1.0], [0.0, 0.0]])
    distance = frechet_distance(np.zeros(2), nilpotent, np.zeros(2), np.eye(2))
    assert np.isfinite(distance) and distance >= 0.0


def test_covariance_with_negative_eigenvalues_is_rejected_for_its_imaginary_root():
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(np.zeros(2), np.diag([-1.0, 2.0]), np.zeros(2), np.eye(2))


def test_feature_sets_of_different_dimensions_are_rejected_naming_both_shapes():
    with pytest.raises(ValueError, match=r"\(4, 8\).*\(4, 9\)"):
        frechet_distance_features(np.zeros((4, 8)), np.zeros((4, 9)))


def test_gaussian_stats_need_two_samples():
    with pytest.raises(ValueError, match="at least 2 samples"):
        gaussian_stats(np.zeros((1, 8)))
    mean, covariance = gaussian_stats(np.array([[1.0, 2.0], [3.0, 6.0]]))
    assert mean.tolist() == [2.0, 4.0]
    assert covariance.tolist() == [[2.0, 4.0], [4.0, 8.0]]


# ---- I3D ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def untrained_i3d() -> I3D:
    """Random weights in the published layout: stands in for rgb_imagenet.pt, which tests never download."""
    torch.manual_seed(0)
    i3d = I3D().eval()
    # PyTorch's default init shrinks activations ~1e6-fold over I3D's depth, so every distance would be ~0;
    # He init keeps features O(0.1) and distances meaningful.
    for module in i3d.modules():
        if isinstance(module, torch.nn.Conv3d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return i3d


@pytest.fixture
def untrained_weights_file(untrained_i3d, tmp_path):
    path = tmp_path / "rgb_imagenet.pt"
    torch.save(untrained_i3d.state_dict(), path)
    return path


@pytest.fixture
def no_weights_configured(tmp_path, monkeypatch):
    """No $TEXT2SIGN_I3D_WEIGHTS, and an empty torch hub cache under tmp_path."""
    monkeypatch.delenv(WEIGHTS_ENV_VAR, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path


def videos(count: int, seed: int, frames: int = 4, size: int = 16) -> torch.Tensor:
    """[count, 3, frames, size, size] in [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(count, 3, frames, size, size, generator=generator) * 2 - 1


def test_i3d_has_the_published_parameter_count(untrained_i3d):
    total = sum(parameter.numel() for parameter in untrained_i3d.parameters())
    assert total == PUBLISHED_PARAMETER_COUNT
    assert total - PUBLISHED_CLASSIFIER_PARAMETERS == pytest.approx(12.3e6, rel=0.01)


def test_i3d_gives_features_and_logits_for_clips_of_any_length_and_size(untrained_i3d):
    with torch.no_grad():
        for clip in (videos(2, seed=0, frames=4, size=16), videos(1, seed=1, frames=1, size=9)):
            assert untrained_i3d.features(clip).shape == (len(clip), FEATURE_DIM)
            assert untrained_i3d(clip).shape == (len(clip), KINETICS_CLASSES)


def test_preprocess_for_i3d_resizes_every_frame_to_224():
    clip = videos(1, seed=0, frames=3, size=16)
    clip[:, :, 1] = 0.5
    resized = preprocess_for_i3d(clip)
    assert resized.shape == (1, 3, 3, 224, 224)
    assert torch.allclose(resized[:, :, 1], torch.tensor(0.5)), "frames must be resized one by one, values kept"


def test_untrained_i3d_found_through_env_var_loads_strictly_and_gives_fvd(
        untrained_i3d, untrained_weights_file, monkeypatch):
    monkeypatch.setenv(WEIGHTS_ENV_VAR, str(untrained_weights_file))
    path = find_i3d_weights()
    assert path == untrained_weights_file
    i3d = load_i3d(path)
    assert not i3d.training
    for name, tensor in untrained_i3d.state_dict().items():
        assert torch.equal(i3d.state_dict()[name], tensor), name

    a, a_again, shifted = videos(4, seed=0), videos(4, seed=1), videos(4, seed=2) * 0.5 + 0.3
    assert i3d_features(i3d, a, batch_size=3).shape == (4, FEATURE_DIM)
    same, resampled, different = fvd(i3d, a, a), fvd(i3d, a, a_again), fvd(i3d, a, shifted)
    assert same == pytest.approx(0.0, abs=1e-6)
    assert 0.0 < resampled < different, "a shifted distribution must be farther than a new sample of the same one"


def test_untrained_i3d_found_in_the_torch_hub_cache(untrained_i3d, no_weights_configured):
    checkpoints = hub_checkpoint_dir()
    assert checkpoints == no_weights_configured / "torch_home" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(untrained_i3d.state_dict(), checkpoints / "rgb_imagenet.pt")
    assert find_i3d_weights() == checkpoints / "rgb_imagenet.pt"


def test_missing_weights_say_what_to_download_and_where_to_put_it(no_weights_configured):
    with pytest.raises(PretrainedWeightsMissing) as caught:
        find_i3d_weights()
    message = str(caught.value)
    assert WEIGHTS_ENV_VAR in message
    assert "rgb_imagenet.pt" in message
    assert str(hub_checkpoint_dir() / "rgb_imagenet.pt") in message


def test_a_named_weights_path_that_does_not_exist_is_an_error_not_a_fallback(
        untrained_i3d, no_weights_configured, monkeypatch):
    checkpoints = hub_checkpoint_dir()
    checkpoints.mkdir(parents=True)
    torch.save(untrained_i3d.state_dict(), checkpoints / "rgb_imagenet.pt")
    typo = no_weights_configured / "rgb_imagenet.pth"
    monkeypatch.setenv(WEIGHTS_ENV_VAR, str(typo))
    with pytest.raises(PretrainedWeightsMissing, match="rgb_imagenet.pth"):
        find_i3d_weights()
    with pytest.raises(PretrainedWeightsMissing, match="rgb_imagenet.pth"):
        find_i3d_weights(typo)


def test_weights_with_wrong_keys_fail_naming_counts_and_examples(untrained_i3d, tmp_path):
    state_dict = dict(untrained_i3d.state_dict())
    state_dict["head.weight"] = state_dict.pop("logits.conv3d.weight")
    path = tmp_path / "renamed.pt"
    torch.save(state_dict, path)
    with pytest.raises(ValueError, match=r"1 missing keys .*logits\.conv3d\.weight.*1 unexpected keys .*head\.weight"):
        load_i3d(path)


def test_weights_with_wrong_shapes_fail_naming_the_file(untrained_i3d, tmp_path):
    state_dict = dict(untrained_i3d.state_dict())
    state_dict["logits.conv3d.bias"] = torch.zeros(157)
    path = tmp_path / "rgb_charades.pt"
    torch.save(state_dict, path)
    with pytest.raises(ValueError, match="rgb_charades.pt"):
        load_i3d(path)


def test_weights_saved_before_batchnorm_counted_batches_still_load(untrained_i3d, tmp_path):
    # The published file comes from PyTorch 0.3: the pre-zip format, no num_batches_tracked, no version metadata.
    state_dict = {name: tensor for name, tensor in untrained_i3d.state_dict().items()
                  if not name.endswith("num_batches_tracked")}
    path = tmp_path / "rgb_imagenet.pt"
    torch.save(state_dict, path, _use_new_zipfile_serialization=False)
    load_i3d(path)


def test_i3d_features_refuse_a_network_in_training_mode():
    with pytest.raises(ValueError, match="eval"):
        i3d_features(I3D(), videos(2, seed=0))


def test_fvd_rejects_sets_with_different_frame_counts_naming_both_shapes(untrained_i3d):
    with pytest.raises(ValueError, match=r"\(2, 3, 4, 16, 16\).*\(2, 3, 8, 16, 16\)"):
        fvd(untrained_i3d, videos(2, seed=0, frames=4), videos(2, seed=1, frames=8))


def test_fvd_needs_two_videos_in_each_set(untrained_i3d):
    with pytest.raises(ValueError, match="at least 2 videos"):
        fvd(untrained_i3d, videos(2, seed=0), videos(1, seed=1))
