"""Convolutional building blocks shared by VQ-VAE and VQ-VAE-2: residual blocks, encoders, decoders, weight init.

Architecture after van den Oord et al. 2017, section 4.1: strided 4x4 convolutions down, two residual blocks
(ReLU, 3x3 conv, ReLU, 1x1 conv), transposed 4x4 convolutions up.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer


def num_halvings(factor: int) -> int:
    """log2 of a power-of-two resampling factor."""
    return int(math.log2(factor))


class ResidualBlock(GradientCheckpointingLayer):
    """`x + conv1x1(relu(conv3x3(relu(x))))`.

    Input and output: `(B, channels, H, W)`. A `GradientCheckpointingLayer`, so
    `model.gradient_checkpointing_enable()` recomputes its activations in the backward pass instead of storing them:
    the wide 3x3 activations are what dominates activation memory at high resolution.
    """

    def __init__(self, channels: int, residual_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, residual_channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(residual_channels, channels, kernel_size=1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        residual = self.conv1(F.relu(hidden_states))
        residual = self.conv2(F.relu(residual))
        return hidden_states + residual


class ResidualStack(nn.Module):
    """`num_blocks` residual blocks followed by a ReLU. `(B, C, H, W) -> (B, C, H, W)`."""

    def __init__(self, channels: int, residual_channels: int, num_blocks: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(ResidualBlock(channels, residual_channels) for _ in range(num_blocks))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            hidden_states = block(hidden_states)
        return F.relu(hidden_states)


class Encoder(nn.Module):
    """Downsamples by `downsample_factor` (a power of two, 1 allowed) and applies a residual stack.

    `(B, in_channels, H, W) -> (B, hidden_channels, H / f, W / f)`. Each halving is a 4x4 stride-2 convolution;
    the intermediate ones use `hidden_channels // 2` channels as in the paper's reference implementation.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        residual_channels: int,
        num_residual_blocks: int,
        downsample_factor: int,
    ) -> None:
        super().__init__()
        steps = num_halvings(downsample_factor)
        widths = [in_channels] + [max(hidden_channels // 2, 1)] * (steps - 1) + [hidden_channels] * min(steps, 1)
        layers: list[nn.Module] = []
        for width_in, width_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(width_in, width_out, kernel_size=4, stride=2, padding=1), nn.ReLU()]
        layers.append(nn.Conv2d(widths[-1], hidden_channels, kernel_size=3, padding=1))
        self.downsample = nn.Sequential(*layers)
        self.residual = ResidualStack(hidden_channels, residual_channels, num_residual_blocks)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.residual(self.downsample(hidden_states))


class Decoder(nn.Module):
    """Mirror of `Encoder`: a 3x3 convolution, a residual stack, then `log2(upsample_factor)` 4x4 stride-2
    transposed convolutions.

    `(B, in_channels, h, w) -> (B, out_channels, h * f, w * f)`. The last layer has no activation: its output is
    pixels in [-1, 1] (or features, when a VQ-VAE-2 level decodes into the next level's resolution).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        residual_channels: int,
        num_residual_blocks: int,
        upsample_factor: int,
    ) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, hidden_channels, kernel_size=3, padding=1)
        self.residual = ResidualStack(hidden_channels, residual_channels, num_residual_blocks)
        steps = num_halvings(upsample_factor)
        widths = [hidden_channels] + [max(hidden_channels // 2, 1)] * (steps - 1) + [out_channels]
        layers: list[nn.Module] = []
        if steps == 0:
            layers.append(nn.Conv2d(hidden_channels, out_channels, kernel_size=3, padding=1))
        for i, (width_in, width_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.ConvTranspose2d(width_in, width_out, kernel_size=4, stride=2, padding=1))
            if i < steps - 1:
                layers.append(nn.ReLU())
        self.upsample = nn.Sequential(*layers)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.upsample(self.residual(self.conv_in(hidden_states)))


def init_conv_weights(module: nn.Module) -> None:
    """PyTorch's default initialisation for (transposed) convolutions and linear layers.

    transformers' generic `_init_weights` draws N(0, 0.02), which is meant for transformers and leaves a deep conv
    stack with vanishing activations. The `transformers.initialization` helpers used here skip tensors that
    `from_pretrained` has already loaded.
    """
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        init.kaiming_uniform_(module.weight, a=math.sqrt(5))
        if module.bias is not None:
            fan_in, _ = nn.init._calculate_fan_in_and_fan_out(module.weight)
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(module.bias, -bound, bound)
