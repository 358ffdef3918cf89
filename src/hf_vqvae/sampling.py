"""Ancestral sampling through a hierarchy of priors, then decoding: how a trained VQ-VAE(-2) and its PixelSNAIL
priors make images. Used by `scripts/sample.py`, the training script's sample grids and the generation bundle."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .modeling_pixelsnail import PixelSNAILModel


@torch.no_grad()
def sample_codes(
    priors: Sequence[PixelSNAILModel],
    num_samples: int,
    class_labels: torch.LongTensor | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
) -> list[torch.LongTensor]:
    """Samples one code map per prior, top level first; a prior with a conditioning stack is conditioned on the
    codes the prior before it just sampled (VQ-VAE-2: the bottom prior on the top codes).

    Args:
        priors: top prior first. Only the first may be unconditional.
        num_samples: batch size B.
        class_labels (`torch.LongTensor` of shape `(B,)`, *optional*): passed to class-conditional priors.

    Returns:
        list of `torch.LongTensor` `(B, h_l, w_l)`, one per prior, top first.
    """
    codes: list[torch.LongTensor] = []
    for index, prior in enumerate(priors):
        config = prior.config
        condition = None
        if config.condition_num_embeddings is not None:
            if not codes:
                raise ValueError(f"prior {index} is conditional but has no prior above it to sample its condition")
            condition = codes[-1]
        labels = None
        if config.num_classes is not None:
            if class_labels is None:
                raise ValueError(
                    f"prior {index} is class-conditional: pass class_labels (B,) in [0, {config.num_classes})"
                )
            labels = class_labels.to(prior.device)
        codes.append(
            prior.generate(
                num_samples,
                condition=condition,
                class_labels=labels,
                temperature=temperature,
                top_k=top_k,
                generator=generator,
                use_cache=use_cache,
            )
        )
    return codes


@torch.no_grad()
def decode_codes(vq_model, codes: Sequence[torch.LongTensor]) -> torch.FloatTensor:
    """Pixels `(B, C, H, W)` in [-1, 1] from sampled codes, top first. For a VQ-VAE-2 with fewer priors than levels
    the missing lower levels are left out of the decoder (`keep_levels`)."""
    if getattr(vq_model.config, "model_type", None) != "vqvae2":
        if len(codes) != 1:
            raise ValueError(f"a single-level VQ-VAE decodes one code map, got {len(codes)}")
        return vq_model.decode(codes[0].to(vq_model.device)).clamp(-1, 1)
    num_levels = vq_model.config.num_levels
    if len(codes) > num_levels:
        raise ValueError(f"the VQ-VAE-2 has {num_levels} levels, got {len(codes)} code maps")
    padded = [c.to(vq_model.device) for c in codes] + [None] * (num_levels - len(codes))
    return vq_model.decode(padded).clamp(-1, 1)
