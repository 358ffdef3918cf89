"""The evaluation loops: a VQ model's reconstructions and code usage, a prior's likelihood, over a whole split.

They are the only ones: `scripts/evaluate.py` runs them on one process over a whole split, and the training tasks
run them at every `--eval_steps` on each rank's share of the held-out examples, passing their `Accelerator`, which
adds up the ranks' sums before the figures are computed (every rank gets the figures of all the examples).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from ..data import SkipLog
from .data import limited_batches
from .stats import PriorNLLStats, ReconstructionStats


def _total(accelerator, count: int) -> int:
    """`count` summed over the ranks of `accelerator` (itself without one)."""
    if accelerator is None or accelerator.num_processes == 1:
        return count
    return int(accelerator.reduce(torch.tensor([count], device=accelerator.device), "sum").item())


@torch.no_grad()
def evaluate_vq_model(
    model,
    loader: Iterable[Any],
    *,
    accelerator=None,
    max_samples: int | None = None,
    progress: bool = True,
    max_skipped_fraction: float | None = 0.01,
    ssim: bool = True,
    likelihood: bool = True,
    on_batch: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
) -> dict[str, float]:
    """Reconstruction quality and codebook usage of a VQ-VAE or VQ-VAE-2 over every image of `loader`
    (`ReconstructionStats`).

    Reconstructions are clamped to [-1, 1] (what a user sees) before the metrics. MSE is the mean over all pixel
    values of the split, PSNR and SSIM the mean of the per-image values, perplexity and fraction of codes used those
    of the histogram of every code the split produced: over the whole split, not averaged over batches.
    `reconstruction_bits_per_dim` is the decoder's `-log2 p(x | z)` per pixel value under a discretised Gaussian
    around the reconstruction, its one standard deviation (`reconstruction_sigma`) the best of a fixed grid on this
    split: the distortion half of the VQ-VAE paper's likelihood bound (`scripts/evaluate.py` adds a prior's bits).

    Args:
        model: any VQ model (its forward output's `level_codes`); evaluated in eval mode (no EMA or restart updates)
            on its device, and put back in the mode it was in.
        loader: batches from `image_loader` (dicts with `pixel_values`) or bare `(B, C, H, W)` tensors in [-1, 1].
        accelerator: an `accelerate.Accelerator` when each rank evaluates its own share: the sums are added over the
            ranks, and every rank gets the figures of all of them. Every rank must call.
        max_samples: stop after this many images (of this rank; default: the whole split).
        progress: show a tqdm bar.
        max_skipped_fraction: raise `TooManyBadExamplesError` if more of the input was unreadable (None: never).
        ssim: compute SSIM.
        likelihood: compute `reconstruction_bits_per_dim` (about 40 passes of cheap elementwise maths per batch).
        on_batch: called with each batch's pixels and clamped reconstruction (to keep some for a picture).

    Returns:
        `{"mse", "psnr", "ssim", "reconstruction_bits_per_dim", "reconstruction_sigma", "perplexity",
        "codebook_used"}` for one level; for several levels the codebook entries per level, top first:
        `level0_perplexity`, `level0_codebook_used`, `level1_...`. Also `num_images` and `skipped_examples`.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    stats = ReconstructionStats(model.config.level_num_embeddings, ssim=ssim, likelihood=likelihood)
    skips = SkipLog()
    try:
        for batch in limited_batches(loader, max_samples, "pixel_values", "evaluate", progress, skips):
            if max_skipped_fraction is not None:
                skips.check(max_skipped_fraction)
            pixels = batch["pixel_values"].to(device)
            output = model(pixel_values=pixels)
            reconstruction = output.reconstruction.float().clamp(-1, 1)
            stats.update(pixels, reconstruction, output.level_codes)
            if on_batch is not None:
                on_batch(pixels, reconstruction)
    finally:
        model.train(was_training)
    if accelerator is not None:
        stats.reduce(accelerator)
    if stats.num_images == 0:
        raise ValueError("the evaluation split yielded no usable images")
    return {**stats.compute(), "num_images": stats.num_images, "skipped_examples": _total(accelerator, skips.skipped)}


@torch.no_grad()
def evaluate_prior(
    prior,
    loader: Iterable[Any],
    image_dims: int,
    *,
    accelerator=None,
    max_samples: int | None = None,
    progress: bool = True,
    on_batch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, float]:
    """Negative log-likelihood of a prior over every code map of `loader` (`PriorNLLStats`).

    Args:
        prior: a `PixelSNAILModel`, evaluated in eval mode (no dropout) on its device, then put back in its mode.
        loader: batches from `code_loader` (dicts with `codes`, and `condition` / `labels` where the prior takes
            them).
        image_dims: `C * H * W` of the images the codes encode, for bits per image dimension.
        accelerator: as in `evaluate_vq_model`: the ranks' sums are added up.
        max_samples: stop after this many code maps (of this rank; default: the whole split).
        on_batch: called with each batch (to keep some for a picture).

    Returns:
        `{"nll_nats_per_code", "bits_per_code", "bits_per_dim", "num_images"}`: bits per code is the mean over every
        code of the split, bits per dim the total NLL of this level's codes over the images' pixel dimensions.
    """
    was_training = prior.training
    prior.eval()
    device = next(prior.parameters()).device
    stats = PriorNLLStats(image_dims)
    takes_condition = prior.config.condition_num_embeddings is not None
    takes_labels = prior.config.num_classes is not None

    def move(value: torch.Tensor | None) -> torch.Tensor | None:
        return None if value is None else value.to(device)

    try:
        for batch in limited_batches(loader, max_samples, "codes", "evaluate prior", progress):
            codes = batch["codes"].to(device)
            condition = move(batch.get("condition")) if takes_condition else None
            labels = move(batch.get("labels")) if takes_labels else None
            if takes_condition and condition is None:
                raise ValueError(
                    "the prior is conditioned on the level above: pass the code dataset's condition column"
                )
            if takes_labels and labels is None:
                raise ValueError("the prior is class-conditional: the code dataset needs its label column")
            stats.update(prior(codes, condition=condition, class_labels=labels).logits, codes)
            if on_batch is not None:
                on_batch(batch)
    finally:
        prior.train(was_training)
    if accelerator is not None:
        stats.reduce(accelerator)
    if stats.num_images == 0:
        raise ValueError("the evaluation split yielded no code maps")
    return {**stats.compute(), "num_images": stats.num_images}


@torch.no_grad()
def load_images(
    loader: Iterable[Any], max_samples: int | None, progress: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The first `max_samples` images of `loader` (from `image_loader`) as one `(N, C, H, W)` tensor, and their
    labels `(N,)` (None if the dataset has none)."""
    pixels, labels = [], []
    for batch in limited_batches(loader, max_samples, "pixel_values", "load images", progress):
        pixels.append(batch["pixel_values"])
        labels.append(batch.get("labels"))
    if not pixels:
        raise ValueError("the split yielded no usable images")
    has_labels = all(label is not None for label in labels)
    return torch.cat(pixels), torch.cat(labels) if has_labels else None


__all__ = ["evaluate_prior", "evaluate_vq_model", "load_images"]
