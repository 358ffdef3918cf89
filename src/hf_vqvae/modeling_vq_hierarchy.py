"""The one implementation of the VQ family: a hierarchy of quantised code maps over 1-, 2- or 3-D signals.

A VQ-VAE (van den Oord et al. 2017) is the one-level case; a VQ-VAE-2 (Razavi et al. 2019) has two or more levels.
Both public models subclass `VQHierarchyModel` and differ only in their config and in how `forward`, `encode` and
`decode` package a single level. Code that works on any VQ model uses the level-list API here
(`encode_levels`, `decode_levels`, the outputs' `level_*` properties and the configs' `level_*` properties) and
never asks which kind of model it has.

Levels are indexed **top first** throughout (level 0 is the coarsest map). Bottom-up, each level's encoder
downsamples the features of the level below (the bottom encoder reads the signal). Top-down, the top features are
quantised first; every lower level's quantiser input is its own encoder features concatenated with a decoding of
everything quantised above it, so the lower levels only have to encode what the upper levels left out. The decoder
reads every level's quantised map, the upper ones upsampled to the bottom resolution by transposed convolutions.

The input is a signal in [-1, 1] or, when the config sets `input_num_embeddings` (K), a code map: stage 2 of the
VQ-VAE paper's two-stage model reads stage 1's codes. A code map is embedded on the way in (`input_embedding`,
zero-padded at the end of each axis to a multiple of the top factor) and the decoder outputs logits over the K codes
at each position, trained with cross-entropy; outputs are cropped back to the input's sides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .layers import Decoder, Encoder, conv, upsampler
from .modeling_utils import VQPreTrainedMixin, is_traced
from .quantizer import VectorQuantizer, VectorQuantizerOutput

_SIGNAL_AXES = {1: "length", 2: "height, width", 3: "frames, height, width"}


@dataclass
class VQVAE2Output(ModelOutput):
    """
    Output of a VQ hierarchy's forward pass ([`VQVAE2Model.forward`]). Every tuple has one entry per level, top
    level first.

    Args:
        loss (`torch.FloatTensor` of shape `()`):
            `reconstruction_loss + sum(level_losses)`: the paper's objective with an MSE likelihood and each level's
            commitment (and, without EMA, codebook) loss.
        reconstruction_loss (`torch.FloatTensor` of shape `()`): mean squared error in [-1, 1] signal space.
        commitment_loss (`torch.FloatTensor` of shape `()`): sum over levels of `mean((z_e - sg[e])^2)`, before
            `commitment_cost`.
        codebook_loss (`torch.FloatTensor` of shape `()`): sum over levels of `mean((sg[z_e] - e)^2)`; zero with EMA
            codebooks.
        reconstruction (`torch.FloatTensor` of shape `(B, C, *spatial)`): the decoded signal in [-1, 1] (not
            clamped).
        codes (`tuple[torch.LongTensor]`, each of shape `(B, *spatial / f_l)`): chosen code indices per level.
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

    # The level-list view that every VQ output shares (a one-level output gives 1-tuples).
    @property
    def level_codes(self) -> tuple[torch.LongTensor, ...]:
        return self.codes

    @property
    def level_perplexity(self) -> tuple[torch.FloatTensor, ...]:
        return self.perplexity

    @property
    def level_codebook_usage(self) -> tuple[torch.FloatTensor, ...]:
        return self.codebook_usage


