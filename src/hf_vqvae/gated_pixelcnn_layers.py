"""The gated PixelCNN of the VQ-VAE paper (van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves, Kavukcuoglu 2016,
"Conditional Image Generation with PixelCNN Decoders"): a vertical and a horizontal stack with gated activations and
no blind spot, over 2-D code maps, with a cache that samples it at the cost of the full forward.

Two stacks, one pair per layer, k = `kernel_size`, `half = k // 2`:

* The vertical stack sees rows strictly above. Its value at row `i` reads, in the first layer, the code embeddings
  of rows `i - half .. i - 1`, and in later layers the previous layer's vertical stack at rows `i - half .. i`
  (which itself sees only rows above), k columns wide and centred. After `L` layers a position sees the `L * half`
  rows above it, `L * half` columns to either side.
* The horizontal stack sees the current row to the left: in the first layer the embeddings at `i, j - half .. j - 1`
  (not the current code), in later layers the previous horizontal stack at `i, j - half .. j`. It also reads the
  vertical stack at `(i, j)` through a 1x1 convolution (the "link"), which is what removes the blind spot of the
  original PixelCNN: everything above, to the right edge (given enough layers), reaches `(i, j)` through it.

Each stack's pre-activation `(a, b)` (2C channels) is gated as `tanh(a) * sigmoid(b)`; the condition (condition
codes and/or class, from the model's conditioning stack) is a 1x1-projected bias of both stacks' gates, as in the
paper's conditional PixelCNN. The horizontal stack has a 1x1 output convolution and, after the first layer, a
residual connection; dropout (training only) acts on those residual branches, as in PixelSNAIL's residual blocks.

Cached sampling (as Fast PixelCNN++, Ramachandran et al. 2017, caches): the vertical stack at row `i` depends only on
rows above, so it is computed for the whole row, every layer, once row `i - 1` is sampled (one row-high convolution
per layer); the horizontal stack is computed one position at a time from a buffer of its inputs in the current row.
The total work equals one full forward, and the result equals it up to float rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from .pixelsnail_layers import upsample_nearest


def gate(pre_activation: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """The gated activation `tanh(a) * sigmoid(b)` of `(a, b) = split(pre_activation, 2, dim)`."""
    value, gate_logits = pre_activation.chunk(2, dim=dim)
    return torch.tanh(value) * torch.sigmoid(gate_logits)


class GatedPixelCNNLayer(GradientCheckpointingLayer):
    """One layer of both stacks. `vertical`, `horizontal`: `(B, C, H, W)` -> the same shapes.

    `first` marks the layer that reads the code embeddings: its vertical convolution sees `half` rows strictly above
    and its horizontal one `half` positions strictly to the left; it has no residual connection (its input holds the
    current code). `condition` is the conditioning stack's output `(B, condition_channels, *s')` (or `(B, Cc, 1, 1)`
    for a class alone), projected to a bias of both stacks' gates.
    """

    def __init__(
        self, channels: int, kernel_size: int, dropout: float, condition_channels: int | None, first: bool
    ) -> None:
        super().__init__()
        self.first = first
        self.half = kernel_size // 2
        self.vertical_rows = self.half if first else self.half + 1
        self.horizontal_columns = self.half if first else self.half + 1
        self.vertical = nn.Conv2d(channels, 2 * channels, (self.vertical_rows, kernel_size))
        self.link = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.horizontal = nn.Conv2d(channels, 2 * channels, (1, self.horizontal_columns))
        self.horizontal_output = nn.Conv2d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)
        self.condition = nn.Conv2d(condition_channels, 4 * channels, 1, bias=False) if condition_channels else None

    def condition_bias(self, condition: torch.Tensor | None) -> torch.Tensor | None:
        """The projected condition `(B, 4C, *s')` at the condition's own resolution: vertical bias, then
        horizontal."""
        return None if condition is None or self.condition is None else self.condition(condition)

    def forward(
        self, vertical: torch.Tensor, horizontal: torch.Tensor, condition: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        half = self.half
        # First layer: rows i - half .. i - 1 (pad `half` on top, drop the last row); later: rows i - half .. i.
        vertical_padding = (half, half, half, -1) if self.first else (half, half, half, 0)
        vertical_pre = self.vertical(F.pad(vertical, vertical_padding))
        horizontal_padding = (half, -1, 0, 0) if self.first else (half, 0, 0, 0)
        horizontal_pre = self.horizontal(F.pad(horizontal, horizontal_padding))
        bias = self.condition_bias(condition)
        if bias is not None:
            vertical_bias, horizontal_bias = upsample_nearest(bias, vertical.shape[2:]).chunk(2, dim=1)
            vertical_pre = vertical_pre + vertical_bias
            horizontal_pre = horizontal_pre + horizontal_bias
        horizontal_pre = horizontal_pre + self.link(vertical_pre)
        if self.first:  # the only path of the codes into the network: no dropout on it
            return gate(vertical_pre), self.horizontal_output(gate(horizontal_pre))
        return gate(vertical_pre), horizontal + self.horizontal_output(self.dropout(gate(horizontal_pre)))


class GatedPixelCNN(nn.Module):
    """`num_layers` gated layers over code embeddings: `(B, C, H, W)` embeddings -> `(B, C, H, W)` features whose
    value at `(i, j)` depends on the codes of rows above and of row `i` left of `j` only (strictly causal)."""

    def __init__(
        self, channels: int, num_layers: int, kernel_size: int, dropout: float, condition_channels: int | None
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            GatedPixelCNNLayer(channels, kernel_size, dropout, condition_channels, first=index == 0)
            for index in range(num_layers)
        )

    def forward(self, embeddings: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        vertical = horizontal = embeddings
        for layer in self.layers:
            vertical, horizontal = layer(vertical, horizontal, condition)
        return horizontal

    def init_cache(self, batch: int, shape: tuple[int, int], condition: torch.Tensor | None) -> GatedPixelCNNCache:
        return GatedPixelCNNCache(self, batch, shape, condition)

    def step(self, cache: GatedPixelCNNCache, position: tuple[int, int], previous: torch.Tensor | None):
        """The features `(B, C)` at `position` `(row, col)`, after storing `previous`, the embedding `(B, C)` of the
        code sampled at the position before (None at the first one). Eval mode only (dropout is the identity)."""
        row, col = position
        if previous is not None:
            # The previous position is (row, col - 1), or the end of the row above, still in the current buffer.
            cache.embeddings[:, (col - 1) % cache.width + cache.half] = previous
        if col == 0:
            cache.start_row(self, row)
        hidden = None
        for index, layer in enumerate(self.layers):
            buffer = cache.embeddings if layer.first else cache.horizontal[index]
            if not layer.first:
                buffer[:, col + cache.half] = hidden
            window = buffer[:, col : col + layer.horizontal_columns]  # (B, columns, C), contiguous per sample
            pre = F.linear(window.reshape(window.shape[0], -1), cache.horizontal_kernels[index], layer.horizontal.bias)
            pre = pre + cache.links[index][:, :, col]
            if cache.horizontal_bias[index] is not None:
                pre = pre + cache.horizontal_bias[index][:, :, col]
            out = F.linear(gate(pre), layer.horizontal_output.weight.flatten(1), layer.horizontal_output.bias)
            hidden = out if layer.first else hidden + out
        return hidden


class GatedPixelCNNCache:
    """What `GatedPixelCNN.step` keeps between positions.

    * `embeddings` `(B, half + W, C)`: the code embeddings of the current row, after `half` zeros (the left padding
      of the first horizontal convolution); when a row is finished it is the first vertical layer's new input row.
    * per layer, `vertical[l]` `(B, C, rows, half + W + half)`: the last `rows` input rows of its vertical
      convolution, zero-padded at both sides (rows above the map are zeros, as in the full forward's padding);
    * per layer, `links[l]` `(B, 2C, W)`: the link from the vertical stack into the horizontal stack for the whole
      current row, and `horizontal_bias[l]` the condition's horizontal bias for the row;
    * per later layer, `horizontal[l]` `(B, half + W, C)`: its horizontal inputs in the current row so far.
    """

    def __init__(
        self, network: GatedPixelCNN, batch: int, shape: tuple[int, int], condition: torch.Tensor | None
    ) -> None:
        like = network.layers[0].vertical.weight
        channels = like.shape[1]
        self.height, self.width = shape
        self.half = network.layers[0].half
        self.embeddings = like.new_zeros(batch, self.half + self.width, channels)
        self.vertical = [
            like.new_zeros(batch, channels, layer.vertical_rows, self.width + 2 * self.half)
            for layer in network.layers
        ]
        self.horizontal = [None if layer.first else like.new_zeros(batch, self.half + self.width, channels)
                           for layer in network.layers]  # fmt: skip
        # (2C, columns * C), matching a window laid out (columns, C).
        self.horizontal_kernels = [
            layer.horizontal.weight[:, :, 0].permute(0, 2, 1).reshape(layer.horizontal.weight.shape[0], -1)
            for layer in network.layers
        ]
        self.condition_biases = [layer.condition_bias(condition) for layer in network.layers]
        self.links: list[torch.Tensor] = [None] * len(network.layers)
        self.horizontal_bias: list[torch.Tensor | None] = [None] * len(network.layers)

    def _row_bias(self, bias: torch.Tensor | None, row: int) -> torch.Tensor | None:
        """The projected condition over image row `row`, `(B, 4C, W)` (or `(B, 4C, 1)` for a class alone)."""
        if bias is None:
            return None
        height, width = bias.shape[2:]
        if height == 1 and width == 1:
            return bias[:, :, 0]
        return bias[:, :, row // (self.height // height)].repeat_interleave(self.width // width, dim=-1)

    def start_row(self, network: GatedPixelCNN, row: int) -> None:
        """Runs the vertical stack over row `row` (every layer), once the rows above are all sampled, and clears
        the horizontal buffers."""
        new_row = None
        if row > 0:  # the finished row above: the first vertical layer's newest input row
            new_row = self.embeddings[:, self.half :].transpose(1, 2)  # (B, C, W)
        for index, layer in enumerate(network.layers):
            if new_row is not None:
                padded = F.pad(new_row, (self.half, self.half)).unsqueeze(2)
                self.vertical[index] = torch.cat([self.vertical[index][:, :, 1:], padded], dim=2)
            pre = layer.vertical(self.vertical[index])[:, :, 0]  # (B, 2C, W)
            bias = self._row_bias(self.condition_biases[index], row)
            horizontal_bias = None
            if bias is not None:
                vertical_bias, horizontal_bias = bias.chunk(2, dim=1)
                pre = pre + vertical_bias
            self.links[index] = F.linear(pre.transpose(1, 2), layer.link.weight.flatten(1), layer.link.bias).transpose(
                1, 2
            )
            if horizontal_bias is not None and horizontal_bias.shape[-1] == 1:
                horizontal_bias = horizontal_bias.expand(-1, -1, self.width)
            self.horizontal_bias[index] = horizontal_bias
            new_row = gate(pre)
        self.embeddings.zero_()
        for buffer in self.horizontal:
            if buffer is not None:
                buffer.zero_()


__all__ = ["GatedPixelCNN", "GatedPixelCNNCache", "GatedPixelCNNLayer", "gate"]
