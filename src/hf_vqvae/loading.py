"""What a trained model folder says about reading data for it: its image processor, and the share of its train
split that its training run held out.

Training saves the processor beside the model; a folder saved by `save_pretrained` alone, or a Hub repo without a
`preprocessor_config.json`, gets `VQVAEImageProcessor.for_model_size` of the model's config instead. Every script,
the training tasks and the Hub packaging ask here, so they all see a model's inputs the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

from .data.sources import DEFAULT_VALIDATION_PERCENTAGE
from .image_processing_vqvae import VQVAEImageProcessor


def load_processor(source: str | Path | None, config) -> VQVAEImageProcessor:
    """The processor saved at `source` (a local folder or a Hub id), else the default one for `config` (any VQ
    model config: its `image_size` and `in_channels`). `source=None` gives the default one."""
    if source is not None:
        try:
            return VQVAEImageProcessor.from_pretrained(source)
        except OSError:  # nothing saved there: the model's own size is all there is to go by
            pass
    return VQVAEImageProcessor.for_model_size(config.image_size, num_channels=config.in_channels)


def recorded_validation_percentage(model_name_or_path: str | Path) -> float:
    """The share of its train split that the training run in `model_name_or_path` held out (its train_args.json,
    where scripts/train.py records it), so that evaluating or encoding the same dataset reads exactly the examples
    that run never trained on. 5 (train.py's default) for a Hub id, a folder not written by train.py, or a run that
    evaluated on a split of its own."""
    path = Path(model_name_or_path) / "train_args.json"
    recorded = json.loads(path.read_text()) if path.is_file() else {}
    held_out = recorded.get("eval_split") is not None and recorded.get("eval_split") == recorded.get("train_split")
    percentage = recorded.get("validation_split_percentage") if held_out else None
    return float(percentage) if percentage else DEFAULT_VALIDATION_PERCENTAGE


__all__ = ["load_processor", "recorded_validation_percentage"]
