"""Offline evaluation of trained models over a whole dataset split, and the Hub model-index entries of the results.

`scripts/evaluate.py` is the command line; the functions here are what it, the quality benchmark and the Hub
packaging code share:

```python
from hf_vqvae.evaluation import evaluate_vq_model, image_loader, model_index_entries

loader = image_loader("outputs/data/fashion-mnist", "test", processor, batch_size=64)
metrics = evaluate_vq_model(model, loader)  # {"mse", "psnr", "ssim", "perplexity", "codebook_used", ...}
entries = model_index_entries(  # what goes under `model-index:` in a card's metadata
    "my-vqvae", metrics, task="reconstruction", dataset_type="zalando-datasets/fashion_mnist",
    dataset_name="Fashion-MNIST", dataset_split="test",
)
```

Metric keys are those of `scripts/train.py`'s `metrics.json` without its `eval/` prefix (`mse`, `psnr`, `perplexity`,
`codebook_used`, `level{i}_perplexity`, `bits_per_code`, ...), plus `ssim`, the decoder likelihood
(`reconstruction_bits_per_dim`), the likelihood bound of a VQ-VAE with its prior (`nll_bound_bits_per_dim`) and
`fid`. Every formula is the one in `hf_vqvae.metrics.functional`; this module only accumulates over batches
(`ReconstructionStats`, `PriorNLLStats`, which training's periodic evaluation uses too).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import EvalResult
from huggingface_hub.repocard_data import eval_results_to_model_index
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .data import CodeCollator, ImageCollator, SkipLog, load_stream
from .metrics.functional import (
    RECONSTRUCTION_SIGMAS,
    bits_per_code,
    bits_per_dim,
    code_histogram,
    code_nll,
    codebook_fraction_used,
    codebook_perplexity,
    discretized_gaussian_nll_sweep,
    frechet_distance_from_features,
    inception_features,
    psnr_per_image,
    ssim_per_image,
)
from .sampling import decode_codes, sample_codes

__all__ = [
    "EVAL_RESULTS_FILE",
    "METRIC_INFO",
    "PriorNLLStats",
    "ReconstructionStats",
    "TASK_INFO",
    "code_loader",
    "describe_dataset",
    "eval_results",
    "evaluate_prior",
    "evaluate_vq_model",
    "eval_results_of_entries",
    "generate_images",
    "image_loader",
    "level_names",
    "level_sizes",
    "load_images",
    "metric_entries",
    "model_index_entries",
    "prior_fid",
    "weights_fingerprint",
]

# What `scripts/evaluate.py --output` writes into a model's folder; Hub cards built from the folder report it.
EVAL_RESULTS_FILE = "eval_results.json"

# Metric key -> (model-index metric type, readable name). The types are those hub.py's cards already use for the
# same numbers from metrics.json, so a card's model-index and this module's describe a metric alike.
METRIC_INFO: dict[str, tuple[str, str]] = {
    "mse": ("mse", "Reconstruction MSE (pixels in [-1, 1])"),
    "psnr": ("psnr", "PSNR (dB)"),
    "ssim": ("ssim", "SSIM"),
    "perplexity": ("perplexity", "Codebook perplexity"),
    "codebook_used": ("codebook_usage", "Fraction of the codebook used"),
    "bits_per_code": ("bits_per_code", "Bits per code"),
    "bits_per_dim": ("bits_per_dim", "Bits per image dimension"),
    "all_levels_bits_per_dim": ("all_levels_bits_per_dim", "Bits per image dimension, codes of every level"),
    "reconstruction_bits_per_dim": ("reconstruction_bits_per_dim", "Decoder NLL, bits per image dimension"),
    "nll_bound_bits_per_dim": ("nll_bound_bits_per_dim", "Image NLL bound, bits per image dimension (VQ-VAE paper)"),
    "nll_nats_per_code": ("nll", "Negative log-likelihood (nats per code)"),
    "fid": ("fid", "FID"),
}
# What was evaluated -> (model-index task type, readable task name). A prior's likelihood and the FID of its decoded
# samples share one task: the Hub groups results by task type and dataset, keeping one task name per group.
TASK_INFO: dict[str, tuple[str, str]] = {
    "reconstruction": ("image-to-image", "Image reconstruction"),
    "prior": ("unconditional-image-generation", "Prior over VQ-VAE codes"),
}
# Significant digits of the values written into the model-index (the JSON "metrics" keep full precision).
MODEL_INDEX_DIGITS = 5
# Per-level metric keys of a VQ-VAE-2: `level{i}_{metric}`, top level 0.
_LEVEL_KEY = re.compile(r"level(\d+)_")


# --------------------------------------------------------------------------------------------------------------------
# Data


def _loader(stream, batch_size: int, collate, num_workers: int) -> DataLoader:
    # Streams have no length: batches come in stream order (no shuffling), the same order on every call when
    # num_workers is 0; with workers, shards are dealt to workers and their batches interleaved, still
    # deterministically.
    workers = min(num_workers, getattr(stream, "num_shards", 1) or 1)
    return DataLoader(stream, batch_size=batch_size, collate_fn=collate, num_workers=workers)


def image_loader(
    dataset: str,
    split: str,
    processor,
    batch_size: int = 64,
    num_workers: int = 0,
    image_column: str = "image",
    label_column: str | None = "label",
) -> DataLoader:
    """Batches of a streamed image split (a Hub dataset id or a local folder), decoded and processed by
    `ImageCollator`: dicts with `pixel_values` `(B, C, H, W)` in [-1, 1], `labels`, `ids` and the skip counts."""
    stream = load_stream(dataset, split, image_column=image_column)
    has_labels = label_column is not None and label_column in (stream.features or {})
    collate = ImageCollator(processor, image_column=image_column, label_column=label_column if has_labels else None)
    return _loader(stream, batch_size, collate, num_workers)


def code_loader(
    dataset: str,
    split: str,
    code_column: str = "codes",
    condition_column: str | None = None,
    label_column: str | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
) -> DataLoader:
    """Batches of a code dataset written by `scripts/extract_codes.py`: dicts with `codes`, `condition`, `labels`."""
    stream = load_stream(dataset, split)
    return _loader(stream, batch_size, CodeCollator(code_column, condition_column, label_column), num_workers)


def _limited(
    loader: Iterable[Any], max_samples: int | None, size_key: str, desc: str, progress: bool, skips: SkipLog | None
):
    """The batches of `loader` (dicts, or bare tensors for `size_key`), cut to `max_samples` examples in all, with
    a tqdm bar counting examples. Stops reading the stream as soon as the limit is reached."""
    seen = 0
    total = max_samples if max_samples is not None else _known_length(loader)
    with tqdm(total=total, desc=desc, unit="img", disable=not progress) as bar:
        for batch in loader:
            if not isinstance(batch, Mapping):
                batch = {size_key: batch}
            if skips is not None and "num_examples" in batch:
                skips.update(batch)
            size = len(batch[size_key])
            if max_samples is not None and seen + size > max_samples:
                keep = max_samples - seen
                batch = {k: v[:keep] if isinstance(v, torch.Tensor) and v.ndim and len(v) == size else v
                         for k, v in batch.items()}  # fmt: skip
                size = keep
            if size:
                seen += size
                bar.update(size)
                yield batch
            if max_samples is not None and seen >= max_samples:
                return


def _known_length(loader: Iterable[Any]) -> int | None:
    """Number of examples behind `loader` if it can tell without reading (a map-style dataset), else None."""
    try:
        return len(loader.dataset)  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        return None


# --------------------------------------------------------------------------------------------------------------------
# VQ-VAE / VQ-VAE-2


def level_sizes(config) -> list[int]:
    """Codebook size K of each level of a VQ model's config, top first (VQ-VAE: one level)."""
    levels = getattr(config, "num_levels", None) or len(getattr(config, "downsample_factors", None) or [None])
    ks = config.num_embeddings
    return list(ks) if isinstance(ks, (list, tuple)) else [int(ks)] * levels


