"""PixelSNAIL prior over VQ-VAE codes (Chen, Mishra, Rohaninejad, Abbeel 2017; Razavi et al. 2019), with cached
incremental sampling.

The prior models p(codes) = prod_p p(code_p | codes before p) in raster order. Every layer is causal *per layer*:
its output at position p depends only on its input at positions at or before p (the first layer: strictly before
p). That is what makes sampling incremental and exact: at raster step p each layer computes its output at p alone,
from a small cache of its past inputs (convolutions) or of past keys and values (attention), and the result equals
running the whole network on the whole map and reading position p.

Layers:

* `CausalConv2d`: the sum of a down-shifted convolution over the `k // 2` rows above (k columns, centred) and a
  right-shifted convolution over the current row (the `k // 2` positions to the left, plus the current one after the
  first layer). Implemented as one convolution with explicit zero padding.
* `GatedResidualBlock`: PixelSNAIL's gated residual block, `h + a * sigmoid(b)` with `(a, b)` from two causal
  convolutions; the condition (top codes and/or class) enters as a bias of the gates.
* `CausalSelfAttention`: multi-head attention of each position over all positions strictly before it. As in
  PixelSNAIL, queries read the residual stream and a positional encoding; keys and values also read the code
  embeddings, so a position must not attend to itself.

Receptive field. Computing each layer at p at step p means no layer may read a position after p, so the
convolutions see the row just above only up to `k // 2` columns to the right of p, row `r - d` up to about
`d * (k // 2)` columns (a cone widening upwards), and everything to the left. (The vertical stack of gated PixelCNN
sees further to the upper right, but its value at a position depends on inputs to the right of it in the same row,
so it can only be cached a whole row at a time.) Attention closes the gap: with it every position sees the whole
past. Without it the prior is a gated-PixelCNN-style convolutional prior (the VQ-VAE paper's), and for the VQ-VAE-2
bottom prior the top codes, which the conditioning stack reads without a causal mask, supply the global context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_pixelsnail import PixelSNAILConfig
from .layers import ResidualStack, init_conv_weights
from .modeling_utils import StrictLoadingMixin


@dataclass
class PixelSNAILOutput(ModelOutput):
    """
    Output of [`PixelSNAILModel.forward`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, returned when `labels` are given):
            mean negative log-likelihood of the labels, in nats per code.
        logits (`torch.FloatTensor` of shape `(B, K, h, w)`):
            unnormalised log-probabilities of the code at each position given the codes before it in raster order.
        bits_per_code (`torch.FloatTensor` of shape `()`, returned when `labels` are given): `loss / ln 2`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    bits_per_code: torch.FloatTensor | None = None