def check_code_map(codes: torch.Tensor, num_embeddings: int, spatial_dims: int) -> None:
    """Raises unless `codes` is an integer tensor `(B, *spatial)` with `spatial_dims` sides and values in
    `[0, num_embeddings)`: the input of a model whose config sets `input_num_embeddings`. The value range needs the
    tensor's data, so it is checked in eager mode only (not while torch.compile or torch.export trace)."""
    if not isinstance(codes, torch.Tensor):
        raise TypeError(f"this model's input is a code map: pass a torch.LongTensor, got {type(codes).__name__}")
    if codes.dtype.is_floating_point or codes.dtype.is_complex or codes.dtype == torch.bool:
        raise ValueError(
            f"this model's input is a code map (config.input_num_embeddings={num_embeddings}): pass integer codes of "
            f"shape (batch, {_SIGNAL_AXES[spatial_dims]}), got a {codes.dtype} tensor"
        )
    if codes.dim() != 1 + spatial_dims:
        raise ValueError(
            f"the input code map must have shape (batch, {_SIGNAL_AXES[spatial_dims]}), got {tuple(codes.shape)}"
        )
    if not is_traced() and codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= num_embeddings):
        raise ValueError(
            f"the input code map must hold codes in [0, {num_embeddings}), got values in "
            f"[{int(codes.min())}, {int(codes.max())}]"
        )


def check_signal(signal: torch.Tensor, in_channels: int, spatial_dims: int, factor: int) -> None:
    """Raises unless `signal` is `(B, in_channels, *spatial)` with `spatial_dims` sides, each divisible by
    `factor`."""
    if not isinstance(signal, torch.Tensor):
        raise TypeError(f"pixel_values must be a torch.Tensor, got {type(signal).__name__}")
    if signal.dim() != 2 + spatial_dims or signal.shape[1] != in_channels:
        raise ValueError(
            f"pixel_values must have shape (batch, in_channels={in_channels}, {_SIGNAL_AXES[spatial_dims]}), "
            f"got {tuple(signal.shape)}"
        )
    sides = tuple(signal.shape[2:])
    if any(side % factor for side in sides):
        raise ValueError(
            f"pixel_values sides ({_SIGNAL_AXES[spatial_dims]}) must be multiples of the downsampling factor "
            f"{factor}, got {'x'.join(map(str, sides))}"
        )