# PSNR of an image reconstructed exactly is infinite; it counts as this many dB so that one such image does not make
# the mean over a set infinite.
MAX_PSNR = 100.0


class _SummedStats:
    """Figures kept as running sums in one float64 vector whose first entry counts the images: distributed ranks
    each sum their share and add the vectors (`accelerator.reduce(stats.state(), "sum")`) before `compute`."""

    _sums: torch.Tensor

    def state(self) -> torch.Tensor:
        """A copy of the sums: add the vectors of several ranks elementwise."""
        return self._sums.clone()

    def load_state(self, state: torch.Tensor) -> None:
        """Replaces the sums, e.g. by their total over ranks."""
        if state.shape != self._sums.shape:
            raise ValueError(f"state of shape {tuple(state.shape)} does not fit these stats {tuple(self._sums.shape)}")
        self._sums = state.detach().to("cpu", torch.float64).clone()

    @property
    def num_images(self) -> int:
        return int(self._sums[0])


class ReconstructionStats(_SummedStats):
    """Running sums, over an evaluation set, of a VQ model's reconstruction quality and code usage.

    The sums live in one float64 vector (`state`), so that distributed ranks add theirs up before `compute`:

    ```python
    stats = ReconstructionStats(level_sizes(model.config))
    for pixels in loader:
        output = model(pixel_values=pixels)
        stats.update(pixels, output.reconstruction.clamp(-1, 1), output.codes)
    stats.load_state(accelerator.reduce(stats.state().to(accelerator.device), "sum").cpu())  # when distributed
    stats.compute()  # {"mse", "psnr", "ssim", "reconstruction_bits_per_dim", ..., "perplexity", "codebook_used"}
    ```

    Args:
        num_codes: codebook size of each level, top first (`level_sizes(config)`).
        ssim: also sum SSIM (float64 convolutions: the slowest figure but the likelihood).
        likelihood: also sum the decoder's discretised-Gaussian NLL for every standard deviation of
            `RECONSTRUCTION_SIGMAS` (`metrics.functional.discretized_gaussian_nll_sweep`); `compute` reports the best.
    """

    def __init__(self, num_codes: Sequence[int], *, ssim: bool = True, likelihood: bool = True) -> None:
        self.num_codes = [int(k) for k in num_codes]
        self.ssim, self.likelihood = ssim, likelihood
        self.sigmas = RECONSTRUCTION_SIGMAS if likelihood else ()
        # [images, pixel values, squared error, PSNR, SSIM, NLL per sigma..., histogram of each level...]
        self._sums = torch.zeros(5 + len(self.sigmas) + sum(self.num_codes), dtype=torch.float64)

    def update(
        self, pixels: torch.Tensor, reconstruction: torch.Tensor, codes: torch.Tensor | Sequence[torch.Tensor]
    ) -> None:
        """Adds a batch: `pixels` and `reconstruction` `(B, C, H, W)` in [-1, 1] (clamp the reconstruction first: it
        is what a user sees), `codes` the `(B, h, w)` code map of each level, top first (a tensor for one level)."""
        if len(pixels) == 0:
            return
        sums = self._sums
        per_image_error = (reconstruction.double() - pixels.double()).square().flatten(1)
        sums[0] += len(pixels)
        sums[1] += per_image_error.numel()
        sums[2] += float(per_image_error.sum())
        sums[3] += float(psnr_per_image(reconstruction, pixels).clamp_max(MAX_PSNR).sum())
        if self.ssim:
            sums[4] += float(ssim_per_image(reconstruction, pixels).sum())
        if self.likelihood:
            sums[5 : 5 + len(self.sigmas)] += discretized_gaussian_nll_sweep(reconstruction, pixels, self.sigmas).cpu()
        offset = 5 + len(self.sigmas)
        for level_codes, k in zip(codes if isinstance(codes, (tuple, list)) else (codes,), self.num_codes):
            sums[offset : offset + k] += code_histogram(level_codes, k).cpu().double()
            offset += k

    def compute(self) -> dict[str, float]:
        """Over every image added: `mse` (mean over all pixel values), `psnr` and `ssim` (means of the per-image
        values), `reconstruction_bits_per_dim` (`-log2 p(x | z)` per pixel value at the best standard deviation,
        reported as `reconstruction_sigma`), and per level `perplexity` and `codebook_used` of the histogram of
        every code (levels of a hierarchy prefixed `level{i}_`, top first). Empty stats give `{}`."""
        sums = self._sums
        images, values = float(sums[0]), float(sums[1])
        if images == 0:
            return {}
        metrics = {"mse": float(sums[2]) / values, "psnr": float(sums[3]) / images}
        if self.ssim:
            metrics["ssim"] = float(sums[4]) / images
        if self.likelihood:
            nll = sums[5 : 5 + len(self.sigmas)]
            best = int(torch.argmin(nll))
            metrics["reconstruction_bits_per_dim"] = bits_per_dim(float(nll[best]), int(values))
            metrics["reconstruction_sigma"] = self.sigmas[best]
        offset = 5 + len(self.sigmas)
        for level, k in enumerate(self.num_codes):
            histogram = sums[offset : offset + k]
            offset += k
            prefix = "" if len(self.num_codes) == 1 else f"level{level}_"
            metrics[prefix + "perplexity"] = codebook_perplexity(histogram)
            metrics[prefix + "codebook_used"] = codebook_fraction_used(histogram)
        return metrics


