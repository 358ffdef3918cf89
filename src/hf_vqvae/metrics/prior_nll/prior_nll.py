"""Negative log-likelihood of a prior over VQ-VAE codes, in bits per code and in bits per image dimension.

An `evaluate` module loaded from this folder (`hf_vqvae.metrics.load_metric("prior_nll")`); the formulas live in
`hf_vqvae.metrics.functional`.
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

from hf_vqvae.metrics import functional

_DESCRIPTION = """
NLL of the codes of an evaluation set under an autoregressive prior (PixelCNN / PixelSNAIL), from each image's NLL
summed over its code positions (`hf_vqvae.metrics.code_nll(logits, codes)`, or `PixelSNAILModel` loss (a mean per
position, in nats) times the number of positions):

- `nats_per_code`: total NLL / total number of codes, in nats.
- `bits_per_code`: the same in bits (divided by ln 2).
- `bits_per_dim` (only with `dims_per_image`): NLL of the codes in bits divided by the number of *pixel* dimensions
  of the images they encode, N * C * H * W; e.g. 3 * 32 * 32 per CIFAR-10 image whatever the latent size. This is
  how the VQ-VAE and VQ-VAE-2 papers put prior NLL on the scale of the data. For VQ-VAE-2 give each image's NLL
  summed over all levels and the number of codes summed over all levels. It is the rate part only.
- `nll_bound_bits_per_dim` (only with `dims_per_image` and `decoder_bits_per_dim`): the VQ-VAE paper's bound on the
  images' NLL, `bits_per_dim` plus the decoder's -log2 p(x|z) per pixel dimension on the same images (the
  `reconstruction` module's `reconstruction_bits_per_dim`). Unlike bits per code it compares priors over different
  codebooks: a codebook that uses few codes is cheap to model and pays in decoder bits.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: float array (N,): each image's NLL of its codes in nats, summed over code positions (and levels).
    references: int array (N,): each image's number of codes (h * w, summed over levels).
    dims_per_image (`int`, optional): pixel dimensions per image, C * H * W; adds `bits_per_dim`.
    decoder_bits_per_dim (`float`, optional): the VQ model's -log2 p(x|z) per pixel dimension on the same images;
        with `dims_per_image`, adds `nll_bound_bits_per_dim`.
Returns:
    dict with `nats_per_code`, `bits_per_code` and, with `dims_per_image`, `bits_per_dim` (and the bound).
Examples:
    >>> from hf_vqvae.metrics import load_metric
    >>> metric = load_metric("prior_nll")
    >>> metric.compute(predictions=[1024 * 0.6931471805599453], references=[1024], dims_per_image=3 * 128 * 128)
    {'nats_per_code': 0.6931471805599453, 'bits_per_code': 1.0, 'bits_per_dim': 0.020833333333333336}
"""

_CITATION = """
@inproceedings{razavi2019vqvae2,
  title={Generating Diverse High-Fidelity Images with VQ-VAE-2},
  author={Razavi, Ali and van den Oord, Aaron and Vinyals, Oriol},
  booktitle={Advances in Neural Information Processing Systems}, year={2019}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class PriorNll(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # float64, and no `format="numpy"` (its formatter returns float32): a sum of thousands of per-code NLLs
            # keeps its digits.
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(
        self,
        predictions,
        references,
        dims_per_image: int | None = None,
        decoder_bits_per_dim: float | None = None,
    ) -> dict[str, float]:
        total_nats = float(np.sum(predictions, dtype=np.float64))
        num_codes = int(np.sum(references, dtype=np.int64))
        result = {
            "nats_per_code": total_nats / num_codes,
            "bits_per_code": functional.bits_per_code(total_nats, num_codes),
        }
        if dims_per_image is not None:
            result["bits_per_dim"] = functional.bits_per_dim(total_nats, len(predictions) * int(dims_per_image))
            if decoder_bits_per_dim is not None:
                result["nll_bound_bits_per_dim"] = result["bits_per_dim"] + float(decoder_bits_per_dim)
        elif decoder_bits_per_dim is not None:
            raise ValueError("decoder_bits_per_dim needs dims_per_image: the bound is per pixel dimension")
        return result
