"""The Fréchet distance (FID, FVD, FSD's core) against closed forms and its failure modes."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.metrics.frechet import frechet_distance, frechet_distance_features, gaussian_stats


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