@torch.inference_mode()
def evaluate_vq_model(
    model,
    loader: Iterable[Any],
    *,
    max_samples: int | None = None,
    progress: bool = True,
    max_skipped_fraction: float | None = 0.01,
    ssim: bool = True,
    likelihood: bool = True,
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
        model: a `VQVAEModel` or `VQVAE2Model`; evaluated in eval mode (no EMA or restart updates) on its device.
        loader: batches from `image_loader` (dicts with `pixel_values`) or bare `(B, C, H, W)` tensors in [-1, 1].
        max_samples: stop after this many images (default: the whole split).
        progress: show a tqdm bar.
        max_skipped_fraction: raise `TooManyBadExamplesError` if more of the input was unreadable (None: never).
        ssim: compute SSIM.
        likelihood: compute `reconstruction_bits_per_dim` (about 40 passes of cheap elementwise maths per batch).

    Returns:
        `{"mse", "psnr", "ssim", "reconstruction_bits_per_dim", "reconstruction_sigma", "perplexity",
        "codebook_used"}` for one level; for several levels the codebook entries per level, top first:
        `level0_perplexity`, `level0_codebook_used`, `level1_...`. Also `num_images` and `skipped_examples`.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    stats = ReconstructionStats(level_sizes(model.config), ssim=ssim, likelihood=likelihood)
    skips = SkipLog()
    try:
        for batch in _limited(loader, max_samples, "pixel_values", "evaluate", progress, skips):
            if max_skipped_fraction is not None:
                skips.check(max_skipped_fraction)
            pixels = batch["pixel_values"].to(device)
            output = model(pixel_values=pixels)
            stats.update(pixels, output.reconstruction.float().clamp(-1, 1), output.codes)
    finally:
        model.train(was_training)
    if stats.num_images == 0:
        raise ValueError("the evaluation split yielded no usable images")
    return {**stats.compute(), "num_images": stats.num_images, "skipped_examples": skips.skipped}


# --------------------------------------------------------------------------------------------------------------------
# PixelSNAIL priors


class PriorNLLStats(_SummedStats):
    """Running sums of a prior's negative log-likelihood over code maps, in one float64 vector (`state`) that
    distributed ranks add up, as `ReconstructionStats`.

    Args:
        image_dims: `C * H * W` of the images the codes encode, for bits per image dimension.
    """

    def __init__(self, image_dims: int) -> None:
        self.image_dims = int(image_dims)
        self._sums = torch.zeros(3, dtype=torch.float64)  # [code maps, NLL in nats, codes]

    def update(self, logits: torch.Tensor, codes: torch.Tensor) -> None:
        """Adds a batch: the prior's `logits` `(B, K, h, w)` for the observed `codes` `(B, h, w)`."""
        self._sums += torch.tensor([len(codes), float(code_nll(logits.double(), codes).sum()), codes.numel()],
                                   dtype=torch.float64)  # fmt: skip

    def compute(self) -> dict[str, float]:
        """`nll_nats_per_code` and `bits_per_code` (means over every code), `bits_per_dim` (the codes' total NLL over
        the images' pixel dimensions); `{}` when empty."""
        images, nll, num_codes = (float(value) for value in self._sums)
        if images == 0:
            return {}
        return {
            "nll_nats_per_code": nll / num_codes,
            "bits_per_code": bits_per_code(nll, int(num_codes)),
            "bits_per_dim": bits_per_dim(nll, int(images) * self.image_dims),
        }


@torch.inference_mode()
def evaluate_prior(
    prior,
    loader: Iterable[Any],
    image_dims: int,
    *,
    max_samples: int | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """Negative log-likelihood of a prior over every code map of `loader` (`PriorNLLStats`).

    Args:
        prior: a `PixelSNAILModel`, evaluated in eval mode (no dropout) on its device.
        loader: batches from `code_loader` (dicts with `codes`, and `condition` / `labels` where the prior takes
            them).
        image_dims: `C * H * W` of the images the codes encode, for bits per image dimension.
        max_samples: stop after this many code maps (default: the whole split).

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
        for batch in _limited(loader, max_samples, "codes", "evaluate prior", progress, None):
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
    finally:
        prior.train(was_training)
    if stats.num_images == 0:
        raise ValueError("the evaluation split yielded no code maps")
    return {**stats.compute(), "num_images": stats.num_images}


# --------------------------------------------------------------------------------------------------------------------
# Samples and FID


@torch.inference_mode()
def load_images(
    loader: Iterable[Any], max_samples: int | None, progress: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The first `max_samples` images of `loader` (from `image_loader`) as one `(N, C, H, W)` tensor, and their
    labels `(N,)` (None if the dataset has none)."""
    pixels, labels = [], []
    for batch in _limited(loader, max_samples, "pixel_values", "load images", progress, None):
        pixels.append(batch["pixel_values"])
        labels.append(batch.get("labels"))
    if not pixels:
        raise ValueError("the split yielded no usable images")
    has_labels = all(label is not None for label in labels)
    return torch.cat(pixels), torch.cat(labels) if has_labels else None


@torch.inference_mode()
def generate_images(
    priors: Sequence,
    vq_model,
    num_samples: int,
    *,
    class_labels: torch.Tensor | None = None,
    batch_size: int = 64,
    seed: int = 0,
    temperature: float = 1.0,
    top_k: int | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """`num_samples` images `(N, C, H, W)` in [-1, 1]: codes by ancestral sampling through `priors` (top first,
    `sampling.sample_codes`), decoded by `vq_model` (`sampling.decode_codes`), in batches of `batch_size`.

    Args:
        class_labels: `(num_samples,)` labels for class-conditional priors; default (when a prior needs them): the
            classes in turn, `arange(N) % num_classes`.
        seed: seeds one generator that every batch draws from, so the same call gives the same images.
    """
    device = next(priors[0].parameters()).device
    num_classes = max((prior.config.num_classes or 0) for prior in priors)
    if num_classes and class_labels is None:
        class_labels = torch.arange(num_samples) % num_classes
    generator = torch.Generator(device=device).manual_seed(seed)
    images = []
    with tqdm(total=num_samples, desc="sample", unit="img", disable=not progress) as bar:
        for start in range(0, num_samples, batch_size):
            size = min(batch_size, num_samples - start)
            labels = class_labels[start : start + size].to(device) if num_classes else None
            codes = sample_codes(priors, size, labels, temperature, top_k, generator)
            images.append(decode_codes(vq_model, codes).float().cpu())
            bar.update(size)
    return torch.cat(images)


def prior_fid(
    priors: Sequence,
    vq_model,
    reference_images: torch.Tensor,
    *,
    reference_labels: torch.Tensor | None = None,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
) -> tuple[float, torch.Tensor]:
    """FID between as many generated images as there are `reference_images` (held-out real images in [-1, 1]) and
    those images. A class-conditional prior samples the reference images' own labels (`reference_labels`), so
    both sets have the same class mix. Returns the FID and the generated images.

    FID of small sets is biased upwards: compare values only at the same N.
    """
    samples = generate_images(
        priors,
        vq_model,
        len(reference_images),
        class_labels=reference_labels,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
    )
    # `frechet_inception_distance(samples, reference_images)`, with a progress bar: the Inception network is the
    # slow part (about 4 images/s on 2 CPU cores), and features of a chunk do not depend on the other chunks.
    features = [_inception_features(images, desc, progress) for images, desc in
                ((samples, "FID: samples"), (reference_images, "FID: held-out images"))]  # fmt: skip
    return frechet_distance_from_features(*features), samples


def _inception_features(images: torch.Tensor, desc: str, progress: bool, chunk: int = 64) -> torch.Tensor:
    """`inception_features(images)`, a chunk at a time under a tqdm bar."""
    parts = []
    with tqdm(total=len(images), desc=desc, unit="img", disable=not progress) as bar:
        for start in range(0, len(images), chunk):
            parts.append(inception_features(images[start : start + chunk]))
            bar.update(len(parts[-1]))
    return torch.cat(parts)


# --------------------------------------------------------------------------------------------------------------------
# Model-index


def level_names(num_levels: int) -> list[str]:
    """Readable names of the levels of a hierarchy, top first."""
    if num_levels == 1:
        return [""]
    if num_levels == 2:
        return ["top", "bottom"]
    return ["top", *(f"middle {i}" for i in range(1, num_levels - 1)), "bottom"]


def metric_entries(metrics: Mapping[str, Any]) -> list[tuple[str, str, float]]:
    """(metric type, readable name, value) of every reportable entry of `metrics`, in METRIC_INFO order, levels
    top first. Counts (`num_images`, ...) and non-finite values are left out. Keys may carry metrics.json's `eval/`
    prefix: a training run's metrics.json can be passed as it is."""
    metrics = {key.removeprefix("eval/"): value for key, value in metrics.items()}
    levels = sorted({int(match[1]) for key in metrics if (match := _LEVEL_KEY.match(key))})
    names = level_names(max(levels) + 1) if levels else []
    entries = []
    for key, (metric_type, name) in METRIC_INFO.items():
        candidates = [(key, name)] + [(f"level{level}_{key}", f"{name}, {names[level]} level") for level in levels]
        for metrics_key, label in candidates:
            value = metrics.get(metrics_key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                entries.append((metric_type, label, float(f"{value:.{MODEL_INDEX_DIGITS}g}")))
    return entries


def eval_results(
    metrics: Mapping[str, Any],
    *,
    task: str,
    dataset_type: str,
    dataset_name: str,
    dataset_split: str | None = None,
    dataset_config: str | None = None,
) -> list[EvalResult]:
    """`huggingface_hub.EvalResult`s of `metrics` (keys as `evaluate_vq_model` / `evaluate_prior` return them, plus
    `fid`; or a metrics.json of scripts/train.py, whose `eval/` keys are the same), for
    `ModelCardData(eval_results=...)`.

    Args:
        task: `"reconstruction"` (VQ models) or `"prior"` (priors, with their FID); see `TASK_INFO`.
        dataset_type: the Hub dataset id where there is one (`describe_dataset`), else a short name.
        dataset_name: a readable name of the dataset.
        dataset_split: the split evaluated.
    """
    if task not in TASK_INFO:
        raise ValueError(f"unknown task {task!r}; choose one of {sorted(TASK_INFO)}")
    task_type, task_name = TASK_INFO[task]
    return eval_results_of_entries(
        metric_entries(metrics),
        task_type=task_type,
        task_name=task_name,
        dataset_type=dataset_type,
        dataset_name=dataset_name,
        dataset_split=dataset_split,
        dataset_config=dataset_config,
    )


def eval_results_of_entries(
    entries: Iterable[tuple[str, str, float]],
    *,
    task_type: str,
    task_name: str,
    dataset_type: str,
    dataset_name: str,
    dataset_split: str | None = None,
    dataset_config: str | None = None,
) -> list[EvalResult]:
    """One `EvalResult` per `(metric type, readable name, value)` entry (`metric_entries`, possibly renamed), all
    of one task and dataset."""
    return [
        EvalResult(
            task_type=task_type,
            task_name=task_name,
            dataset_type=dataset_type,
            dataset_name=dataset_name,
            dataset_config=dataset_config,
            dataset_split=dataset_split,
            metric_type=metric_type,
            metric_name=name,
            metric_value=value,
        )
        for metric_type, name, value in entries
    ]


def model_index_entries(model_name: str, metrics: Mapping[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    """The Hub model-index (`card_data["model-index"]`) of one evaluation: `eval_results(metrics, **kwargs)`
    through `huggingface_hub`'s own `eval_results_to_model_index`, so it parses back to the same results:

        [{"name": model_name, "results": [{"task": {"type": "image-to-image", "name": "Image reconstruction"},
          "dataset": {"type": ..., "name": ..., "split": ...}, "metrics": [{"type": "mse", "value": ..., "name":
          "Reconstruction MSE (pixels in [-1, 1])"}, ...]}]}]

    Values are rounded to `MODEL_INDEX_DIGITS` significant digits. Keyword arguments: those of `eval_results`.
    """
    results = eval_results(metrics, **kwargs)
    if not results:
        raise ValueError(f"no reportable metric in {sorted(metrics)}")
    return eval_results_to_model_index(model_name, results)


def weights_fingerprint(model_dir: str | Path) -> str | None:
    """SHA-256 of a local model folder's `model.safetensors` (None when there is none): `scripts/evaluate.py`
    records it beside its results, so a card built later uses them only for the weights they measured."""
    path = Path(model_dir) / "model.safetensors"
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_dataset(dataset: str) -> tuple[str, str]:
    """`(model-index dataset type, readable name)` of a dataset argument, as the cards describe it
    (`hf_vqvae.hub.describe_dataset`): a Hub dataset id is its own type and name; a local folder written by
    `scripts/prepare_data.py` is described by its source (Fashion-MNIST: the Hub id `zalando-datasets/fashion_mnist`);
    any other folder by its name."""
    from .hub import describe_dataset as describe  # deferred: hub imports this module

    info = describe(dataset)
    return info.model_index_type, info.name
