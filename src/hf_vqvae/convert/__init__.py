"""Converters from other projects' checkpoints to hf_vqvae models. Each reads tensors only (safetensors, or
`torch.load(..., weights_only=True)`), never code."""

from .rosinality import (
    CheckpointError,
    RosinalityVQVAEArgs,
    convert_rosinality_vqvae,
    load_rosinality_checkpoint,
    rosinality_image_processor,
    rosinality_vqvae_args,
    write_rosinality_repo,
)

__all__ = [
    "CheckpointError",
    "RosinalityVQVAEArgs",
    "convert_rosinality_vqvae",
    "load_rosinality_checkpoint",
    "rosinality_image_processor",
    "rosinality_vqvae_args",
    "write_rosinality_repo",
]