def _upsample_nearest(features: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Nearest-neighbour upsampling of `(B, C, h', w')` to `(B, C, height, width)` by integer factors; a `1 x 1`
    map is returned as is and broadcasts. Copying values (rather than interpolating) keeps the map equal to reading
    `features[..., row // fh, col // fw]`, which is what the cached step does."""
    if features.shape[-2:] == (1, 1):
        return features
    factor_h, factor_w = height // features.shape[-2], width // features.shape[-1]
    return features.repeat_interleave(factor_h, dim=2).repeat_interleave(factor_w, dim=3)


def _positional_encoding(height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """PixelSNAIL's fixed "background": normalised row and column coordinates, `(2, height, width)` in
    [-0.5, 0.5)."""
    rows = (torch.arange(height, device=device, dtype=dtype) - height / 2) / height
    cols = (torch.arange(width, device=device, dtype=dtype) - width / 2) / width
    return torch.stack(torch.meshgrid(rows, cols, indexing="ij"))


class CausalConvCache:
    """The past inputs one `CausalConv2d` needs at sampling time: a rolling window of the last `k // 2 + 1` rows of
    its input, zero-padded by `k // 2` columns on both sides, and its kernel flattened for a one-position product.

    The buffer is laid out `(B, width + 2 * (k // 2), k // 2 + 1, C_in)`, so the window of one output position,
    `buffer[:, col : col + k]`, is contiguous per sample and flattens without a copy. Buffer row `i` holds image row
    `self.row - k // 2 + i`; rows before the map are zeros, exactly as the padding of the full convolution. Cost of
    one position: one `(B, k * (k // 2 + 1) * C_in) x (.., C_out)` matmul.
    """

    def __init__(self, conv: CausalConv2d, batch: int, width: int) -> None:
        weight = conv.kernel()  # (C_out, C_in, rows, k)
        self.half = conv.half
        self.kernel_width = conv.kernel_size
        self.flat_kernel = weight.permute(0, 3, 2, 1).reshape(weight.shape[0], -1)  # (C_out, k * rows * C_in)
        self.bias = conv.bias
        self.buffer = weight.new_zeros(batch, width + 2 * self.half, self.half + 1, weight.shape[1])
        self.row = 0

    def advance(self, row: int) -> None:
        """Moves the window down so that its last row is image row `row` (new rows start as zeros)."""
        if row > self.row:
            shift = min(row - self.row, self.buffer.shape[2])
            self.buffer = torch.roll(self.buffer, -shift, dims=2)
            self.buffer[:, :, -shift:] = 0
            self.row = row

    def write(self, row: int, col: int, value: torch.Tensor) -> None:
        """Stores the layer's input `(B, C_in)` at `(row, col)`."""
        self.advance(row)
        self.buffer[:, col + self.half, -1] = value

    def output(self, row: int, col: int) -> torch.Tensor:
        """The convolution's output `(B, C_out)` at `(row, col)`, from the inputs stored so far."""
        self.advance(row)
        window = self.buffer[:, col : col + self.kernel_width]
        return F.linear(window.reshape(window.shape[0], -1), self.flat_kernel, self.bias)


class CausalConv2d(nn.Module):
    """Causal 2-D convolution: output at `(r, c)` reads the input at rows `r - k//2 .. r - 1`, columns
    `c - k//2 .. c + k//2` (`above`, a down-shifted convolution) and at row `r`, columns `c - k//2 .. c - 1`, plus
    column `c` when `include_center` (`row`, a right-shifted convolution).

    `(B, in_channels, H, W) -> (B, out_channels, H, W)`. The two parts are separate parameters (no masked
    weights) and are run as one convolution over an explicitly zero-padded input. With `include_center=False` the
    output at p depends only on inputs strictly before p in raster order (the first layer); with it, at or before.
    Every position read lies at or before p, which is what lets `CausalConvCache` compute one position at a time.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, include_center: bool) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.half = kernel_size // 2
        self.row_width = self.half + int(include_center)
        self.above = nn.Conv2d(in_channels, out_channels, kernel_size=(self.half, kernel_size))
        self.row = nn.Conv2d(in_channels, out_channels, kernel_size=(1, self.row_width), bias=False)

    @property
    def bias(self) -> torch.Tensor:
        return self.above.bias

    def kernel(self) -> torch.Tensor:
        """The combined kernel `(out, in, k // 2 + 1, k)`: `above` on top, `row` left-aligned in the last row and
        zeros to its right (the current row's future)."""
        row = F.pad(self.row.weight, (0, self.kernel_size - self.row_width))
        return torch.cat([self.above.weight, row], dim=2)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        padded = F.pad(hidden_states, (self.half, self.half, self.half, 0))
        return F.conv2d(padded, self.kernel(), self.bias)

    def init_cache(self, batch: int, width: int) -> CausalConvCache:
        return CausalConvCache(self, batch, width)


class GatedResidualBlock(nn.Module):
    """PixelSNAIL's gated residual block:
    `t = conv2(dropout(elu(conv1(elu(h))))) + condition_bias; h + a * sigmoid(b)` with `(a, b) = split(t)`.

    Both convolutions are causal (at or before p). `condition` is the output of the conditioning stack,
    `(B, condition_channels, h', w')` with `h'` dividing H (or `1 x 1` for a class embedding alone); a 1x1
    projection makes it a bias of the gates. Maps: `(B, C, H, W) -> (B, C, H, W)`.
    """

    def __init__(self, channels: int, kernel_size: int, dropout: float, condition_channels: int | None) -> None:
        super().__init__()
        self.conv1 = CausalConv2d(channels, channels, kernel_size, include_center=True)
        self.conv2 = CausalConv2d(channels, 2 * channels, kernel_size, include_center=True)
        self.dropout = nn.Dropout(dropout)
        self.condition = (
            nn.Conv2d(condition_channels, 2 * channels, kernel_size=1, bias=False) if condition_channels else None
        )

    def forward(self, hidden_states: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        gates = self.conv1(F.elu(hidden_states))
        gates = self.conv2(self.dropout(F.elu(gates)))
        if condition is not None:
            # 1x1 projection at the condition's resolution, then upsampling: equal to upsampling first, cheaper.
            gates = gates + _upsample_nearest(self.condition(condition), *hidden_states.shape[-2:])
        value, gate = gates.chunk(2, dim=1)
        return hidden_states + value * torch.sigmoid(gate)

    def init_cache(self, batch: int, width: int) -> tuple[CausalConvCache, CausalConvCache]:
        return self.conv1.init_cache(batch, width), self.conv2.init_cache(batch, width)

    def step(
        self,
        hidden_states: torch.Tensor,
        cache: tuple[CausalConvCache, CausalConvCache],
        row: int,
        col: int,
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One position: `hidden_states` `(B, C)` at `(row, col)` -> `(B, C)`; `condition` `(B, condition_channels)`
        is the conditioning stack's output at this position. Eval mode only (dropout is the identity)."""
        cache1, cache2 = cache
        cache1.write(row, col, F.elu(hidden_states))
        gates = F.elu(cache1.output(row, col))
        cache2.write(row, col, gates)
        gates = cache2.output(row, col)
        if condition is not None:
            gates = gates + F.linear(condition, self.condition.weight.flatten(1))
        value, gate = gates.chunk(2, dim=1)
        return hidden_states + value * torch.sigmoid(gate)


class AttentionCache:
    """Keys and values `(B, heads, h * w, head_dim)` of the positions seen so far, filled one position per step, and
    the residual stream at the previous position (its key needs the code sampled there, known one step later)."""

    def __init__(self, batch: int, num_heads: int, length: int, head_dim: int, like: torch.Tensor) -> None:
        self.keys = like.new_zeros(batch, num_heads, length, head_dim)
        self.values = like.new_zeros(batch, num_heads, length, head_dim)
        self.previous_hidden: torch.Tensor | None = None


class CausalSelfAttention(nn.Module):
    """Multi-head attention of every position over all positions strictly before it in raster order, followed by a
    gated residual connection `h + a * sigmoid(b)`.

    Queries read `[h, position]`; keys and values read `[code embedding, h, position]` (PixelSNAIL feeds the raw
    input to the keys so attention can read past codes directly). Since a key carries its position's own code, the
    mask is strictly causal; the first position has no past and its attention output is zero.
    Maps: `(B, C, H, W) -> (B, C, H, W)`.
    """

    def __init__(self, channels: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = channels // num_heads
        self.query = nn.Linear(channels + 2, channels)
        self.key = nn.Linear(2 * channels + 2, channels)
        self.value = nn.Linear(2 * channels + 2, channels)
        self.output = nn.Linear(channels, 2 * channels)

    def _gated_residual(self, hidden_states: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        value, gate = self.output(attended).chunk(2, dim=-1)
        return hidden_states + value * torch.sigmoid(gate)

    def forward(self, hidden_states: torch.Tensor, embeddings: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """`hidden_states`, `embeddings`: `(B, C, H, W)`; `positions`: `(2, H, W)`."""
        batch, channels, height, width = hidden_states.shape
        length = height * width
        hidden = hidden_states.flatten(2).transpose(1, 2)  # (B, N, C)
        embedded = embeddings.flatten(2).transpose(1, 2)
        position = positions.flatten(1).t().unsqueeze(0).expand(batch, -1, -1)  # (B, N, 2)
        key_input = torch.cat([embedded, hidden, position], dim=-1)

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

        query = heads(self.query(torch.cat([hidden, position], dim=-1)))
        key, value = heads(self.key(key_input)), heads(self.value(key_input))
        scores = query @ key.transpose(-1, -2) / math.sqrt(self.head_dim)  # (B, heads, N, N)
        allowed = torch.ones(length, length, dtype=torch.bool, device=scores.device).tril(-1)
        # Position 0 has nothing to attend to: let it see itself so the softmax is defined, then zero its output.
        allowed[0, 0] = True
        probs = torch.softmax(scores.float().masked_fill(~allowed, float("-inf")), dim=-1).to(value.dtype)
        attended = probs @ value
        has_past = torch.ones(length, 1, dtype=attended.dtype, device=attended.device)
        has_past[0] = 0
        attended = (attended * has_past).transpose(1, 2).reshape(batch, length, channels)
        out = self._gated_residual(hidden, attended)
        return out.transpose(1, 2).reshape(batch, channels, height, width)

    def init_cache(self, batch: int, length: int, like: torch.Tensor) -> AttentionCache:
        return AttentionCache(batch, self.num_heads, length, self.head_dim, like)

    def step(
        self,
        hidden_states: torch.Tensor,
        cache: AttentionCache,
        index: int,
        previous_embedding: torch.Tensor | None,
        positions: torch.Tensor,
    ) -> torch.Tensor:
        """One position. `hidden_states` `(B, C)` at raster index `index`; `previous_embedding` `(B, C)` the
        embedding of the code sampled at `index - 1` (None at 0); `positions` `(h * w, 2)`. Returns `(B, C)`."""
        batch, channels = hidden_states.shape
        if index > 0:
            # The previous position's key and value: its code is known now.
            key_input = torch.cat(
                [previous_embedding, cache.previous_hidden, positions[index - 1].expand(batch, -1)], dim=-1
            )
            cache.keys[:, :, index - 1] = self.key(key_input).view(batch, self.num_heads, self.head_dim)
            cache.values[:, :, index - 1] = self.value(key_input).view(batch, self.num_heads, self.head_dim)
        cache.previous_hidden = hidden_states
        if index == 0:
            attended = hidden_states.new_zeros(batch, channels)
        else:
            query = self.query(torch.cat([hidden_states, positions[index].expand(batch, -1)], dim=-1))
            query = query.view(batch, self.num_heads, 1, self.head_dim)
            scores = query @ cache.keys[:, :, :index].transpose(-1, -2) / math.sqrt(self.head_dim)
            probs = torch.softmax(scores.float(), dim=-1).to(query.dtype)
            attended = (probs @ cache.values[:, :, :index]).reshape(batch, channels)
        return self._gated_residual(hidden_states, attended)


class PixelSNAILStage(nn.Module):
    """`num_residual_blocks` gated residual blocks, then (optionally) causal self-attention."""

    def __init__(self, config: PixelSNAILConfig, attention: bool) -> None:
        super().__init__()
        condition_channels = (
            config.condition_channels if config.is_conditional or config.is_class_conditional else None
        )
        self.blocks = nn.ModuleList(
            GatedResidualBlock(config.hidden_channels, config.kernel_size, config.dropout, condition_channels)
            for _ in range(config.num_residual_blocks)
        )
        self.attention = CausalSelfAttention(config.hidden_channels, config.num_attention_heads) if attention else None


class PixelSNAILPreTrainedModel(StrictLoadingMixin, PreTrainedModel):
    config_class = PixelSNAILConfig
    base_model_prefix = "pixelsnail"
    main_input_name = "codes"
    _no_split_modules = ["PixelSNAILStage"]

    def _init_weights(self, module: nn.Module) -> None:
        init_conv_weights(module)
        if isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=1.0)


class PixelSNAILModel(PixelSNAILPreTrainedModel):
    """Autoregressive prior over a `(latent_height, latent_width)` code map, optionally conditioned on a condition
    code map (VQ-VAE-2 bottom prior) and/or a class label.

    Training: `model(codes, labels=codes).loss` (nats per code). Sampling: `model.generate(num_samples)`.

    Example:

    ```python
    >>> import torch
    >>> from hf_vqvae import PixelSNAILConfig, PixelSNAILModel
    >>> config = PixelSNAILConfig(num_embeddings=16, latent_height=4, latent_width=4, hidden_channels=32)
    >>> model = PixelSNAILModel(config)
    >>> codes = torch.randint(0, 16, (2, 4, 4))
    >>> model(codes, labels=codes).logits.shape
    torch.Size([2, 16, 4, 4])
    >>> model.generate(3, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([3, 4, 4])
    ```
    """

    def __init__(self, config: PixelSNAILConfig) -> None:
        super().__init__(config)
        channels = config.hidden_channels
        self.embedding = nn.Embedding(config.num_embeddings, channels)
        # Strictly causal: the output at p must not see the code at p.
        self.input_conv = CausalConv2d(channels, channels, config.kernel_size, include_center=False)
        self.stages = nn.ModuleList(PixelSNAILStage(config, attention) for attention in config.attention_per_stage)
        self.output = nn.Conv2d(channels, config.num_embeddings, kernel_size=1)

        if config.is_conditional:
            self.condition_embedding = nn.Embedding(config.condition_num_embeddings, config.condition_channels)
            self.condition_conv = nn.Conv2d(
                config.condition_channels, config.condition_channels, kernel_size=3, padding=1
            )
            self.condition_stack = ResidualStack(
                config.condition_channels, config.condition_channels, config.num_condition_blocks
            )
        if config.is_class_conditional:
            self.class_embedding = nn.Embedding(config.num_classes, config.condition_channels)
        self.post_init()

    # ----------------------------------------------------------------------------------------------- validation
    def _check_codes(self, codes: torch.Tensor, name: str, num_embeddings: int, shape: tuple[int, ...]) -> None:
        """Raises ValueError unless `codes` is an integer tensor of shape `shape` with values in
        `[0, num_embeddings)`. `shape` entries that are None are not checked."""
        if not isinstance(codes, torch.Tensor) or codes.dtype.is_floating_point or codes.dtype == torch.bool:
            got = codes.dtype if isinstance(codes, torch.Tensor) else type(codes).__name__
            raise ValueError(f"`{name}` must be an integer (long) tensor of code indices, got {got}")
        expected = "(" + ", ".join("batch" if s is None else str(s) for s in shape) + ")"
        if codes.dim() != len(shape) or any(s is not None and s != d for s, d in zip(shape, codes.shape)):
            raise ValueError(f"`{name}` must have shape {expected}, got {tuple(codes.shape)}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= num_embeddings):
            raise ValueError(
                f"`{name}` must hold codes in [0, {num_embeddings}), got values in "
                f"[{int(codes.min())}, {int(codes.max())}]"
            )

    def _condition_features(
        self, condition: torch.Tensor | None, class_labels: torch.Tensor | None, batch: int
    ) -> torch.Tensor | None:
        """Validates the conditioning inputs and runs the conditioning stack once:
        `(B, condition_channels, condition_height, condition_width)`, or `(B, condition_channels, 1, 1)` for a class
        alone, or None for an unconditional prior."""
        config = self.config
        features = None
        if config.is_conditional:
            if condition is None:
                raise ValueError(
                    "this prior is conditioned on a code map: pass `condition` of shape "
                    f"({batch}, {config.condition_height}, {config.condition_width}) with codes in "
                    f"[0, {config.condition_num_embeddings})"
                )
            self._check_codes(
                condition,
                "condition",
                config.condition_num_embeddings,
                (batch, config.condition_height, config.condition_width),
            )
            embedded = self.condition_embedding(condition).permute(0, 3, 1, 2)
            features = self.condition_stack(self.condition_conv(embedded))
        elif condition is not None:
            raise ValueError(
                "got a `condition` but this prior has no conditioning stack (`condition_num_embeddings` is None); "
                "expected condition=None"
            )
        if config.is_class_conditional:
            if class_labels is None:
                raise ValueError(f"this prior is class-conditional: pass `class_labels` of shape ({batch},)")
            self._check_codes(class_labels, "class_labels", config.num_classes, (batch,))
            embedded = self.class_embedding(class_labels)[:, :, None, None]
            features = embedded if features is None else features + embedded
        elif class_labels is not None:
            raise ValueError("got `class_labels` but this prior has no class conditioning (`num_classes` is None)")
        return features

    # ------------------------------------------------------------------------------------------------- forward
    def _logits(self, codes: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        """The whole network on the whole map: `(B, h, w)` codes -> `(B, K, h, w)` logits."""
        embeddings = self.embedding(codes).permute(0, 3, 1, 2)
        hidden_states = self.input_conv(embeddings)
        positions = _positional_encoding(*codes.shape[-2:], device=codes.device, dtype=embeddings.dtype)
        for stage in self.stages:
            for block in stage.blocks:
                hidden_states = block(hidden_states, condition)
            if stage.attention is not None:
                hidden_states = stage.attention(hidden_states, embeddings, positions)
        return self.output(F.elu(hidden_states))

    def forward(
        self,
        codes: torch.LongTensor,
        condition: torch.LongTensor | None = None,
        class_labels: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        return_dict: bool | None = None,
    ) -> PixelSNAILOutput | tuple:
        """
        Args:
            codes (`torch.LongTensor` of shape `(B, latent_height, latent_width)`): codes in `[0, num_embeddings)`.
            condition (`torch.LongTensor` of shape `(B, condition_height, condition_width)`, *optional*): the
                condition code map (top codes), required iff `condition_num_embeddings` is set.
            class_labels (`torch.LongTensor` of shape `(B,)`, *optional*): required iff `num_classes` is set.
            labels (`torch.LongTensor` of shape `(B, latent_height, latent_width)`, *optional*): targets of the
                loss; to train the prior pass `labels=codes`.

        Returns:
            [`PixelSNAILOutput`], or a tuple of its non-None fields when `return_dict=False`.
        """
        config = self.config
        shape = (None, config.latent_height, config.latent_width)
        self._check_codes(codes, "codes", config.num_embeddings, shape)
        features = self._condition_features(condition, class_labels, codes.shape[0])
        logits = self._logits(codes, features)
        loss = bits_per_code = None
        if labels is not None:
            self._check_codes(labels, "labels", config.num_embeddings, (codes.shape[0], *shape[1:]))
            loss = F.cross_entropy(logits.float(), labels)
            bits_per_code = loss / math.log(2)
        output = PixelSNAILOutput(loss=loss, logits=logits, bits_per_code=bits_per_code)
        return_dict = return_dict if return_dict is not None else config.return_dict
        return output if return_dict else output.to_tuple()

    # ------------------------------------------------------------------------------------------------ sampling
    def _init_cache(self, batch: int) -> dict:
        width, length = self.config.latent_width, self.config.latent_height * self.config.latent_width
        like = self.embedding.weight
        return {
            "input": self.input_conv.init_cache(batch, width),
            "blocks": [[block.init_cache(batch, width) for block in stage.blocks] for stage in self.stages],
            "attention": [
                stage.attention.init_cache(batch, length, like) if stage.attention is not None else None
                for stage in self.stages
            ],
            "positions": _positional_encoding(
                self.config.latent_height, self.config.latent_width, device=like.device, dtype=like.dtype
            )
            .flatten(1)
            .t(),
        }

    def _step(self, cache: dict, codes: torch.Tensor, row: int, col: int, condition: torch.Tensor | None):
        """Logits `(B, K)` at `(row, col)` from the caches, after storing the code sampled at the previous position.
        Equals `self._logits(codes, condition)[:, :, row, col]` up to float rounding."""
        width = self.config.latent_width
        index = row * width + col
        previous = None
        if index > 0:
            previous_row, previous_col = divmod(index - 1, width)
            previous = self.embedding(codes[:, previous_row, previous_col])
            cache["input"].write(previous_row, previous_col, previous)
        hidden_states = cache["input"].output(row, col)
        if condition is not None:
            factor_h = self.config.latent_height // condition.shape[2]
            factor_w = width // condition.shape[3]
            condition = condition[:, :, row // factor_h, col // factor_w]
        for stage, block_caches, attention_cache in zip(self.stages, cache["blocks"], cache["attention"]):
            for block, block_cache in zip(stage.blocks, block_caches):
                hidden_states = block.step(hidden_states, block_cache, row, col, condition)
            if stage.attention is not None:
                hidden_states = stage.attention.step(
                    hidden_states, attention_cache, index, previous, cache["positions"]
                )
        return F.linear(F.elu(hidden_states), self.output.weight.flatten(1), self.output.bias)

    @staticmethod
    def _sample(
        logits: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator | None
    ) -> torch.Tensor:
        logits = logits.float() / temperature
        if top_k is not None and top_k < logits.shape[-1]:
            kth_largest = torch.topk(logits, top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth_largest, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)

    @torch.no_grad()
    def generate(
        self,
        num_samples: int,
        condition: torch.LongTensor | None = None,
        class_labels: torch.LongTensor | None = None,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
        return_logits: bool = False,
    ) -> torch.LongTensor | tuple[torch.LongTensor, torch.FloatTensor]:
        """Ancestral sampling in raster order, `latent_height * latent_width` steps. Runs in eval mode (the
        previous mode is restored afterwards).

        Args:
            num_samples (`int`): batch size B.
            condition (`torch.LongTensor` of shape `(B, condition_height, condition_width)`, *optional*): top codes,
                for a conditional prior. Computed through the conditioning stack once per call.
            class_labels (`torch.LongTensor` of shape `(B,)`, *optional*): for a class-conditional prior.
            temperature (`float`): divides the logits before sampling; > 0.
            top_k (`int`, *optional*): sample among the `top_k` most likely codes only.
            generator (`torch.Generator`, *optional*): the random source of `torch.multinomial`; both paths draw
                from it identically, so a seeded generator gives the same codes with and without the cache.
            use_cache (`bool`): incremental sampling, one position of work per step (each causal convolution keeps
                the rows of past inputs its kernel reads, each attention layer the past keys and values). With
                `False`, the whole network runs on the whole map at every step: the slow reference.
            return_logits (`bool`): also return the logits `(B, K, h, w)` each step sampled from (before temperature
                and top-k).

        Returns:
            codes `(B, latent_height, latent_width)` (long), or `(codes, logits)` with `return_logits=True`.
        """
        config = self.config
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples <= 0:
            raise ValueError(f"`num_samples` must be a positive integer, got {num_samples!r}")
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"`temperature` must be a finite number > 0, got {temperature!r}")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k <= 0):
            raise ValueError(f"`top_k` must be None or a positive integer, got {top_k!r}")

        height, width = config.latent_height, config.latent_width
        device = self.embedding.weight.device
        was_training = self.training
        self.eval()
        try:
            features = self._condition_features(condition, class_labels, num_samples)
            codes = torch.zeros(num_samples, height, width, dtype=torch.long, device=device)
            all_logits = (
                torch.zeros(num_samples, config.num_embeddings, height, width, device=device)
                if return_logits
                else None
            )
            cache = self._init_cache(num_samples) if use_cache else None
            for row in range(height):
                for col in range(width):
                    if use_cache:
                        logits = self._step(cache, codes, row, col, features)
                    else:
                        logits = self._logits(codes, features)[:, :, row, col]
                    if return_logits:
                        all_logits[:, :, row, col] = logits.float()
                    codes[:, row, col] = self._sample(logits, temperature, top_k, generator)
        finally:
            self.train(was_training)
        return (codes, all_logits) if return_logits else codes


__all__ = ["PixelSNAILModel", "PixelSNAILOutput", "PixelSNAILPreTrainedModel"]
