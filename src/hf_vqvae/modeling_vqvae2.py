"""VQ-VAE-2 (Razavi, van den Oord, Vinyals 2019, "Generating Diverse High-Fidelity Images with VQ-VAE-2").

A hierarchy of quantised code maps. Levels are indexed **top first** throughout (level 0 is the coarsest map), the
order of `config.downsample_factors`, `model.quantizers` and the `codes` / `perplexity` tuples.

Bottom-up, each level's encoder downsamples the features of the level below (the bottom encoder reads the image).
Top-down, the top features are quantised first; every lower level's quantiser input is its own encoder features
concatenated with a decoding of everything quantised above it, so the lower levels only have to encode what the
upper levels left out. The decoder reads every level's quantised map, the upper ones upsampled to the bottom
resolution by transposed convolutions.

For the default two levels this is the paper's architecture (256x256 images -> 32x32 top and 64x64 bottom maps).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_vqvae2 import VQVAE2Config
from .layers import Decoder, Encoder, num_halvings
from .modeling_utils import VQPreTrainedMixin
from .modeling_vqvae import check_pixel_values
from .quantizer import VectorQuantizer, VectorQuantizerOutput


@dataclass
class VQVAE2Output(ModelOutput):
    """
    Output of [`VQVAE2Model.forward`]. Every tuple has one entry per level, top level first.

    Args:
        loss (`torch.FloatTensor` of shape `()`):
            `reconstruction_loss + sum(level_losses)`: the paper's objective with an MSE likelihood and each level's
            commitment (and, without EMA, codebook) loss.
        reconstruction_loss (`torch.FloatTensor` of shape `()`): mean squared error in [-1, 1] pixel space.
        commitment_loss (`torch.FloatTensor` of shape `()`): sum over levels of `mean((z_e - sg[e])^2)`, before
            `commitment_cost`.
        codebook_loss (`torch.FloatTensor` of shape `()`): sum over levels of `mean((sg[z_e] - e)^2)`; zero with EMA
            codebooks.
        reconstruction (`torch.FloatTensor` of shape `(B, C, H, W)`): decoded pixels in [-1, 1] (not clamped).
        codes (`tuple[torch.LongTensor]`, each of shape `(B, H / f_l, W / f_l)`): chosen code indices per level.
        perplexity (`tuple[torch.FloatTensor]`, each of shape `()`): perplexity of this batch's code histogram per
            level.
        level_losses (`tuple[torch.FloatTensor]`, each of shape `()`): each level's quantiser loss,
            `commitment_cost * commitment + codebook`.
        codebook_usage (`tuple[torch.FloatTensor]`, each of shape `()`): fraction of each level's codebook used over
            the last `usage_window` training steps.
    """

    loss: torch.FloatTensor | None = None
    reconstruction_loss: torch.FloatTensor | None = None
    commitment_loss: torch.FloatTensor | None = None
    codebook_loss: torch.FloatTensor | None = None
    reconstruction: torch.FloatTensor | None = None
    codes: tuple[torch.LongTensor, ...] | None = None
    perplexity: tuple[torch.FloatTensor, ...] | None = None
    level_losses: tuple[torch.FloatTensor, ...] | None = None
    codebook_usage: tuple[torch.FloatTensor, ...] | None = None


def _upsampler(channels: int, factor: int) -> nn.Module:
    """`log2(factor)` 4x4 stride-2 transposed convolutions, `(B, C, h, w) -> (B, C, h * f, w * f)`; the identity
    for `factor == 1`. Linear, as in the paper's reference code: it only has to place a code map on a finer grid
    for the decoder, which does the non-linear work."""
    if factor == 1:
        return nn.Identity()
    return nn.Sequential(
        *(
            nn.ConvTranspose2d(channels, channels, kernel_size=4, stride=2, padding=1)
            for _ in range(num_halvings(factor))
        )
    )


class VQVAE2PreTrainedModel(VQPreTrainedMixin, PreTrainedModel):
    config_class = VQVAE2Config
    base_model_prefix = "vqvae2"


class VQVAE2Model(VQVAE2PreTrainedModel):
    """Hierarchical VQ-VAE: one encoder, pre-quantisation 1x1 conv and `VectorQuantizer` per level, a conditioning
    decoder from each level to the next one down, and one decoder from all levels to pixels.

    Modules, for level `l` (top first) with factor `f_l`, width `D_l` and `L` levels:

    - `encoders[l]`: the image (bottom level) or `encoders[l + 1]`'s features -> `(B, hidden, H / f_l, W / f_l)`.
    - `conditioning_decoders[l]` (`l >= 1`; identity placeholder at 0): level `l - 1`'s quantised map (and its own
      conditioning, for `l >= 2`) -> `(B, D_l, H / f_l, W / f_l)`.
    - `pre_quantizations[l]`: 1x1 conv of the encoder features (concatenated with the conditioning) to `D_l`.
    - `quantizers[l]`: `VectorQuantizer` with `K_l` codes of size `D_l`.
    - `upsamplers[l]`: transposed convs from `f_l` to the bottom factor (identity for the bottom level).
    - `decoder`: concatenation of all upsampled quantised maps -> pixels.

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

    def __init__(self, config: VQVAE2Config) -> None:
        super().__init__(config)
        factors = config.downsample_factors
        dims = config.level_embedding_dims
        num_levels = config.num_levels
        bottom = num_levels - 1
        stack = {
            "hidden_channels": config.hidden_channels,
            "residual_channels": config.residual_channels,
            "num_residual_blocks": config.num_residual_blocks,
        }

        self.encoders = nn.ModuleList(
            Encoder(
                in_channels=config.in_channels if level == bottom else config.hidden_channels,
                downsample_factor=factors[level] if level == bottom else factors[level] // factors[level + 1],
                **stack,
            )
            for level in range(num_levels)
        )
        # The level above feeds its quantised map and, from the third level down, the conditioning it received
        # itself: each level is conditioned on everything above it, not only on its immediate parent.
        self.conditioning_decoders = nn.ModuleList(
            nn.Identity()
            if level == 0
            else Decoder(
                in_channels=dims[level - 1] * (2 if level >= 2 else 1),
                out_channels=dims[level],
                upsample_factor=factors[level - 1] // factors[level],
                **stack,
            )
            for level in range(num_levels)
        )
        self.pre_quantizations = nn.ModuleList(
            nn.Conv2d(config.hidden_channels + (dims[level] if level > 0 else 0), dims[level], kernel_size=1)
            for level in range(num_levels)
        )
        self.quantizers = nn.ModuleList(
            VectorQuantizer.from_config(config, num_embeddings=num_embeddings, embedding_dim=dim)
            for num_embeddings, dim in zip(config.level_num_embeddings, dims)
        )
        self.upsamplers = nn.ModuleList(
            _upsampler(dims[level], factors[level] // factors[bottom]) for level in range(num_levels)
        )
        self.decoder = Decoder(
            in_channels=sum(dims), out_channels=config.in_channels, upsample_factor=factors[bottom], **stack
        )
        self.post_init()

    @property
    def num_levels(self) -> int:
        return self.config.num_levels

    # ------------------------------------------------------------------------------------------------------------
    # forward

    def forward(self, pixel_values: torch.FloatTensor, return_dict: bool | None = None) -> VQVAE2Output | tuple:
        """
        Args:
            pixel_values (`torch.FloatTensor` of shape `(B, in_channels, H, W)`): images in [-1, 1]; H and W must
                be multiples of the top level's downsample factor.

        Returns:
            [`VQVAE2Output`], or a tuple of its fields when `return_dict=False`. Each level's codebook state is
            updated when the model is training.
        """
        check_pixel_values(pixel_values, self.config.in_channels, self.config.downsample_factors[0])
        levels = self._quantize_top_down(pixel_values, lambda level, z: self.quantizers[level](z))
        reconstruction = self._decode_quantized([level.quantized for level in levels])
        reconstruction_loss = F.mse_loss(reconstruction.float(), pixel_values.float())
        level_losses = tuple(level.loss for level in levels)
        output = VQVAE2Output(
            loss=reconstruction_loss + sum(level_losses),
            reconstruction_loss=reconstruction_loss,
            commitment_loss=sum(level.commitment_loss for level in levels),
            codebook_loss=sum(level.codebook_loss for level in levels),
            reconstruction=reconstruction,
            codes=tuple(level.codes for level in levels),
            perplexity=tuple(level.perplexity for level in levels),
            level_losses=level_losses,
            codebook_usage=tuple(level.usage for level in levels),
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    def _quantize_top_down(
        self,
        pixel_values: torch.Tensor,
        quantize: Callable[[int, torch.Tensor], VectorQuantizerOutput],
    ) -> list[VectorQuantizerOutput]:
        """Encodes bottom-up, then quantises top-down with `quantize(level, z)`; returns one output per level, top
        first. The quantised maps passed down are the straight-through ones, so the lower levels' losses also train
        the upper encoders."""
        features: list[torch.Tensor] = [pixel_values] * self.num_levels
        hidden_states = pixel_values
        for level in reversed(range(self.num_levels)):
            hidden_states = self.encoders[level](hidden_states)
            features[level] = hidden_states

        outputs: list[VectorQuantizerOutput] = []
        conditioning = None
        for level in range(self.num_levels):
            hidden_states = features[level]
            if level > 0:
                above = outputs[-1].quantized.to(hidden_states.dtype)
                if conditioning is not None:
                    above = torch.cat([above, conditioning], dim=1)
                conditioning = self.conditioning_decoders[level](above)
                hidden_states = torch.cat([hidden_states, conditioning], dim=1)
            outputs.append(quantize(level, self.pre_quantizations[level](hidden_states)))
        return outputs

    def _decode_quantized(self, quantized: Sequence[torch.Tensor]) -> torch.Tensor:
        """Pixels from one quantised map `(B, D_l, H / f_l, W / f_l)` per level, top first."""
        dtype = self.decoder.conv_in.weight.dtype
        upsampled = [upsample(q.to(dtype)) for upsample, q in zip(self.upsamplers, quantized)]
        return self.decoder(torch.cat(upsampled, dim=1))

    # ------------------------------------------------------------------------------------------------------------
    # codes in, codes out

    @torch.no_grad()
    def encode(self, pixel_values: torch.FloatTensor) -> tuple[torch.LongTensor, ...]:
        """Code maps of images `(B, in_channels, H, W)` in [-1, 1]: a tuple with one `(B, H / f_l, W / f_l)`
        LongTensor per level, top first. Never updates the codebooks, even in training mode."""
        check_pixel_values(pixel_values, self.config.in_channels, self.config.downsample_factors[0])
        levels = self._quantize_top_down(pixel_values, self._lookup)
        return tuple(level.codes for level in levels)

    def _lookup(self, level: int, z: torch.Tensor) -> VectorQuantizerOutput:
        """Nearest codes of `z` (B, D, h, w) and their vectors, without touching the quantiser's state."""
        codes = self.quantizers[level].encode(z)
        return VectorQuantizerOutput(quantized=self.quantizers[level].embed(codes), codes=codes)

    @torch.no_grad()
    def decode(
        self,
        codes: Sequence[torch.LongTensor | None],
        keep_levels: Iterable[int] | None = None,
    ) -> torch.FloatTensor:
        """Pixels `(B, in_channels, H, W)` in [-1, 1] (not clamped) from one code map per level.

        Args:
            codes (sequence of `torch.LongTensor` of shape `(B, H / f_l, W / f_l)`, top first): as returned by
                [`~VQVAE2Model.encode`] or `forward(...).codes`. An entry may be `None`: that level is left out.
            keep_levels (iterable of `int`, *optional*): indices into `codes` (0 is the top level, -1 the bottom)
                of the levels to decode with. The quantised maps of all other levels are replaced by zeros before
                the decoder, which shows what the kept levels carry on their own. Defaults to every level given.
        """
        if isinstance(codes, torch.Tensor) or not isinstance(codes, (list, tuple)):
            raise TypeError(
                f"codes must be a tuple or list with one code map per level (top first), got {type(codes).__name__}"
            )
        if len(codes) != self.num_levels:
            raise ValueError(
                f"codes must hold one code map per level ({self.num_levels}, top first), got {len(codes)} entries"
            )
        keep = set(range(self.num_levels)) if keep_levels is None else {self._level_index(i) for i in keep_levels}
        keep = {level for level in keep if codes[level] is not None}
        if not keep:
            raise ValueError("decode needs at least one level to decode with: every kept level's codes are None")

        # The size of the image is fixed by any one given level; every given level must agree with it.
        factors = self.config.downsample_factors
        batch, image_height, image_width = None, None, None
        for level, level_codes in enumerate(codes):
            if level_codes is None:
                continue
            if not isinstance(level_codes, torch.Tensor) or level_codes.dim() != 3:
                shape = tuple(level_codes.shape) if isinstance(level_codes, torch.Tensor) else type(level_codes)
                raise ValueError(f"codes[{level}] must have shape (batch, height, width), got {shape}")
            size = (level_codes.shape[0], level_codes.shape[1] * factors[level], level_codes.shape[2] * factors[level])
            if batch is None:
                batch, image_height, image_width = size
            elif size != (batch, image_height, image_width):
                raise ValueError(
                    f"codes[{level}] of shape {tuple(level_codes.shape)} does not match the other levels: with "
                    f"downsample factors {factors} (top first) they imply batch {batch} and a "
                    f"{image_height}x{image_width} image"
                )

        device = self.decoder.conv_in.weight.device
        quantized = []
        for level, (level_codes, dim) in enumerate(zip(codes, self.config.level_embedding_dims)):
            if level in keep:
                quantized.append(self.quantizers[level].embed(level_codes.to(device)))
            else:
                shape = (batch, dim, image_height // factors[level], image_width // factors[level])
                quantized.append(torch.zeros(shape, device=device))
        return self._decode_quantized(quantized)

    @torch.no_grad()
    def decode_level(self, codes: Sequence[torch.LongTensor | None], level: int) -> torch.FloatTensor:
        """`decode(codes, keep_levels=[level])`: the image as seen by level `level` alone (0 is the top level, -1
        the bottom), every other level's quantised map zeroed."""
        return self.decode(codes, keep_levels=[level])

    def _level_index(self, level: int) -> int:
        if isinstance(level, bool) or not isinstance(level, int) or not -self.num_levels <= level < self.num_levels:
            raise ValueError(
                f"level indices must be integers in [-{self.num_levels}, {self.num_levels}) (0 is the top level), "
                f"got {level!r}"
            )
        return level % self.num_levels


__all__ = ["VQVAE2Model", "VQVAE2Output", "VQVAE2PreTrainedModel"]
