"""Codebook usage of a vector quantiser over a whole evaluation set: perplexity and the fraction of codes used.

An `evaluate` module loaded from this folder (`hf_vqvae.metrics.load_metric("codebook_usage")`); the formulas live in
`hf_vqvae.metrics.functional`.
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

from hf_vqvae.metrics import functional

_DESCRIPTION = """
Codebook usage from the code maps of a whole evaluation set (one histogram over all images and positions, so unlike
the per-batch perplexity logged in training it does not depend on the batch size):

- `perplexity`: exp(entropy) of the code histogram (entropy in nats): the effective number of codes in use, between
  1 and `num_embeddings`.
- `fraction_used`: fraction of the `num_embeddings` codes that occur at least once.
- `codes_used`: number of codes that occur at least once.

For VQ-VAE-2, evaluate each level's codes separately (each level has its own codebook).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: code maps, integer array (N, h, w) with values in [0, num_embeddings).
    num_embeddings (`int`): codebook size K. May instead be given as the config name: `load_metric("codebook_usage",
        config_name="512")`.
Returns:
    dict with `perplexity` (float), `fraction_used` (float) and `codes_used` (int).
Examples:
    >>> from hf_vqvae.metrics import load_metric
    >>> metric = load_metric("codebook_usage")
    >>> metric.compute(predictions=[[[0, 1], [1, 1]]], num_embeddings=4)
    {'perplexity': 1.7547653506033232, 'fraction_used': 0.5, 'codes_used': 2}
"""

_CITATION = """
@inproceedings{vandenoord2017vqvae,
  title={Neural Discrete Representation Learning},
  author={van den Oord, Aaron and Vinyals, Oriol and Kavukcuoglu, Koray},
  booktitle={Advances in Neural Information Processing Systems}, year={2017}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CodebookUsage(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # One code map (h, w) per row.
            features=datasets.Features({"predictions": datasets.List(datasets.List(datasets.Value("int64")))}),
        )

    def _compute(self, predictions, num_embeddings: int | None = None) -> dict[str, float | int]:
        if num_embeddings is None:
            if not (self.config_name or "").isdigit():
                raise ValueError("pass num_embeddings=K to compute(), or load the metric with config_name='K'")
            num_embeddings = int(self.config_name)
        counts = functional.code_histogram(np.asarray(predictions, dtype=np.int64), num_embeddings)
        return {
            "perplexity": functional.codebook_perplexity(counts),
            "fraction_used": functional.codebook_fraction_used(counts),
            "codes_used": int((counts > 0).sum()),
        }
