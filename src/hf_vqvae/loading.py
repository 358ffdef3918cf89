"""Which image processor goes with a trained model: the one saved with it, else the default one for its size.

Training saves the processor beside the model; a folder saved by `save_pretrained` alone, or a Hub repo without a
`preprocessor_config.json`, gets `VQVAEImageProcessor.for_model_size` of the model's config instead. Every script,
the training tasks and the Hub packaging ask here, so they all see a model's inputs the same way.
"""

from __future__ import annotations

from pathlib import Path

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


__all__ = ["load_processor"]
