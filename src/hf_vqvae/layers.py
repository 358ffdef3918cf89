"""Convolutional building blocks of every VQ model: residual blocks, encoders, decoders, upsamplers, weight init.

Architecture after van den Oord et al. 2017, section 4.1: strided 4-wide convolutions down, two residual blocks
(ReLU, 3-wide conv, ReLU, 1-wide conv), transposed 4-wide convolutions up. Every block takes `spatial_dims`, the
number of signal dimensions (1 for audio, 2 for images, 3 for clips), and builds the matching `nn.Conv{1,2,3}d`:
the same block serves a waveform `(B, C, T)`, an image `(B, C, H, W)` and a clip `(B, C, F, H, W)`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer

SPATIAL_DIMS = (1, 2, 3)
_CONVS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_TRANSPOSED_CONVS = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


def num_halvings(factor: int) -> int:
    """log2 of a power-of-two resampling factor."""
    return int(math.log2(factor))


def conv(spatial_dims: int, *args, **kwargs) -> nn.Module:
    """`nn.Conv1d`, `nn.Conv2d` or `nn.Conv3d`, by the number of signal dimensions."""
    return _CONVS[spatial_dims](*args, **kwargs)


def conv_transpose(spatial_dims: int, *args, **kwargs) -> nn.Module:
    """`nn.ConvTranspose1d`, `2d` or `3d`, by the number of signal dimensions."""
    return _TRANSPOSED_CONVS[spatial_dims](*args, **kwargs)


class ResidualBlock(GradientCheckpointingLayer):
    """`x + conv1(relu(conv3(relu(x))))`, with 3-wide and 1-wide convolutions over every signal dimension.

    Input and output: `(B, channels, *spatial)`. A `GradientCheckpointingLayer`, so
    `model.gradient_checkpointing_enable()` recomputes its activations in the backward pass instead of storing them:
    the wide 3-wide activations are what dominates activation memory at high resolution.
    """

    def __init__(self, channels: int, residual_channels: int, spatial_dims: int = 2) -> None:
        super().__init__()
        self.conv1 = conv(spatial_dims, channels, residual_channels, kernel_size=3, padding=1)
        self.conv2 = conv(spatial_dims, residual_channels, channels, kernel_size=1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        residual = self.conv1(F.relu(hidden_states))
        residual = self.conv2(F.relu(residual))
        return hidden_states + residual


class ResidualStack(nn.Module):
    """`num_blocks` residual blocks followed by a ReLU. `(B, C, *spatial) -> (B, C, *spatial)`."""

    def __init__(self, channels: int, residual_channels: int, num_blocks: int, spatial_dims: int = 2) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            ResidualBlock(channels, residual_channels, spatial_dims) for _ in range(num_blocks)
        )

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            hidden_states = block(hidden_states)
        return F.relu(hidden_states)


class Encoder(nn.Module):
    """Downsamples by `downsample_factor` (a power of two, 1 allowed) and applies a residual stack.

    `(B, in_channels, *spatial) -> (B, hidden_channels, *spatial / f)`. Each halving is a 4-wide stride-2
    convolution; the intermediate ones use `hidden_channels // 2` channels as in the paper's reference
    implementation, and the last one `downsample_channels` (default `hidden_channels`), which the 3-wide
    convolution after it reads.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        residual_channels: int,
        num_residual_blocks: int,
        downsample_factor: int,
        spatial_dims: int = 2,
        downsample_channels: int | None = None,
    ) -> None:
        super().__init__()
        steps = num_halvings(downsample_factor)
        last_width = hidden_channels if downsample_channels is None else downsample_channels
        widths = [in_channels] + [max(hidden_channels // 2, 1)] * (steps - 1) + [last_width] * min(steps, 1)
        layers: list[nn.Module] = []
        for width_in, width_out in zip(widths[:-1], widths[1:]):
            layers += [conv(spatial_dims, width_in, width_out, kernel_size=4, stride=2, padding=1), nn.ReLU()]
        layers.append(conv(spatial_dims, widths[-1], hidden_channels, kernel_size=3, padding=1))
        self.downsample = nn.Sequential(*layers)
        self.residual = ResidualStack(hidden_channels, residual_channels, num_residual_blocks, spatial_dims)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.residual(self.downsample(hidden_states))


class Decoder(nn.Module):
    """Mirror of `Encoder`: a 3-wide convolution, a residual stack, then `log2(upsample_factor)` 4-wide stride-2
    transposed convolutions.

    `(B, in_channels, *spatial) -> (B, out_channels, *spatial * f)`. The last layer has no activation: its output
    is the signal in [-1, 1] (or features, when a level of the hierarchy decodes into the next level's resolution).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        residual_channels: int,
        num_residual_blocks: int,
        upsample_factor: int,
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        self.conv_in = conv(spatial_dims, in_channels, hidden_channels, kernel_size=3, padding=1)
        self.residual = ResidualStack(hidden_channels, residual_channels, num_residual_blocks, spatial_dims)
        steps = num_halvings(upsample_factor)
        widths = [hidden_channels] + [max(hidden_channels // 2, 1)] * (steps - 1) + [out_channels]
        layers: list[nn.Module] = []
        if steps == 0:
            layers.append(conv(spatial_dims, hidden_channels, out_channels, kernel_size=3, padding=1))
        for i, (width_in, width_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(conv_transpose(spatial_dims, width_in, width_out, kernel_size=4, stride=2, padding=1))
            if i < steps - 1:
                layers.append(nn.ReLU())
        self.upsample = nn.Sequential(*layers)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.upsample(self.residual(self.conv_in(hidden_states)))


def upsampler(channels: int, factor: int, spatial_dims: int = 2) -> nn.Module:
    """`log2(factor)` 4-wide stride-2 transposed convolutions, `(B, C, *spatial) -> (B, C, *spatial * f)`; the
    identity for `factor == 1`. Linear, as in the VQ-VAE-2 reference code: it only has to place a code map on a
    finer grid for the decoder, which does the non-linear work."""
    if factor == 1:
        return nn.Identity()
    return nn.Sequential(
        *(
            conv_transpose(spatial_dims, channels, channels, kernel_size=4, stride=2, padding=1)
            for _ in range(num_halvings(factor))
        )
    )


def init_conv_weights(module: nn.Module) -> None:
    """PyTorch's default initialisation for (transposed) convolutions and linear layers.

    transformers' generic `_init_weights` draws N(0, 0.02), which is meant for transformers and leaves a deep conv
    stack with vanishing activations. The `transformers.initialization` helpers used here skip tensors that
    `from_pretrained` has already loaded.
    """
    if isinstance(module, (*_CONVS.values(), *_TRANSPOSED_CONVS.values(), nn.Linear)):
        init.kaiming_uniform_(module.weight, a=math.sqrt(5))
        if module.bias is not None:
            fan_in, _ = nn.init._calculate_fan_in_and_fan_out(module.weight)
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(module.bias, -bound, bound)
