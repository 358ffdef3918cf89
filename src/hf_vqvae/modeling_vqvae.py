"""VQ-VAE (van den Oord, Vinyals, Kavukcuoglu 2017, "Neural Discrete Representation Learning")."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_vqvae import VQVAEConfig
from .layers import Decoder, Encoder
from .modeling_utils import VQPreTrainedMixin
from .quantizer import VectorQuantizer


@dataclass
class VQVAEOutput(ModelOutput):
    """
    Output of [`VQVAEModel.forward`].

    Args:
        loss (`torch.FloatTensor` of shape `()`):
            `reconstruction_loss + commitment_cost * commitment_loss + codebook_loss`, the paper's objective with an
            MSE likelihood.
        reconstruction_loss (`torch.FloatTensor` of shape `()`): mean squared error in [-1, 1] pixel space.
        commitment_loss (`torch.FloatTensor` of shape `()`): `mean((z_e - sg[e])^2)`, before `commitment_cost`.
        codebook_loss (`torch.FloatTensor` of shape `()`): `mean((sg[z_e] - e)^2)`; zero with an EMA codebook.
        reconstruction (`torch.FloatTensor` of shape `(B, C, H, W)`): decoded pixels in [-1, 1] (not clamped).
        codes (`torch.LongTensor` of shape `(B, H / f, W / f)`): chosen code indices.
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


def check_pixel_values(pixel_values: torch.Tensor, in_channels: int, factor: int) -> None:
    """Raises ValueError unless `pixel_values` is (B, in_channels, H, W) with H and W divisible by `factor`."""
    if not isinstance(pixel_values, torch.Tensor):
        raise TypeError(f"pixel_values must be a torch.Tensor, got {type(pixel_values).__name__}")
    if pixel_values.dim() != 4 or pixel_values.shape[1] != in_channels:
        raise ValueError(
            f"pixel_values must have shape (batch, in_channels={in_channels}, height, width), "
            f"got {tuple(pixel_values.shape)}"
        )
    height, width = pixel_values.shape[-2:]
    if height % factor or width % factor:
        raise ValueError(
            f"pixel_values height and width must be multiples of the downsampling factor {factor}, "
            f"got {height}x{width}"
        )


class VQVAEPreTrainedModel(VQPreTrainedMixin, PreTrainedModel):
    config_class = VQVAEConfig
    base_model_prefix = "vqvae"


class VQVAEModel(VQVAEPreTrainedModel):
    """Encoder -> 1x1 conv to `embedding_dim` -> `VectorQuantizer` -> decoder.

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

    def __init__(self, config: VQVAEConfig) -> None:
        super().__init__(config)
        self.encoder = Encoder(
            in_channels=config.in_channels,
            hidden_channels=config.hidden_channels,
            residual_channels=config.residual_channels,
            num_residual_blocks=config.num_residual_blocks,
            downsample_factor=config.downsample_factor,
        )
        self.pre_quantization = nn.Conv2d(config.hidden_channels, config.embedding_dim, kernel_size=1)
        self.quantizer = VectorQuantizer.from_config(config)
        self.decoder = Decoder(
            in_channels=config.embedding_dim,
            out_channels=config.in_channels,
            hidden_channels=config.hidden_channels,
            residual_channels=config.residual_channels,
            num_residual_blocks=config.num_residual_blocks,
            upsample_factor=config.downsample_factor,
        )
        self.post_init()

    def forward(self, pixel_values: torch.FloatTensor, return_dict: bool | None = None) -> VQVAEOutput | tuple:
        """
        Args:
            pixel_values (`torch.FloatTensor` of shape `(B, in_channels, H, W)`): images in [-1, 1]; H and W must
                be multiples of `downsample_factor`.

        Returns:
            [`VQVAEOutput`], or a tuple of its fields when `return_dict=False`.
        """
        check_pixel_values(pixel_values, self.config.in_channels, self.config.downsample_factor)
        quantized = self.quantizer(self.pre_quantization(self.encoder(pixel_values)))
        reconstruction = self.decoder(quantized.quantized)
        reconstruction_loss = F.mse_loss(reconstruction.float(), pixel_values.float())
        output = VQVAEOutput(
            loss=reconstruction_loss + quantized.loss,
            reconstruction_loss=reconstruction_loss,
            commitment_loss=quantized.commitment_loss,
            codebook_loss=quantized.codebook_loss,
            reconstruction=reconstruction,
            codes=quantized.codes,
            perplexity=quantized.perplexity,
            codebook_usage=quantized.usage,
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    @torch.no_grad()
    def encode(self, pixel_values: torch.FloatTensor) -> torch.LongTensor:
        """Code map `(B, H / f, W / f)` of images `(B, in_channels, H, W)` in [-1, 1]. Never updates the codebook."""
        check_pixel_values(pixel_values, self.config.in_channels, self.config.downsample_factor)
        return self.quantizer.encode(self.pre_quantization(self.encoder(pixel_values)))

    @torch.no_grad()
    def decode(self, codes: torch.LongTensor) -> torch.FloatTensor:
        """Pixels `(B, in_channels, h * f, w * f)` in [-1, 1] (not clamped) for a code map `(B, h, w)`."""
        if codes.dim() != 3:
            raise ValueError(f"codes must have shape (batch, height, width), got {tuple(codes.shape)}")
        quantized = self.quantizer.embed(codes).to(self.dtype)
        return self.decoder(quantized)


__all__ = ["VQVAEModel", "VQVAEOutput", "VQVAEPreTrainedModel"]