class VQHierarchyModel(VQPreTrainedMixin, PreTrainedModel):
    """Hierarchical VQ-VAE over 1-, 2- or 3-D signals: one encoder, pre-quantisation 1-wide conv and
    `VectorQuantizer` per level, a conditioning decoder from each level to the next one down, and one decoder from
    all levels to the signal. Subclasses set `config_class`; the config gives the `level_*` lists.

    Modules, for level `l` (top first) with factor `f_l`, width `D_l` and `L` levels:

    - `encoders[l]`: the signal (bottom level) or `encoders[l + 1]`'s features -> `(B, hidden, *spatial / f_l)`.
    - `conditioning_decoders[l]` (`l >= 1`; identity placeholder at 0): level `l - 1`'s quantised map (and its own
      conditioning, for `l >= 2`) -> `(B, D_l, *spatial / f_l)`.
    - `pre_quantizations[l]`: 1-wide conv of the encoder features (concatenated with the conditioning) to `D_l`.
    - `quantizers[l]`: `VectorQuantizer` with `K_l` codes of size `D_l`.
    - `upsamplers[l]`: transposed convs from `f_l` to the bottom factor (identity for the bottom level).
    - `decoder`: concatenation of all upsampled quantised maps -> signal.
    """

    def __init__(self, config) -> None:
        super().__init__(config)
        factors = config.level_downsample_factors
        dims = config.level_embedding_dims
        num_levels = config.num_levels
        bottom = num_levels - 1
        spatial_dims = config.spatial_dims
        stack = {
            "hidden_channels": config.hidden_channels,
            "residual_channels": config.residual_channels,
            "num_residual_blocks": config.num_residual_blocks,
            "spatial_dims": spatial_dims,
        }

        upper_downsample_channels = config.upper_encoder_downsample_channels
        # A code-map input (stage 2 of the two-stage model) is embedded to `in_channels` before the bottom encoder.
        if self.input_num_embeddings is not None:
            self.input_embedding = nn.Embedding(self.input_num_embeddings, config.in_channels)
        self.encoders = nn.ModuleList(
            Encoder(
                in_channels=config.in_channels if level == bottom else config.hidden_channels,
                downsample_factor=factors[level] if level == bottom else factors[level] // factors[level + 1],
                downsample_channels=None if level == bottom else upper_downsample_channels,
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
            conv(spatial_dims, config.hidden_channels + (dims[level] if level > 0 else 0), dims[level], kernel_size=1)
            for level in range(num_levels)
        )
        self.quantizers = nn.ModuleList(
            VectorQuantizer.from_config(config, num_embeddings=num_embeddings, embedding_dim=dim)
            for num_embeddings, dim in zip(config.level_num_embeddings, dims)
        )
        self.upsamplers = nn.ModuleList(
            upsampler(dims[level], factors[level] // factors[bottom], spatial_dims) for level in range(num_levels)
        )
        # For a code-map input the decoder gives logits over its K codes at each position.
        out_channels = config.in_channels if self.input_num_embeddings is None else self.input_num_embeddings
        self.decoder = Decoder(
            in_channels=sum(dims), out_channels=out_channels, upsample_factor=factors[bottom], **stack
        )
        self.post_init()

    @property
    def num_levels(self) -> int:
        return self.config.num_levels

    @property
    def input_num_embeddings(self) -> int | None:
        """K of the input code maps, or None when the input is a signal in [-1, 1] (the config's field)."""
        return self.config.input_num_embeddings

    def get_input_embeddings(self) -> nn.Embedding:
        """The code embedding `(input_num_embeddings, in_channels)` of a code-map input (stage 2 of the two-stage
        model), which `enable_input_require_grads` (PEFT) hooks. A signal input has none: it is read by a convolution,
        and `NotImplementedError` is what transformers' tooling expects then."""
        if self.input_num_embeddings is None:
            raise NotImplementedError(
                f"{type(self).__name__} reads signals through a convolution and has no input embedding; only a model "
                "whose config sets `input_num_embeddings` (a code-map input) has one"
            )
        return self.input_embedding

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.get_input_embeddings()  # the same clear error for a signal input
        self.input_embedding = value

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, nn.Embedding):  # the input code embedding, which only code-input models have
            init.normal_(module.weight)

    def _check_signal(self, pixel_values: torch.Tensor) -> None:
        config = self.config
        check_signal(pixel_values, config.in_channels, config.spatial_dims, config.level_downsample_factors[0])

    def _encoder_input(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """What the bottom encoder reads: the checked signal itself, or the embedding `(B, in_channels, *spatial)` of
        a code map, zero-padded at the end of each axis to a multiple of the top factor."""
        if self.input_num_embeddings is None:
            self._check_signal(pixel_values)
            return pixel_values
        check_code_map(pixel_values, self.input_num_embeddings, self.config.spatial_dims)
        factor = self.config.level_downsample_factors[0]
        padding: list[int] = []
        for side in reversed(pixel_values.shape[1:]):
            padding += [0, -side % factor]
        return F.pad(self.input_embedding(pixel_values).movedim(-1, 1), padding)

    @staticmethod
    def _crop(output: torch.Tensor, sides: Sequence[int]) -> torch.Tensor:
        """`output` `(B, C, *spatial)` cut to `sides` (undoes `_encoder_input`'s padding; a no-op without it)."""
        return output[(slice(None), slice(None), *(slice(0, side) for side in sides))].contiguous()

    # ------------------------------------------------------------------------------------------------------------
    # signal in, every level out

    def _forward_levels(self, pixel_values: torch.FloatTensor) -> VQVAE2Output:
        """The whole forward pass, one entry per level. Each level's codebook state is updated in training mode."""
        levels = self._quantize_top_down(self._encoder_input(pixel_values), lambda level, z: self.quantizers[level](z))
        reconstruction = self._decode_quantized([level.quantized for level in levels])
        if self.input_num_embeddings is None:
            reconstruction_loss = F.mse_loss(reconstruction.float(), pixel_values.float())
        else:
            # The categorical likelihood of the input codes: cross-entropy in nats per position.
            reconstruction = self._crop(reconstruction, pixel_values.shape[1:])
            reconstruction_loss = F.cross_entropy(reconstruction.float(), pixel_values)
        level_losses = tuple(level.loss for level in levels)
        return VQVAE2Output(
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
        """The signal from one quantised map `(B, D_l, *spatial / f_l)` per level, top first."""
        dtype = self.decoder.conv_in.weight.dtype
        upsampled = [upsample(q.to(dtype)) for upsample, q in zip(self.upsamplers, quantized)]
        return self.decoder(torch.cat(upsampled, dim=1))

    # ------------------------------------------------------------------------------------------------------------
    # codes in, codes out

    @torch.no_grad()
    def encode_levels(self, pixel_values: torch.FloatTensor) -> tuple[torch.LongTensor, ...]:
        """Code maps of a signal `(B, in_channels, *spatial)` in [-1, 1]: one `(B, *spatial / f_l)` LongTensor per
        level, top first. Never updates the codebooks, even in training mode."""
        levels = self._quantize_top_down(self._encoder_input(pixel_values), self._lookup)
        return tuple(level.codes for level in levels)

    def _lookup(self, level: int, z: torch.Tensor) -> VectorQuantizerOutput:
        """Nearest codes of `z` (B, D, *spatial) and their vectors, without touching the quantiser's state."""
        codes = self.quantizers[level].encode(z)
        return VectorQuantizerOutput(quantized=self.quantizers[level].embed(codes), codes=codes)

    @torch.no_grad()
    def decode_levels(
        self,
        codes: Sequence[torch.LongTensor | None],
        keep_levels: Iterable[int] | None = None,
    ) -> torch.FloatTensor:
        """The signal `(B, in_channels, *spatial)` in [-1, 1] (not clamped) from one code map per level.

        Args:
            codes (sequence of `torch.LongTensor` of shape `(B, *spatial / f_l)`, top first): as returned by
                [`~VQHierarchyModel.encode_levels`]. An entry may be `None`: that level is left out.
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

        # The size of the signal is fixed by any one given level; every given level must agree with it.
        factors = self.config.level_downsample_factors
        spatial_dims = self.config.spatial_dims
        signal_shape = None
        for level, level_codes in enumerate(codes):
            if level_codes is None:
                continue
            if not isinstance(level_codes, torch.Tensor) or level_codes.dim() != 1 + spatial_dims:
                shape = tuple(level_codes.shape) if isinstance(level_codes, torch.Tensor) else type(level_codes)
                raise ValueError(f"codes[{level}] must have shape (batch, {_SIGNAL_AXES[spatial_dims]}), got {shape}")
            shape = (level_codes.shape[0], *(side * factors[level] for side in level_codes.shape[1:]))
            if signal_shape is None:
                signal_shape = shape
            elif shape != signal_shape:
                raise ValueError(
                    f"codes[{level}] of shape {tuple(level_codes.shape)} does not match the other levels: with "
                    f"downsample factors {list(factors)} (top first) they imply batch {signal_shape[0]} and a "
                    f"{'x'.join(map(str, signal_shape[1:]))} signal"
                )

        device = self.decoder.conv_in.weight.device
        batch, sides = signal_shape[0], signal_shape[1:]
        quantized = []
        for level, (level_codes, dim) in enumerate(zip(codes, self.config.level_embedding_dims)):
            if level in keep:
                quantized.append(self.quantizers[level].embed(level_codes.to(device)))
            else:
                shape = (batch, dim, *(side // factors[level] for side in sides))
                quantized.append(torch.zeros(shape, device=device))
        output = self._decode_quantized(quantized)
        if self.input_num_embeddings is not None:
            # Logits over the input codes, without the padding that `image_size`-sided inputs were given.
            excess = -self.config.image_size % factors[0]
            output = self._crop(output, [side - excess for side in sides])
        return output

    def _level_index(self, level: int) -> int:
        if isinstance(level, bool) or not isinstance(level, int) or not -self.num_levels <= level < self.num_levels:
            raise ValueError(
                f"level indices must be integers in [-{self.num_levels}, {self.num_levels}) (0 is the top level), "
                f"got {level!r}"
            )
        return level % self.num_levels


__all__ = ["VQHierarchyModel", "VQVAE2Output", "check_code_map", "check_signal"]
