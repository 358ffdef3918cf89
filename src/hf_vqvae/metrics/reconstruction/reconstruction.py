"""Reconstruction quality of a VQ-VAE: MSE, PSNR and SSIM between reconstructions and the original images.

An `evaluate` module loaded from this folder (`hf_vqvae.metrics.load_metric("reconstruction")`); the formulas live in
`hf_vqvae.metrics.functional`.
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

from hf_vqvae.metrics import functional

_DESCRIPTION = """
Reconstruction metrics for images in [-1, 1], channels first (N, C, H, W):

- `mse`: mean squared error over all pixels and channels, in [-1, 1] units (4x the MSE of the same images in [0, 1]).
- `psnr`: mean over images of 10 log10(data_range^2 / MSE_image) in dB, with data_range = 2.0 (peak to peak of
  [-1, 1]); this is exactly the PSNR of the same images mapped to [0, 1]. Identical images give inf.
- `ssim`: mean over images of SSIM (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03,
  data range 2.0, population moments, valid positions only, computed per channel and averaged (as scikit-image's
  `structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=2.0)`).
- `reconstruction_bits_per_dim` (with `decoder_bits=True`): the decoder's -log2 p(x|z) per pixel value, under
  Gaussians around the predictions discretised to the 256 levels of 8-bit images, with the one standard deviation
  (`reconstruction_sigma`) that fits the set best on a fixed 2**(1/4) grid; the `prior_nll` module adds a prior's
  bits to it for the VQ-VAE paper's image NLL bound.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: reconstructed images, float array (N, C, H, W) in [-1, 1]; H, W >= 11 for SSIM.
    references: original images, same shape.
    data_range (`float`, default 2.0): peak-to-peak range of the pixel values.
    decoder_bits (`bool`, default False): also `reconstruction_bits_per_dim` and `reconstruction_sigma`.
Returns:
    dict with `mse`, `psnr` (dB) and `ssim` (floats), and the decoder bits if asked for.
Examples:
    >>> from hf_vqvae.metrics import load_metric
    >>> metric = load_metric("reconstruction")
    >>> metric.compute(predictions=reconstructions, references=images)  # doctest: +SKIP
    {'mse': 0.0123, 'psnr': 25.1, 'ssim': 0.81}
"""

_CITATION = """
@article{wang2004ssim,
  title={Image quality assessment: from error visibility to structural similarity},
  author={Wang, Zhou and Bovik, Alan C. and Sheikh, Hamid R. and Simoncelli, Eero P.},
  journal={IEEE Transactions on Image Processing}, volume={13}, number={4}, pages={600--612}, year={2004}
}
"""

# One image (C, H, W) of any size per row.
_IMAGE = datasets.List(datasets.List(datasets.List(datasets.Value("float32"))))


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Reconstruction(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": _IMAGE, "references": _IMAGE}),
        )

    def _compute(
        self,
        predictions,
        references,
        data_range: float = functional.DEFAULT_DATA_RANGE,
        decoder_bits: bool = False,
    ) -> dict[str, float]:
        # Rows come back from the Arrow cache as nested lists: (N, C, H, W) float32.
        predictions = np.asarray(predictions, dtype=np.float32)
        references = np.asarray(references, dtype=np.float32)
        result = {
            "mse": functional.mse(predictions, references),
            "psnr": functional.psnr(predictions, references, data_range=data_range),
            "ssim": functional.ssim(predictions, references, data_range=data_range),
        }
        if decoder_bits:
            nll = functional.discretized_gaussian_nll_sweep(predictions, references)
            best = int(nll.argmin())
            result["reconstruction_bits_per_dim"] = functional.bits_per_dim(float(nll[best]), predictions.size)
            result["reconstruction_sigma"] = functional.RECONSTRUCTION_SIGMAS[best]
        return result
