"""VQ-VAE (van den Oord, Vinyals, Kavukcuoglu 2017, "Neural Discrete Representation Learning").

The one-level case of the VQ family's hierarchy (`modeling_vq_hierarchy.VQHierarchyModel`): encoder, 1-wide conv
to `embedding_dim`, `VectorQuantizer`, decoder. Its outputs keep their single-level shapes (`codes` of shape
`(B, h, w)` for images).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.utils import ModelOutput

from .configuration_vqvae import VQVAEConfig
from .modeling_utils import OneLevelOutput
from .modeling_vq_hierarchy import VQHierarchyModel
from .quantizer import VectorQuantizer


@dataclass
class VQVAEOutput(OneLevelOutput, ModelOutput):
    """
    Output of [`VQVAEModel.forward`].

    Args:
        loss (`torch.FloatTensor` of shape `()`):
            `reconstruction_loss + commitment_cost * commitment_loss + codebook_loss`, the paper's objective with an
            MSE likelihood.
        reconstruction_loss (`torch.FloatTensor` of shape `()`): mean squared error in [-1, 1] signal space.
        commitment_loss (`torch.FloatTensor` of shape `()`): `mean((z_e - sg[e])^2)`, before `commitment_cost`.
        codebook_loss (`torch.FloatTensor` of shape `()`): `mean((sg[z_e] - e)^2)`; zero with an EMA codebook.
        reconstruction (`torch.FloatTensor` of shape `(B, C, *spatial)`): the decoded signal in [-1, 1] (not
            clamped); `(B, C, H, W)` for images.
        codes (`torch.LongTensor` of shape `(B, *spatial / f)`): chosen code indices; `(B, H / f, W / f)` for
            images.
        perplexity (`torch.FloatTensor` of shape `()`): perplexity of this batch's code histogram.
        codebook_usage (`torch.FloatTensor` of shape `()`): fraction of codes used over the last `usage_window`
            training steps.
    """

    loss: torch.FloatTensor | None = None
    reconstruction_loss: torch.FloatTensor | None = None
    commitment_loss: torch.FloatTensor | None = None
    codebook_loss: torch.FloatTensor | None = None
    reconstruction: torch.FloatTensor | None = None
    codes: torch.LongTensor | None = None
    perplexity: torch.FloatTensor | None = None
    codebook_usage: torch.FloatTensor | None = None


class VQVAEPreTrainedModel(VQHierarchyModel):
    config_class = VQVAEConfig
    base_model_prefix = "vqvae"
    # Release 0.1.0 named the single level's modules without a level index.
    _legacy_key_mapping = {
        r"^encoder\.": "encoders.0.",
        r"^pre_quantization\.": "pre_quantizations.0.",
        r"^quantizer\.": "quantizers.0.",
    }


class VQVAEModel(VQVAEPreTrainedModel):
    """Encoder -> 1-wide conv to `embedding_dim` -> `VectorQuantizer` -> decoder, over 1-, 2- or 3-D signals.

    Example:

    ```python
    >>> import torch
    >>> from hf_vqvae import VQVAEConfig, VQVAEModel
    >>> model = VQVAEModel(VQVAEConfig(image_size=32, hidden_channels=64, residual_channels=32))
    >>> out = model(torch.rand(2, 3, 32, 32) * 2 - 1)
    >>> out.codes.shape
    torch.Size([2, 8, 8])
    ```
    """

    # The single level's modules under the names they had before the hierarchy became the one implementation.
    @property
    def encoder(self) -> nn.Module:
        return self.encoders[0]

    @property
    def pre_quantization(self) -> nn.Module:
        return self.pre_quantizations[0]

    @property
    def quantizer(self) -> VectorQuantizer:
        return self.quantizers[0]

    def forward(self, pixel_values: torch.FloatTensor, return_dict: bool | None = None) -> VQVAEOutput | tuple:
        """
        Args:
            pixel_values (`torch.FloatTensor` of shape `(B, in_channels, *spatial)`): the signal in [-1, 1]
                (`(B, C, H, W)` images for `spatial_dims=2`); every side must be a multiple of
                `downsample_factor`.

        Returns:
            [`VQVAEOutput`], or a tuple of its fields when `return_dict=False`.
        """
        levels = self._forward_levels(pixel_values)
        output = VQVAEOutput(
            loss=levels.loss,
            reconstruction_loss=levels.reconstruction_loss,
            commitment_loss=levels.commitment_loss,
            codebook_loss=levels.codebook_loss,
            reconstruction=levels.reconstruction,
            codes=levels.codes[0],
            perplexity=levels.perplexity[0],
            codebook_usage=levels.codebook_usage[0],
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    def encode(self, pixel_values: torch.FloatTensor) -> torch.LongTensor:
        """Code map `(B, *spatial / f)` of a signal `(B, in_channels, *spatial)` in [-1, 1]. Never updates the
        codebook."""
        return self.encode_levels(pixel_values)[0]

    def decode(self, codes: torch.LongTensor) -> torch.FloatTensor:
        """The signal `(B, in_channels, *spatial * f)` in [-1, 1] (not clamped) for a code map `(B, *spatial)`."""
        return self.decode_levels([codes])


__all__ = ["VQVAEModel", "VQVAEOutput", "VQVAEPreTrainedModel"]
