"""The Fréchet distance between two Gaussians fitted to feature sets: the core of FID, FVD and FSD.

d^2 = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))   (Dowson & Landau 1982; Heusel et al. 2017, Eq. 6)
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg

# Relative residual |X X - A| / |A| above which the matrix square root X of A is not trusted.
SQRTM_TOLERANCE = 1e-6
# Imaginary parts of (S1 S2)^(1/2)'s diagonal below this fraction of its real parts are rounding noise.
IMAGINARY_TOLERANCE = 1e-3


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """features [N, D] -> (mean [D], covariance [D, D]), float64, one sample per row."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must be [N, D] (one row per sample), got shape {features.shape}")
    if features.shape[0] < 2:
        raise ValueError(f"a covariance needs at least 2 samples, got {features.shape[0]} (features {features.shape})")
    # atleast_2d: np.cov returns a scalar for one-dimensional features.
    return features.mean(axis=0), np.atleast_2d(np.cov(features, rowvar=False))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Squared Fréchet distance between N(mu1 [D], sigma1 [D, D]) and N(mu2 [D], sigma2 [D, D]); >= 0.

    `eps` is added to both diagonals only when S1 S2 is too singular for a trustworthy square root, which
    happens when there are fewer samples than feature dimensions.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, dtype=np.float64)), np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    dim = mu1.shape[0]
    if mu1.shape != (dim,) or mu2.shape != (dim,) or sigma1.shape != (dim, dim) or sigma2.shape != (dim, dim):
        raise ValueError(
            f"the two Gaussians must have the same dimension D: means [D] and covariances [D, D], got "
            f"mu1 {mu1.shape}, sigma1 {sigma1.shape}, mu2 {mu2.shape}, sigma2 {sigma2.shape}"
        )
    covmean = _sqrtm_of_product(sigma1, sigma2, eps)
    mean_term = float(np.sum((mu1 - mu2) ** 2))
    trace_term = float(np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))
    # Rounding can push the distance of (nearly) identical sets a hair below zero.
    return max(mean_term + trace_term, 0.0)


def frechet_distance_features(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to features a [N, D] and b [M, D] (N, M >= 2)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets must be [N, D] and [M, D] with the same D, got {a.shape} and {b.shape}")
    return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))


def _sqrtm_of_product(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> np.ndarray:
    """(S1 S2)^(1/2) [D, D], real. Retries with eps * I added to both if the first root is not accurate."""
    product = sigma1 @ sigma2
    covmean = _sqrtm_or_none(product)
    if covmean is None:
        offset = eps * np.eye(sigma1.shape[0])
        product = (sigma1 + offset) @ (sigma2 + offset)
        covmean = _sqrtm_or_none(product)
        if covmean is None:
            raise ValueError(
                f"the covariances are too singular for a matrix square root even with eps={eps} added; "
                "use more samples or a larger eps"
            )
    if np.iscomplexobj(covmean):
        # S1 S2 is similar to a positive semi-definite matrix, so its root is real up to rounding;
        # a large imaginary part means an input was not a covariance (not symmetric PSD).
        diagonal = np.diagonal(covmean)
        largest_imaginary = np.abs(diagonal.imag).max()
        if largest_imaginary > IMAGINARY_TOLERANCE * max(np.abs(diagonal.real).max(), np.finfo(float).tiny):
            raise ValueError(
                f"sqrt(sigma1 @ sigma2) has imaginary parts up to {largest_imaginary:.3g}: the covariances "
                "must be symmetric positive semi-definite"
            )
        covmean = covmean.real
    return covmean


def _sqrtm_or_none(matrix: np.ndarray) -> np.ndarray | None:
    """scipy's square root of a [D, D] matrix, or None when it is non-finite or does not square back."""
    with warnings.catch_warnings():
        # Singular inputs are expected here (N < D samples); the residual check below is the real test.
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(matrix)
    if not np.isfinite(root).all():
        return None
    residual = np.linalg.norm(root @ root - matrix)
    if residual > SQRTM_TOLERANCE * max(np.linalg.norm(matrix), np.finfo(float).tiny):
        return None
    return root
