"""What every hf_vqvae `PreTrainedModel` shares beyond transformers' own base class."""

from __future__ import annotations

import warnings

import torch
from torch import nn
from transformers.utils import logging

from .layers import init_conv_weights
from .quantizer import VectorQuantizer

logger = logging.get_logger(__name__)


def is_traced() -> bool:
    """Whether torch.compile, torch.export or the JIT tracer is tracing: data-dependent Python checks
    (`int(tensor)`) would break the graph there, so input checks that read values run in eager mode only."""
    return torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.jit.is_tracing()


class OneLevelOutput:
    """The level-list view every VQ output shares (`level_codes`, `level_perplexity`, `level_codebook_usage`), for
    the outputs of one-level models, which keep their single-level fields `codes`, `perplexity`, `codebook_usage`."""

    @property
    def level_codes(self) -> tuple[torch.LongTensor, ...]:
        return (self.codes,)

    @property
    def level_perplexity(self) -> tuple[torch.FloatTensor, ...]:
        return (self.perplexity,)

    @property
    def level_codebook_usage(self) -> tuple[torch.FloatTensor, ...]:
        return (self.codebook_usage,)


class StrictLoadingMixin:
    """`from_pretrained` that loads what fits, initialises what is missing, and says so by name.

    transformers initialises tensors missing from a checkpoint and skips unexpected ones with a condensed log line
    that a logging level hides, and reports size mismatches in a log table while the exception says "see above".
    A codebook silently re-drawn at random throws away a trained model, so here:

    * missing tensors are initialised by the model's own `_init_weights` (a fresh model's distribution), unexpected
      ones are dropped, and every one of them is named in a `UserWarning` and a `logger.warning`, one line per
      tensor; `output_loading_info=True` also returns them (`missing_keys`, `unexpected_keys`, `mismatched_keys`);
    * a size mismatch raises one `ValueError` naming each tensor and both shapes, unless
      `ignore_mismatched_sizes=True`, which re-initialises those tensors on purpose (e.g. a new codebook size) and
      names them in the warning too.
    """

    # Regex -> replacement of tensor names written by earlier releases (transformers' `key_mapping`), so that their
    # folders keep loading after a module is renamed.
    _legacy_key_mapping: dict[str, str] | None = None

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        if cls._legacy_key_mapping and kwargs.get("key_mapping") is None:
            kwargs["key_mapping"] = dict(cls._legacy_key_mapping)
        reinitialise_mismatched = kwargs.pop("ignore_mismatched_sizes", False)
        wants_info = kwargs.pop("output_loading_info", False)
        # Mismatched tensors are always loaded as "ignored" so that the check below, not transformers' "see above"
        # error, reports them.
        model, info = super().from_pretrained(
            pretrained_model_name_or_path,
            *model_args,
            ignore_mismatched_sizes=True,
            output_loading_info=True,
            **kwargs,
        )
        mismatched = [
            f"{key}: checkpoint {tuple(saved)} vs model {tuple(wanted)}"
            for key, saved, wanted in sorted(info["mismatched_keys"])
        ]
        if mismatched and not reinitialise_mismatched:
            raise ValueError(
                f"the checkpoint at {pretrained_model_name_or_path!r} does not fit this {cls.__name__} config: "
                "tensor sizes differ:\n  " + "\n  ".join(mismatched) + "\nCheck the config overrides passed to "
                "from_pretrained, or pass ignore_mismatched_sizes=True to re-initialise these tensors on purpose."
            )
        problems = [f"{key}: missing from the checkpoint, initialised" for key in sorted(info["missing_keys"])]
        problems += [f"{line}, re-initialised" for line in mismatched]
        problems += [f"{key}: in the checkpoint, not in the model, ignored" for key in sorted(info["unexpected_keys"])]
        if problems:
            message = (
                f"{cls.__name__}.from_pretrained({str(pretrained_model_name_or_path)!r}): the checkpoint does not "
                f"match the model exactly ({len(problems)} tensor(s)); freshly initialised tensors are untrained:"
                "\n  " + "\n  ".join(problems)
            )
            logger.warning(message)
            warnings.warn(message, UserWarning, stacklevel=2)
        return (model, info) if wants_info else model


class VQPreTrainedMixin(StrictLoadingMixin):
    """What the VQ-VAE and VQ-VAE-2 base classes share: images in, strict loading, checkpointable residual blocks,
    and PyTorch's conv initialisation plus the quantizer's own (transformers' N(0, 0.02) is meant for
    transformers)."""

    main_input_name = "pixel_values"
    supports_gradient_checkpointing = True
    _no_split_modules = ["ResidualBlock"]

    def _init_weights(self, module: nn.Module) -> None:
        init_conv_weights(module)
        if isinstance(module, VectorQuantizer):
            module.reset_parameters()


class ComposedPreTrainedMixin(StrictLoadingMixin):
    """What the models made of this package's models share (the generation bundle, the two-stage model, the video
    model): frames in, strict loading, and nothing of their own to initialise, since `initialize_weights` dispatches
    every sub-model to its own `_init_weights` (transformers' composite-model support), which already skips tensors
    loaded from a checkpoint."""

    main_input_name = "pixel_values"
    _no_split_modules = ["ResidualBlock", "PixelSNAILStage"]

    def _init_weights(self, module: nn.Module) -> None:
        pass
