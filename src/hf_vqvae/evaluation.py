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
`codebook_used`, `level{i}_perplexity`, `bits_per_code`, ...), plus `ssim` and `fid`. Every formula is the one in
`hf_vqvae.metrics.functional`; this module only accumulates over batches.
"""

from __future__ import annotations

import json
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
    bits_per_code,
    bits_per_dim,
    code_histogram,
    code_nll,
    codebook_fraction_used,
    codebook_perplexity,
    frechet_distance_from_features,
    inception_features,
    mse,
    psnr_per_image,
    ssim_per_image,
)
from .sampling import decode_codes, sample_codes

__all__ = [
    "METRIC_INFO",
    "TASK_INFO",
    "code_loader",
    "describe_dataset",
    "eval_results",
    "evaluate_prior",
    "evaluate_vq_model",
    "generate_images",
    "image_loader",
    "level_names",
    "load_images",
    "model_index_entries",
    "prior_fid",
]

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


def _level_sizes(config) -> list[int]:
    """Codebook size K of each level, top first (VQ-VAE: one level)."""
    levels = len(getattr(config, "downsample_factors", None) or [None])
    ks = config.num_embeddings
    return list(ks) if isinstance(ks, (list, tuple)) else [int(ks)] * levels


@torch.inference_mode()
def evaluate_vq_model(
    model,
    loader: Iterable[Any],
    *,
    max_samples: int | None = None,
    progress: bool = True,
    max_skipped_fraction: float | None = 0.01,
) -> dict[str, float]:
    """Reconstruction quality and codebook usage of a VQ-VAE or VQ-VAE-2 over every image of `loader`.

    Reconstructions are clamped to [-1, 1] (what a user sees) before the metrics. MSE is the mean over all pixel
    values of the split (each batch's `mse` weighted by its images; the images are equally sized), PSNR and SSIM the
    mean of the per-image values, perplexity and fraction of codes used those of the histogram of every code the
    split produced: over the whole split, not averaged over batches.

    Args:
        model: a `VQVAEModel` or `VQVAE2Model`; evaluated in eval mode (no EMA or restart updates) on its device.
        loader: batches from `image_loader` (dicts with `pixel_values`) or bare `(B, C, H, W)` tensors in [-1, 1].
        max_samples: stop after this many images (default: the whole split).
        progress: show a tqdm bar.
        max_skipped_fraction: raise `TooManyBadExamplesError` if more of the input was unreadable (None: never).

    Returns:
        `{"mse", "psnr", "ssim", "perplexity", "codebook_used"}` for one level; for several levels the codebook
        entries per level, top first: `level0_perplexity`, `level0_codebook_used`, `level1_...`. Also
        `num_images` and `skipped_examples`.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    num_codes = _level_sizes(model.config)
    histograms = [torch.zeros(k, dtype=torch.int64) for k in num_codes]
    squared_error_sum = psnr_sum = ssim_sum = 0.0
    count = 0
    skips = SkipLog()
    try:
        for batch in _limited(loader, max_samples, "pixel_values", "evaluate", progress, skips):
            if max_skipped_fraction is not None:
                skips.check(max_skipped_fraction)
            pixels = batch["pixel_values"].to(device)
            output = model(pixel_values=pixels)
            reconstruction = output.reconstruction.float().clamp(-1, 1)
            # `mse` is the mean over the batch's elements: times its images, it sums per-image means.
            squared_error_sum += mse(reconstruction, pixels) * len(pixels)
            psnr_sum += float(psnr_per_image(reconstruction, pixels).sum())
            ssim_sum += float(ssim_per_image(reconstruction, pixels).sum())
            count += len(pixels)
            codes = output.codes if isinstance(output.codes, (tuple, list)) else (output.codes,)
            for histogram, level_codes, k in zip(histograms, codes, num_codes):
                histogram += code_histogram(level_codes, k).cpu()
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("the evaluation split yielded no usable images")
    metrics = {"mse": squared_error_sum / count, "psnr": psnr_sum / count, "ssim": ssim_sum / count}
    for level, histogram in enumerate(histograms):
        prefix = "" if len(histograms) == 1 else f"level{level}_"
        metrics[prefix + "perplexity"] = codebook_perplexity(histogram)
        metrics[prefix + "codebook_used"] = codebook_fraction_used(histogram)
    metrics["num_images"] = count
    metrics["skipped_examples"] = skips.skipped
    return metrics


# --------------------------------------------------------------------------------------------------------------------
# PixelSNAIL priors


@torch.inference_mode()
def evaluate_prior(
    prior,
    loader: Iterable[Any],
    image_dims: int,
    *,
    max_samples: int | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """Negative log-likelihood of a prior over every code map of `loader`.

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
    nll_sum, num_codes, count = 0.0, 0, 0
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
            logits = prior(codes, condition=condition, class_labels=labels).logits
            nll_sum += float(code_nll(logits.double(), codes).sum())
            num_codes += codes.numel()
            count += len(codes)
    finally:
        prior.train(was_training)
    if count == 0:
        raise ValueError("the evaluation split yielded no code maps")
    return {
        "nll_nats_per_code": nll_sum / num_codes,
        "bits_per_code": bits_per_code(nll_sum, num_codes),
        "bits_per_dim": bits_per_dim(nll_sum, count * image_dims),
        "num_images": count,
    }


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


def _metric_entries(metrics: Mapping[str, Any]) -> list[tuple[str, str, float]]:
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
        for metric_type, name, value in _metric_entries(metrics)
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


def describe_dataset(dataset: str) -> tuple[str, str]:
    """`(model-index dataset type, readable name)` of a dataset argument: a Hub dataset id is its own type and name;
    a local folder written by `scripts/prepare_data.py` is described by its source (Fashion-MNIST: the Hub id
    `zalando-datasets/fashion_mnist`), through the table of known sources in `hf_vqvae.hub`; any other folder by its
    name."""
    folder = Path(dataset)
    if not folder.is_dir():
        return dataset, dataset
    info_path = folder / "dataset_info.json"
    source = json.loads(info_path.read_text()).get("source") if info_path.exists() else None
    if not source:
        return folder.name, folder.name
    from .hub import KNOWN_SOURCES  # deferred: hub imports the card machinery, and may import this module

    known = KNOWN_SOURCES.get(source)
    if not known:
        return source, source
    return known.get("hub_id") or known["name"], known["name"]
