"""PixelSNAIL's causal layers over 1-D code sequences and 2-D code maps, each with the cache that computes its output
one position at a time at sampling time.

Every layer is causal *per layer*: its output at position p depends only on its input at positions at or before p
in raster order (the first layer: strictly before p). At sampling step p each layer computes its output at p alone,
from a small cache of its past inputs (convolutions) or of past keys and values (attention), and the result equals
running the whole layer on the whole map and reading position p.

* `CausalConv2d` (maps): the sum of a down-shifted convolution over the `k // 2` rows above (k columns, centred)
  and a right-shifted convolution over the current row (the `k // 2` positions to the left, plus the current one
  after the first layer). Implemented as one convolution with explicit zero padding.
* `CausalConv1d` (sequences): an ordinary left-padded convolution over the last `k` positions (the `k - 1` before
  and the current one; after the first layer, which sees the `k` positions strictly before).
* `GatedResidualBlock`: PixelSNAIL's gated residual block, `h + a * sigmoid(b)` with `(a, b)` from two causal
  convolutions; the condition (condition codes and/or class) enters as a bias of the gates.
* `CausalSelfAttention`: multi-head attention of each position over all positions strictly before it. As in
  PixelSNAIL, queries read the residual stream and a positional encoding; keys and values also read the code
  embeddings, so a position must not attend to itself.

A position is a tuple of indices, `(row, col)` for maps and `(t,)` for sequences; its raster index is the row-major
flat index.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from .layers import conv


def upsample_nearest(features: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Nearest-neighbour upsampling of `(B, C, *s')` to `(B, C, *shape)` by integer factors; a map of ones (a class
    embedding alone) is returned as is and broadcasts. Copying values (rather than interpolating) keeps the result
    equal to reading `features[..., p // f]`, which is what the cached step does."""
    if all(size == 1 for size in features.shape[2:]):
        return features
    for dim, size in enumerate(shape, start=2):
        features = features.repeat_interleave(size // features.shape[dim], dim=dim)
    return features


def positional_encoding(shape: tuple[int, ...], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """PixelSNAIL's fixed "background": normalised coordinates along each dimension, `(len(shape), *shape)` in
    [-0.5, 0.5)."""
    axes = [(torch.arange(size, device=device, dtype=dtype) - size / 2) / size for size in shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"))


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

    def _advance(self, row: int) -> None:
        """Moves the window down so that its last row is image row `row` (new rows start as zeros)."""
        if row > self.row:
            shift = min(row - self.row, self.buffer.shape[2])
            self.buffer = torch.roll(self.buffer, -shift, dims=2)
            self.buffer[:, :, -shift:] = 0
            self.row = row

    def write(self, position: tuple[int, int], value: torch.Tensor) -> None:
        """Stores the layer's input `(B, C_in)` at `position` `(row, col)`."""
        row, col = position
        self._advance(row)
        self.buffer[:, col + self.half, -1] = value

    def output(self, position: tuple[int, int]) -> torch.Tensor:
        """The convolution's output `(B, C_out)` at `position` `(row, col)`, from the inputs stored so far."""
        row, col = position
        self._advance(row)
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

    def init_cache(self, batch: int, shape: tuple[int, int]) -> CausalConvCache:
        return CausalConvCache(self, batch, shape[1])


class CausalConv1dCache:
    """The past inputs one `CausalConv1d` needs at sampling time: the whole sequence of its inputs so far, after `k`
    zeros (the full convolution's padding), `(B, k + length, C_in)`; buffer index `i` holds time `i - k`. The window
    of one output, `k` consecutive entries, is contiguous per sample and flattens without a copy: one
    `(B, k * C_in) x (.., C_out)` matmul per position."""

    def __init__(self, conv: CausalConv1d, batch: int, length: int) -> None:
        weight = conv.conv.weight  # (C_out, C_in, k)
        self.kernel_size = conv.kernel_size
        self.start = 1 if conv.include_center else 0  # the window of time t starts at t - k + start
        self.flat_kernel = weight.permute(0, 2, 1).reshape(weight.shape[0], -1)  # (C_out, k * C_in)
        self.bias = conv.conv.bias
        self.buffer = weight.new_zeros(batch, self.kernel_size + length, weight.shape[1])

    def write(self, position: tuple[int], value: torch.Tensor) -> None:
        """Stores the layer's input `(B, C_in)` at `position` `(t,)`."""
        self.buffer[:, position[0] + self.kernel_size] = value

    def output(self, position: tuple[int]) -> torch.Tensor:
        """The convolution's output `(B, C_out)` at `position` `(t,)`, from the inputs stored so far."""
        first = position[0] + self.start
        window = self.buffer[:, first : first + self.kernel_size]
        return F.linear(window.reshape(window.shape[0], -1), self.flat_kernel, self.bias)


class CausalConv1d(nn.Module):
    """Causal 1-D convolution: the output at `t` reads the input at `t - k + 1 .. t` (`include_center`), or at
    `t - k .. t - 1` (strictly before `t`: the first layer). A plain `Conv1d` of kernel `k` over a left-padded
    input. `(B, in_channels, T) -> (B, out_channels, T)`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, include_center: bool) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.include_center = include_center
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        # Strictly causal: k zeros in front and the last input dropped, so output t ends at input t - 1.
        padding = (self.kernel_size - 1, 0) if self.include_center else (self.kernel_size, -1)
        return self.conv(F.pad(hidden_states, padding))

    def init_cache(self, batch: int, shape: tuple[int]) -> CausalConv1dCache:
        return CausalConv1dCache(self, batch, shape[0])


CAUSAL_CONVOLUTIONS: dict[int, type[nn.Module]] = {1: CausalConv1d, 2: CausalConv2d}


class GatedResidualBlock(GradientCheckpointingLayer):
    """PixelSNAIL's gated residual block:
    `t = conv2(dropout(elu(conv1(elu(h))))) + condition_bias; h + a * sigmoid(b)` with `(a, b) = split(t)`.

    Both convolutions are causal (at or before p), 1-D or 2-D after `spatial_dims`. `condition` is the output of the
    conditioning stack, `(B, condition_channels, *s')` with each size of `s'` dividing the map's (or all ones for a
    class embedding alone); a pointwise projection makes it a bias of the gates. Maps:
    `(B, C, *spatial) -> (B, C, *spatial)`. A `GradientCheckpointingLayer`: with activation checkpointing on, its
    forward is recomputed in the backward pass (`step`, the sampling path, is never checkpointed).
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int,
        dropout: float,
        condition_channels: int | None,
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        causal_conv = CAUSAL_CONVOLUTIONS[spatial_dims]
        self.conv1 = causal_conv(channels, channels, kernel_size, include_center=True)
        self.conv2 = causal_conv(channels, 2 * channels, kernel_size, include_center=True)
        self.dropout = nn.Dropout(dropout)
        self.condition = (
            conv(spatial_dims, condition_channels, 2 * channels, kernel_size=1, bias=False)
            if condition_channels
            else None
        )

    def forward(self, hidden_states: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        gates = self.conv1(F.elu(hidden_states))
        gates = self.conv2(self.dropout(F.elu(gates)))
        if condition is not None:
            # Pointwise projection at the condition's resolution, then upsampling: equal to upsampling first, cheaper.
            gates = gates + upsample_nearest(self.condition(condition), hidden_states.shape[2:])
        value, gate = gates.chunk(2, dim=1)
        return hidden_states + value * torch.sigmoid(gate)

    def init_cache(self, batch: int, shape: tuple[int, ...]) -> tuple:
        return self.conv1.init_cache(batch, shape), self.conv2.init_cache(batch, shape)

    def step(
        self,
        hidden_states: torch.Tensor,
        cache: tuple,
        position: tuple[int, ...],
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One position: `hidden_states` `(B, C)` at `position` -> `(B, C)`; `condition` `(B, condition_channels)`
        is the conditioning stack's output at this position. Eval mode only (dropout is the identity)."""
        cache1, cache2 = cache
        cache1.write(position, F.elu(hidden_states))
        gates = F.elu(cache1.output(position))
        cache2.write(position, gates)
        gates = cache2.output(position)
        if condition is not None:
            gates = gates + F.linear(condition, self.condition.weight.flatten(1))
        value, gate = gates.chunk(2, dim=1)
        return hidden_states + value * torch.sigmoid(gate)


class AttentionCache:
    """Keys and values `(B, heads, length, head_dim)` of the positions seen so far, filled one position per step,
    and the residual stream at the previous position (its key needs the code sampled there, known one step
    later)."""

    def __init__(self, batch: int, num_heads: int, length: int, head_dim: int, like: torch.Tensor) -> None:
        self.keys = like.new_zeros(batch, num_heads, length, head_dim)
        self.values = like.new_zeros(batch, num_heads, length, head_dim)
        self.previous_hidden: torch.Tensor | None = None


class CausalSelfAttention(GradientCheckpointingLayer):
    """Multi-head attention of every position over all positions strictly before it in raster order, followed by a
    gated residual connection `h + a * sigmoid(b)`.

    Queries read `[h, position]`; keys and values read `[code embedding, h, position]` (PixelSNAIL feeds the raw
    input to the keys so attention can read past codes directly). Since a key carries its position's own code, the
    mask is strictly causal; the first position has no past and its attention output is zero. `position` is the
    `spatial_dims` coordinates of `positional_encoding`. Maps: `(B, C, *spatial) -> (B, C, *spatial)`. A
    `GradientCheckpointingLayer`: its `(B, heads, N, N)` scores dominate training memory on long sequences, and
    activation checkpointing recomputes them in the backward pass instead of storing them.
    """

    def __init__(self, channels: int, num_heads: int, spatial_dims: int = 2) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = channels // num_heads
        self.query = nn.Linear(channels + spatial_dims, channels)
        self.key = nn.Linear(2 * channels + spatial_dims, channels)
        self.value = nn.Linear(2 * channels + spatial_dims, channels)
        self.output = nn.Linear(channels, 2 * channels)

    def _gated_residual(self, hidden_states: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        value, gate = self.output(attended).chunk(2, dim=-1)
        return hidden_states + value * torch.sigmoid(gate)

    def forward(self, hidden_states: torch.Tensor, embeddings: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """`hidden_states`, `embeddings`: `(B, C, *spatial)`; `positions`: `(spatial_dims, *spatial)`."""
        batch, channels, *spatial = hidden_states.shape
        length = math.prod(spatial)
        hidden = hidden_states.flatten(2).transpose(1, 2)  # (B, N, C)
        embedded = embeddings.flatten(2).transpose(1, 2)
        position = positions.flatten(1).t().unsqueeze(0).expand(batch, -1, -1)  # (B, N, spatial_dims)
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
        return out.transpose(1, 2).reshape(batch, channels, *spatial)

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
        embedding of the code sampled at `index - 1` (None at 0); `positions` `(length, spatial_dims)`. Returns
        `(B, C)`."""
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


__all__ = [
    "AttentionCache",
    "CausalConv1d",
    "CausalConv1dCache",
    "CausalConv2d",
    "CausalConvCache",
    "CausalSelfAttention",
    "GatedResidualBlock",
    "positional_encoding",
    "upsample_nearest",
]
