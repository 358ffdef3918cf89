"""What every hf_vqvae `PreTrainedModel` shares beyond transformers' own base class."""

from __future__ import annotations

from torch import nn

from .layers import init_conv_weights
from .quantizer import VectorQuantizer


class StrictLoadingMixin:
    """`from_pretrained` that refuses a checkpoint which does not fit the config.

    transformers re-initialises tensors missing from a checkpoint with only a log line, and reports size
    mismatches in a log table while the exception says "see above". A codebook silently re-drawn at random would
    throw away a trained model, so here any missing, unexpected or mismatched tensor raises one `ValueError` that
    names each tensor and both shapes. `ignore_mismatched_sizes=True` keeps transformers' behaviour for a user who
    re-initialises on purpose (e.g. a new codebook size).
    """

    # Regex -> replacement of tensor names written by earlier releases (transformers' `key_mapping`), so that their
    # folders keep loading after a module is renamed.
    _legacy_key_mapping: dict[str, str] | None = None

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        if cls._legacy_key_mapping and kwargs.get("key_mapping") is None:
            kwargs["key_mapping"] = dict(cls._legacy_key_mapping)
        if kwargs.get("ignore_mismatched_sizes", False):
            return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        wants_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(
            pretrained_model_name_or_path,
            *model_args,
            ignore_mismatched_sizes=True,
            output_loading_info=True,
            **kwargs,
        )
        problems = [
            f"{key}: checkpoint {tuple(saved)} vs model {tuple(wanted)}"
            for key, saved, wanted in sorted(info["mismatched_keys"])
        ]
        problems += [f"{key}: missing from the checkpoint" for key in sorted(info["missing_keys"])]
        problems += [f"{key}: in the checkpoint, not in the model" for key in sorted(info["unexpected_keys"])]
        if problems:
            raise ValueError(
                f"the checkpoint at {pretrained_model_name_or_path!r} does not fit this {cls.__name__} config "
                "(nothing was silently re-initialised):\n  " + "\n  ".join(problems) + "\nCheck the config "
                "overrides passed to from_pretrained, or pass ignore_mismatched_sizes=True to re-initialise these "
                "tensors on purpose."
            )
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
