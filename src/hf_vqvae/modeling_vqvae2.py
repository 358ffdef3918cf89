"""VQ-VAE-2 (Razavi, van den Oord, Vinyals 2019, "Generating Diverse High-Fidelity Images with VQ-VAE-2").

A hierarchy of quantised code maps, top level first; the implementation is the VQ family's one
(`modeling_vq_hierarchy.VQHierarchyModel`). For the default two levels this is the paper's architecture
(256x256 images -> 32x32 top and 64x64 bottom maps).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from .configuration_vqvae2 import VQVAE2Config
from .modeling_vq_hierarchy import VQHierarchyModel, VQVAE2Output


class VQVAE2PreTrainedModel(VQHierarchyModel):
    config_class = VQVAE2Config
    base_model_prefix = "vqvae2"


class VQVAE2Model(VQVAE2PreTrainedModel):
    """Hierarchical VQ-VAE: see [`VQHierarchyModel`] for its modules. Outputs, codes and `decode`'s input are
    tuples with one entry per level, top first.

    Example:

    ```python
    >>> import torch
    >>> from hf_vqvae import VQVAE2Config, VQVAE2Model
    >>> model = VQVAE2Model(VQVAE2Config(image_size=64, hidden_channels=32, residual_channels=16))
    >>> out = model(torch.rand(2, 3, 64, 64) * 2 - 1)
    >>> [tuple(c.shape) for c in out.codes]
    [(2, 8, 8), (2, 16, 16)]
    >>> model.decode(model.encode(torch.rand(2, 3, 64, 64) * 2 - 1)).shape
    torch.Size([2, 3, 64, 64])
    ```
    """

    def forward(self, pixel_values: torch.FloatTensor, return_dict: bool | None = None) -> VQVAE2Output | tuple:
        """
        Args:
            pixel_values (`torch.FloatTensor` of shape `(B, in_channels, *spatial)`): the signal in [-1, 1]
                (`(B, C, H, W)` images for `spatial_dims=2`); every side must be a multiple of the top level's
                downsample factor.

        Returns:
            [`VQVAE2Output`], or a tuple of its fields when `return_dict=False`. Each level's codebook state is
            updated when the model is training.
        """
        output = self._forward_levels(pixel_values)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    def encode(self, pixel_values: torch.FloatTensor) -> tuple[torch.LongTensor, ...]:
        """Code maps of `(B, in_channels, *spatial)` in [-1, 1]: one `(B, *spatial / f_l)` LongTensor per level,
        top first. Never updates the codebooks, even in training mode."""
        return self.encode_levels(pixel_values)

    def decode(
        self, codes: Sequence[torch.LongTensor | None], keep_levels: Iterable[int] | None = None
    ) -> torch.FloatTensor:
        """The signal in [-1, 1] (not clamped) from one code map per level, top first; see
        [`VQHierarchyModel.decode_levels`]."""
        return self.decode_levels(codes, keep_levels)

    def decode_level(self, codes: Sequence[torch.LongTensor | None], level: int) -> torch.FloatTensor:
        """`decode(codes, keep_levels=[level])`: the image as seen by level `level` alone (0 is the top level, -1
        the bottom), every other level's quantised map zeroed."""
        return self.decode_levels(codes, keep_levels=[level])


__all__ = ["VQVAE2Model", "VQVAE2Output", "VQVAE2PreTrainedModel"]
