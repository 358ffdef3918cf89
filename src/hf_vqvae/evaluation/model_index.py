"""Hub model-index entries of evaluation results: what goes under `model-index:` in a model card's metadata.

Metric keys are those of `scripts/train.py`'s `metrics.json` without its `eval/` prefix (`mse`, `psnr`, `perplexity`,
`codebook_used`, `level{i}_perplexity`, `bits_per_code`, ...), plus `ssim`, the decoder likelihood
(`reconstruction_bits_per_dim`), the likelihood bound of a VQ-VAE with its prior (`nll_bound_bits_per_dim`) and
`fid`. `scripts/evaluate.py` and the Hub cards (`hf_vqvae.hub`) describe a metric through the same tables here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from huggingface_hub import EvalResult
from huggingface_hub.repocard_data import eval_results_to_model_index

# Metric key -> (model-index metric type, readable name). The Hub cards use the same table for the same numbers
# from metrics.json, so a card's model-index and scripts/evaluate.py's describe a metric alike.
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


def level_metric_key(name: str, level: int, num_levels: int) -> str:
    """The key of metric `name` of level `level` (0 is the top) among `num_levels`: `name` itself for a one-level
    model, `level{level}_{name}` in a hierarchy."""
    return name if num_levels == 1 else f"level{level}_{name}"


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


def held_out_dataset_name(dataset_name: str, dataset_split: str | None, held_out_percentage: float | None) -> str:
    """The model-index `dataset.name` of results on the share of a train split that training held out: the name
    says so, since the split named beside it is the one the model was trained on."""
    if not held_out_percentage:
        return dataset_name
    return f"{dataset_name} (held-out {held_out_percentage:g}% of {dataset_split or 'train'})"


def eval_results(
    metrics: Mapping[str, Any],
    *,
    task: str,
    dataset_type: str,
    dataset_name: str,
    dataset_split: str | None = None,
    dataset_config: str | None = None,
    held_out_percentage: float | None = None,
) -> list[EvalResult]:
    """`huggingface_hub.EvalResult`s of `metrics` (keys as `evaluate_vq_model` / `evaluate_prior` return them, plus
    `fid`; or a metrics.json of scripts/train.py, whose `eval/` keys are the same), for
    `ModelCardData(eval_results=...)`.

    Args:
        task: `"reconstruction"` (VQ models) or `"prior"` (priors, with their FID); see `TASK_INFO`.
        dataset_type: the Hub dataset id where there is one (`describe_dataset`), else a short name.
        dataset_name: a readable name of the dataset.
        dataset_split: the split evaluated.
        held_out_percentage: the share of `dataset_split` (a train split) that training held out and the
            evaluation read, where the dataset has no evaluation split: named in `dataset.name` and `dataset.args`.
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
        held_out_percentage=held_out_percentage,
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
    held_out_percentage: float | None = None,
) -> list[EvalResult]:
    """One `EvalResult` per `(metric type, readable name, value)` entry (`metric_entries`, possibly renamed), all
    of one task and dataset (`held_out_percentage` as in `eval_results`)."""
    held_out = {"held_out_percentage": held_out_percentage} if held_out_percentage else None
    return [
        EvalResult(
            task_type=task_type,
            task_name=task_name,
            dataset_type=dataset_type,
            dataset_name=held_out_dataset_name(dataset_name, dataset_split, held_out_percentage),
            dataset_config=dataset_config,
            dataset_split=dataset_split,
            dataset_args=held_out,
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


__all__ = [
    "METRIC_INFO",
    "MODEL_INDEX_DIGITS",
    "TASK_INFO",
    "eval_results",
    "eval_results_of_entries",
    "held_out_dataset_name",
    "level_metric_key",
    "level_names",
    "metric_entries",
    "model_index_entries",
]
