"""The maths of every metric in `hf_vqvae.metrics`, as plain functions.

Training code calls these directly (no `evaluate` overhead, tensors may live on any device); the `evaluate` modules
in the sibling folders (`reconstruction/`, `codebook_usage/`, `prior_nll/`, `fid/`) import this module and add only
the accumulation over an evaluation set. There is one implementation of each formula, here (and, for FID, in
`metrics.frechet`, whose names are re-exported here).

Conventions:

* Images are channels-first `(N, C, H, W)` float arrays in the model's pixel space [-1, 1] (SPEC section 2),
  given as `torch.Tensor` or anything `numpy.asarray` accepts.
* The data range of [-1, 1] images is their peak-to-peak value, 2.0. With it PSNR and SSIM are *identical* to the
  values of the same images mapped to [0, 1] with data range 1.0: MSE scales by 4 and so does `data_range**2`.
* Set-level image metrics average per-image values (the usual convention of the papers); MSE is the mean over all
  elements, which is the same thing for equally sized images.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

# The Fréchet Inception Distance lives in its own module; its names stay importable from here.
from .frechet import (
    FID_INCEPTION_SIZE,
    frechet_distance,
    frechet_distance_from_features,
    frechet_inception_distance,
    gaussian_statistics,
    inception_features,
    load_inception,
)

# Precision and recall for generative models (k-NN manifolds of feature vectors) live in their own module too.
from .manifold import inside_manifold, knn_radii, precision_recall

__all__ = [
    "DEFAULT_DATA_RANGE",
    "FID_INCEPTION_SIZE",
    "bits_per_code",
    "bits_per_dim",
    "code_histogram",
    "code_nll",
    "codebook_fraction_used",
    "codebook_perplexity",
    "discretized_gaussian_nll",
    "discretized_gaussian_nll_sweep",
    "frechet_distance",
    "frechet_distance_from_features",
    "frechet_inception_distance",
    "gaussian_statistics",
    "inception_features",
    "inside_manifold",
    "knn_radii",
    "load_inception",
    "mse",
    "precision_recall",
    "psnr",
    "psnr_per_image",
    "RECONSTRUCTION_SIGMAS",
    "ssim",
    "ssim_per_image",
]

ArrayLike = Any  # torch.Tensor, numpy.ndarray or nested lists: whatever `numpy.asarray` accepts

# Peak-to-peak value of the [-1, 1] pixel space.
DEFAULT_DATA_RANGE = 2.0


def _as_float64(x: ArrayLike) -> torch.Tensor:
    """`x` as a float64 tensor, on its own device if it is already a tensor."""
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float64)
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def _image_pair(predictions: ArrayLike, references: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Both image batches as float64 `(N, C, H, W)` tensors on the predictions' device, shapes checked."""
    x = _as_float64(predictions)
    y = _as_float64(references).to(x.device)
    if x.ndim != 4 or x.shape != y.shape:
        raise ValueError(
            f"expected predictions and references of the same shape (N, C, H, W), got {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        )
    return x, y


# --------------------------------------------------------------------------------------------------------------------
# Reconstruction: MSE, PSNR, SSIM


def mse(predictions: ArrayLike, references: ArrayLike) -> float:
    """Mean squared error over all elements of `(N, C, H, W)` images, in the images' own units (for [-1, 1] images
    this is 4x the MSE of the same images in [0, 1])."""
    x, y = _image_pair(predictions, references)
    return float((x - y).square().mean())


def psnr_per_image(
    predictions: ArrayLike, references: ArrayLike, data_range: float = DEFAULT_DATA_RANGE
) -> torch.Tensor:
    """Peak signal-to-noise ratio of each image pair, in dB.

    `10 * log10(data_range**2 / MSE_i)` with `MSE_i` the mean over one image's `C * H * W` elements. For [-1, 1]
    images `data_range = 2.0` (peak to peak), which gives the same value as [0, 1] images with `data_range = 1.0`.
    Identical images give `inf`.

    Args:
        predictions, references: images `(N, C, H, W)`.
        data_range: peak-to-peak range of the pixel values.

    Returns:
        float64 tensor `(N,)`.
    """
    x, y = _image_pair(predictions, references)
    per_image_mse = (x - y).square().flatten(1).mean(dim=1)
    return 10.0 * torch.log10(data_range**2 / per_image_mse)


def psnr(predictions: ArrayLike, references: ArrayLike, data_range: float = DEFAULT_DATA_RANGE) -> float:
    """Mean over images of `psnr_per_image` (dB), for images `(N, C, H, W)`."""
    return float(psnr_per_image(predictions, references, data_range).mean())


@functools.lru_cache(maxsize=8)
def _gaussian_kernel_1d(size: int, sigma: float) -> torch.Tensor:
    """Normalised 1-D Gaussian `(size,)`, float64, centred on the middle tap."""
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    kernel = torch.exp(-offsets.square() / (2 * sigma**2))
    return kernel / kernel.sum()


def ssim_per_image(
    predictions: ArrayLike,
    references: ArrayLike,
    data_range: float = DEFAULT_DATA_RANGE,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Structural similarity (Wang, Bovik, Sheikh, Simoncelli 2004) of each image pair.

    Local means, variances and covariance are taken under an `window_size` x `window_size` Gaussian window of
    standard deviation `sigma` (population moments, no `n / (n - 1)` correction), at every position where the window
    lies fully inside the image (no padding, as the paper's reference code); the SSIM map

        ((2 mu_x mu_y + C1) (2 sigma_xy + C2)) / ((mu_x^2 + mu_y^2 + C1) (sigma_x^2 + sigma_y^2 + C2)),

    with `C1 = (k1 * data_range)^2`, `C2 = (k2 * data_range)^2`, is averaged over positions and then over channels
    (each channel is a greyscale image). This equals scikit-image's `structural_similarity(..., data_range=2.0,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=0)`.

    Args:
        predictions, references: images `(N, C, H, W)` with `H, W >= window_size`.
        data_range: peak-to-peak range of the pixel values (2.0 for [-1, 1]).

    Returns:
        float64 tensor `(N,)`, each value in [-1, 1], 1 for identical images.
    """
    x, y = _image_pair(predictions, references)
    n, c, h, w = x.shape
    if h < window_size or w < window_size:
        raise ValueError(f"SSIM needs images of at least {window_size}x{window_size} pixels, got {h}x{w}")
    # float64 throughout: the variances are differences of close numbers (E[x^2] - E[x]^2), which loses most of
    # float32's digits on smooth image regions.
    kernel = _gaussian_kernel_1d(window_size, float(sigma)).to(x.device)
    # The five filtered maps in one batch of single-channel images: (5 * N * C, 1, H, W).
    x, y = x.reshape(n * c, 1, h, w), y.reshape(n * c, 1, h, w)
    stacked = torch.cat([x, y, x * x, y * y, x * y])
    filtered = F.conv2d(F.conv2d(stacked, kernel.view(1, 1, -1, 1)), kernel.view(1, 1, 1, -1))  # separable
    mu_x, mu_y, e_xx, e_yy, e_xy = filtered.chunk(5)
    var_x, var_y, cov_xy = e_xx - mu_x.square(), e_yy - mu_y.square(), e_xy - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / (
        (mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2)
    )  # (N * C, 1, H - window_size + 1, W - window_size + 1)
    return ssim_map.reshape(n, -1).mean(dim=1)  # equal-sized channel maps: mean over all = mean of channel means


def ssim(predictions: ArrayLike, references: ArrayLike, data_range: float = DEFAULT_DATA_RANGE, **kwargs) -> float:
    """Mean over images of `ssim_per_image` (same keyword arguments), for images `(N, C, H, W)`."""
    return float(ssim_per_image(predictions, references, data_range, **kwargs).mean())


# --------------------------------------------------------------------------------------------------------------------
# Codebook usage


def code_histogram(codes: ArrayLike, num_embeddings: int) -> torch.Tensor:
    """How often each code occurs.

    Args:
        codes: integer code maps of any shape, e.g. `(N, h, w)`, values in `[0, num_embeddings)`.
        num_embeddings: codebook size K.

    Returns:
        int64 tensor `(K,)` of counts, on the codes' device.
    """
    codes = codes.detach() if isinstance(codes, torch.Tensor) else torch.as_tensor(np.asarray(codes))
    if codes.is_floating_point() or codes.is_complex():
        raise TypeError(f"codes must be integers, got {codes.dtype}")
    codes = codes.flatten().long()
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= num_embeddings):
        raise ValueError(f"codes must lie in [0, {num_embeddings}), got [{int(codes.min())}, {int(codes.max())}]")
    return torch.bincount(codes, minlength=num_embeddings)


def codebook_perplexity(counts: ArrayLike) -> float:
    """`exp(H)` of the code distribution `p = counts / sum(counts)`, `H = -sum p log p` in nats (`0 log 0 = 0`).

    It is the effective number of codes in use: K for a uniform histogram over K codes, 1 if one code takes all.

    Args:
        counts: `(K,)` non-negative counts (e.g. `code_histogram` of a whole evaluation set).
    """
    counts = _as_float64(counts).flatten()
    total = counts.sum()
    if total <= 0:
        raise ValueError("codebook_perplexity needs at least one counted code")
    p = counts[counts > 0] / total
    return float(torch.exp(-(p * p.log()).sum()))


def codebook_fraction_used(counts: ArrayLike) -> float:
    """Fraction of the K codes that occur at least once, from `(K,)` counts."""
    counts = _as_float64(counts).flatten()
    return float((counts > 0).double().mean())


# --------------------------------------------------------------------------------------------------------------------
# Prior negative log-likelihood


def code_nll(logits: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of each image's codes under a prior, summed over positions, in nats.

    Args:
        logits: `(N, K, h, w)` unnormalised log-probabilities (`PixelSNAILModel(...).logits`).
        codes: `(N, h, w)` the codes that were observed (the prior's targets).

    Returns:
        float32/64 tensor `(N,)`: `-sum_{i,j} log p(codes[n, i, j] | past)`.
    """
    return F.cross_entropy(logits, codes, reduction="none").flatten(1).sum(dim=1)


def bits_per_code(nll_nats: float, num_codes: int) -> float:
    """Average NLL per code in bits: `nll_nats / (num_codes * ln 2)`.

    Args:
        nll_nats: total NLL in nats of `num_codes` codes (e.g. the sum of `code_nll` over an evaluation set).
        num_codes: number of codes it covers (N * h * w, or the sum over levels for VQ-VAE-2).
    """
    return float(nll_nats) / (num_codes * math.log(2))


def bits_per_dim(nll_nats: float, num_dims: int) -> float:
    """An NLL in bits divided by the number of *pixel* dimensions of the images it describes:
    `nll_nats / (num_dims * ln 2)`.

    For N images of shape `(C, H, W)`, `num_dims = N * C * H * W` (e.g. 3 * 32 * 32 per CIFAR-10 image), whatever
    the latent size. Given a prior's NLL of the codes, it is the bits needed to transmit an image's codes spread over
    its pixel dimensions (the rate part; for VQ-VAE-2 sum the NLL of all levels); given the decoder's
    `-log p(x | z)` (`discretized_gaussian_nll`), the distortion part. Their sum bounds the image likelihood, the
    figure the VQ-VAE paper reports (CIFAR-10: 4.67 bits/dim).
    """
    return float(nll_nats) / (num_dims * math.log(2))


# --------------------------------------------------------------------------------------------------------------------
# Decoder likelihood: -log p(x | z) of 8-bit images

# Standard deviations the decoder's Gaussian is fitted over (`discretized_gaussian_nll_sweep`): from a quarter of an
# 8-bit step (2 / 255) to about 1, half the [-1, 1] range, in ratios of 2**(1/4). The best of these is within ~0.01
# bits/dim of the exact optimum (the NLL is flat near it: log(r) + 1 / (2 r**2) - 1/2 nats for a ratio r off it).
RECONSTRUCTION_SIGMAS: tuple[float, ...] = tuple(2.0 ** (k / 4) / 255.0 for k in range(-4, 33))


def discretized_gaussian_nll(means: ArrayLike, images: ArrayLike, sigma: float, bit_depth: int = 8) -> torch.Tensor:
    """Negative log-likelihood in nats of each image under independent per-value Gaussians `N(means, sigma**2)`
    discretised to the `2**bit_depth` levels of the [-1, 1] pixel space (the likelihood of PixelCNN++ with one
    logistic replaced by a Gaussian; the decoder term `-log p(x | z)` of a VQ-VAE trained with MSE).

    Level `u` sits at `v = 2u / (2**bit_depth - 1) - 1`; its bin is `v +- delta` with `delta = 1 / (2**bit_depth -
    1)`, except the end bins, which extend to -inf and +inf, so the probabilities of the levels sum to 1 and the
    result is an exact code length for the quantised images. Images are snapped to the nearest level first (values
    already on the grid, as decoded 8-bit images are, are unchanged).

    Args:
        means: decoder outputs `(N, C, H, W)`, any real values (clamping them to [-1, 1] only helps).
        images: the images `(N, C, H, W)` in [-1, 1].
        sigma: standard deviation of the Gaussian, in [-1, 1] units, > 0.
        bit_depth: bits per value of the images.

    Returns:
        float64 tensor `(N,)`: `-sum log P(x_i)` over each image's `C * H * W` values.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    mu, x = _image_pair(means, images)
    top = 2**bit_depth - 1
    level = torch.round((x.clamp(-1.0, 1.0) + 1.0) * (top / 2.0))
    x = level * (2.0 / top) - 1.0
    delta = 1.0 / top
    low, high = (x - delta - mu) / sigma, (x + delta - mu) / sigma
    # log(Phi(high) - Phi(low)), computed where it is accurate: a bin above the mean is mirrored below it
    # (Phi(high) - Phi(low) = Phi(-low) - Phi(-high)), where log_ndtr keeps its digits far into the tail.
    above = (low + high) > 0
    low, high = torch.where(above, -high, low), torch.where(above, -low, high)
    log_high = torch.special.log_ndtr(high)
    log_p = log_high + torch.log(-torch.expm1(torch.special.log_ndtr(low) - log_high))
    # The end bins: P(x <= -1 + delta) and P(x >= 1 - delta); `above` flipped both bounds of the latter already.
    first, last = level == 0, level == top
    log_p = torch.where(first, torch.special.log_ndtr((x + delta - mu) / sigma), log_p)
    log_p = torch.where(last, torch.special.log_ndtr((mu - x + delta) / sigma), log_p)
    return -log_p.flatten(1).sum(dim=1)


def discretized_gaussian_nll_sweep(
    means: ArrayLike,
    images: ArrayLike,
    sigmas: tuple[float, ...] = RECONSTRUCTION_SIGMAS,
    bit_depth: int = 8,
) -> torch.Tensor:
    """Total `discretized_gaussian_nll` of a batch for each standard deviation in `sigmas`: float64 `(len(sigmas),)`
    nats. Sums over batches, then the smallest entry, give the best of the grid for a whole evaluation set (one
    scalar fitted on the set, which the evaluation code reports with it)."""
    return torch.stack([discretized_gaussian_nll(means, images, sigma, bit_depth).sum() for sigma in sigmas])
