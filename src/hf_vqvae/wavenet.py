"""A WaveNet decoder (van den Oord et al. 2016) for the audio VQ-VAE, with Fast WaveNet generation (Paine et al. 2016).

The waveform is modelled as a **256-way categorical over mu-law companded samples** (mu = 255), as in the original
WaveNet and the VQ-VAE paper's speech model: a softmax is exact to train (cross-entropy in nats), needs no scale
parameters, and mu-law spends the 256 levels where speech has most of its samples, near zero. (A discretised
mixture of logistics would give 16-bit output, at the price of a fiddlier likelihood; not needed at 16 kHz here.)

Architecture, for a sample sequence `x` of mu-law classes `(B, T)`:

* the input at time t is the class of sample t-1 (the sequence shifted right by one, the first input is the
  silence class), embedded to `residual_channels` (a learned table plus a projection of the companded value):
  so output t depends on samples `< t` only;
* `num_layers` residual layers, the dilation doubling from 1 to `2^(dilation_cycle - 1)` and restarting: a causal
  dilated convolution to `2 * gate_channels`, plus the layer's projection of the conditioning, through the gated unit
  `tanh(a) * sigmoid(b)`, then one 1x1 convolution that yields the residual (added to the layer's input, scaled by
  `sqrt(1/2)` to keep the variance steady) and the skip output;
* the head: `relu -> 1x1 -> relu -> 1x1` over the sum of the skips gives `(B, 256, T)` logits.

Conditioning: local features at latent rate `(B, C_local, T / upsample_factor)` (the VQ-VAE's decoded latents) are
projected per layer and upsampled by repetition (each latent frame covers `upsample_factor` samples); a global
vector `(B, C_global)` (the speaker embedding) is projected per layer and added at every time step. Projecting at
latent rate before repeating is exact (a 1x1 convolution commutes with repetition) and 64 times cheaper.

Generation keeps, per layer, a queue (ring buffer) of its last `(kernel_size - 1) * dilation` inputs, so a step
costs one sample's work per layer instead of re-running the network over the whole past; it gives the same
waveform as the naive re-run for the same `torch.Generator`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

MU_LAW_CHANNELS = 256


def mu_law_encode(audio: torch.Tensor, channels: int = MU_LAW_CHANNELS) -> torch.LongTensor:
    """Waveform in [-1, 1] (any shape) to mu-law classes in `[0, channels)`; values outside [-1, 1] are clipped.

    `y = sign(x) ln(1 + mu |x|) / ln(1 + mu)`, `mu = channels - 1`, then `y` is rounded onto `channels` levels.
    """
    mu = channels - 1
    audio = audio.clamp(-1.0, 1.0)
    companded = torch.sign(audio) * torch.log1p(mu * audio.abs()) / math.log1p(mu)
    return ((companded + 1) / 2 * mu + 0.5).floor().long().clamp(0, mu)


def mu_law_decode(classes: torch.Tensor, channels: int = MU_LAW_CHANNELS) -> torch.Tensor:
    """Inverse of `mu_law_encode` up to its rounding: classes to a float waveform in [-1, 1]."""
    mu = channels - 1
    companded = classes.float() * (2.0 / mu) - 1.0
    return torch.sign(companded) * torch.expm1(companded.abs() * math.log1p(mu)) / mu


def sample_classes(logits: torch.Tensor, temperature: float, generator: torch.Generator | None) -> torch.LongTensor:
    """One class per row of `logits` `(B, C)`: a multinomial draw at `temperature`, or the argmax at 0. Both
    generation paths call this with the same generator, which is what makes their waveforms equal."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    probabilities = torch.softmax(logits.float() / temperature, dim=-1)
    return torch.multinomial(probabilities, 1, generator=generator).squeeze(-1)


class WaveNetLayer(nn.Module):
    """One gated residual layer, channels last: `(B, T, R) -> (B, T, R)` residual output and `(B, T, S)` skip output.

    Its dilated causal convolution is a linear map of the `kernel_size` taps `t - (k-1) d, ..., t - d, t`
    concatenated (oldest first), and its 1x1 output convolution a linear map: every matrix product is one GEMM over
    all `B * T` positions (PyTorch's CPU kernels for dilated and 1-wide 1-D convolutions are several times slower),
    and a generation step uses the very same matrices.
    """

    def __init__(
        self, residual_channels: int, gate_channels: int, skip_channels: int, kernel_size: int, dilation: int
    ) -> None:
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        self.residual_channels, self.skip_channels = residual_channels, skip_channels
        self.dilated = nn.Linear(kernel_size * residual_channels, 2 * gate_channels)
        self.output = nn.Linear(gate_channels, residual_channels + skip_channels)

    @property
    def history(self) -> int:
        """Past inputs the causal convolution reads besides the current one."""
        return (self.kernel_size - 1) * self.dilation

    def forward(self, hidden: torch.Tensor, condition: torch.Tensor, upsample_factor: int):
        """`hidden` `(B, T, R)`; `condition` `(B, F, 2G)` at latent rate, `F * upsample_factor >= T`."""
        batch, length, _ = hidden.shape
        padded = F.pad(hidden, (0, 0, self.history, 0))
        taps = [padded[:, j * self.dilation : j * self.dilation + length] for j in range(self.kernel_size)]
        pre = self.dilated(torch.cat(taps, dim=-1))
        if length == condition.shape[1] * upsample_factor:
            # Each latent frame's projection added to its `upsample_factor` samples without materialising the
            # repeated tensor.
            pre = (pre.view(batch, -1, upsample_factor, pre.shape[-1]) + condition.unsqueeze(2)).view_as(pre)
        else:
            pre = pre + condition.repeat_interleave(upsample_factor, dim=1)[:, :length]
        filters, gates = pre.chunk(2, dim=-1)
        residual, skip = self.output(torch.tanh(filters) * torch.sigmoid(gates)).split(
            [self.residual_channels, self.skip_channels], dim=-1
        )
        return (hidden + residual) * math.sqrt(0.5), skip


class WaveNet(nn.Module):
    """WaveNet over mu-law classes with local (latent-rate) and global conditioning.

    Args:
        num_classes: mu-law levels (256).
        residual_channels, gate_channels, skip_channels: widths of the residual path, of each gated unit and of
            the skip path.
        kernel_size: taps of each dilated causal convolution.
        num_layers: residual layers; dilations run `1, 2, ..., 2^(dilation_cycle - 1)` and repeat.
        dilation_cycle: layers per dilation cycle.
        local_channels: channels of the latent-rate conditioning (0 for none).
        global_channels: size of the global conditioning vector (0 for none).
        upsample_factor: samples per local conditioning frame.
    """

    def __init__(
        self,
        num_classes: int = MU_LAW_CHANNELS,
        residual_channels: int = 64,
        gate_channels: int = 64,
        skip_channels: int = 128,
        kernel_size: int = 2,
        num_layers: int = 20,
        dilation_cycle: int = 10,
        local_channels: int = 0,
        global_channels: int = 0,
        upsample_factor: int = 64,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.upsample_factor = upsample_factor
        self.gate_channels = gate_channels
        self.embedding = nn.Embedding(num_classes, residual_channels)
        # The previous sample also enters as its companded value: neighbouring classes then start out with nearby
        # inputs, so "the next sample is close to the last one" is learnt in a few steps instead of being
        # discovered separately for each of the 256 table rows.
        self.input_value = nn.Linear(1, residual_channels, bias=False)
        # A small table at first (read by `AudioVQVAEModel._init_weights`), so the companded value dominates
        # early on: on real speech this halves the steps to beat the unigram baseline.
        self.embedding.init_std = 0.05
        self.layers = nn.ModuleList(
            WaveNetLayer(residual_channels, gate_channels, skip_channels, kernel_size, 2 ** (i % dilation_cycle))
            for i in range(num_layers)
        )
        # All layers' conditioning projections as one matmul each.
        width = num_layers * 2 * gate_channels
        self.local_projection = nn.Linear(local_channels, width) if local_channels else None
        self.global_projection = nn.Linear(global_channels, width, bias=False) if global_channels else None
        self.head = nn.Sequential(
            nn.ReLU(), nn.Linear(skip_channels, skip_channels), nn.ReLU(), nn.Linear(skip_channels, num_classes)
        )

    @property
    def receptive_field(self) -> int:
        """Past samples an output can depend on (the input shift included)."""
        return sum(layer.history for layer in self.layers) + 1

    def layer_conditions(
        self, local_condition: torch.Tensor | None, global_condition: torch.Tensor | None, num_frames: int, batch: int
    ) -> torch.Tensor:
        """Every layer's conditioning at latent rate, `(B, num_frames, num_layers, 2G)`."""
        width = len(self.layers) * 2 * self.gate_channels
        device = self.embedding.weight.device
        condition = torch.zeros(batch, num_frames, width, device=device, dtype=self.embedding.weight.dtype)
        if self.local_projection is not None:
            if local_condition is None:
                raise ValueError("this WaveNet is locally conditioned: pass local_condition (B, C, T / factor)")
            condition = condition + self.local_projection(local_condition.transpose(1, 2))
        if self.global_projection is not None:
            if global_condition is None:
                raise ValueError("this WaveNet is globally conditioned: pass global_condition (B, C)")
            condition = condition + self.global_projection(global_condition).unsqueeze(1)
        return condition.view(batch, num_frames, len(self.layers), 2 * self.gate_channels)

    def input_table(self) -> torch.Tensor:
        """`(num_classes, R)`: the input vector of each previous-sample class, its embedding plus its companded
        value's projection."""
        companded = torch.linspace(-1.0, 1.0, self.num_classes, device=self.embedding.weight.device)
        return self.embedding.weight + self.input_value(companded.to(self.embedding.weight.dtype)[:, None])

    def _frames(self, length: int, local_condition: torch.Tensor | None) -> int:
        if local_condition is not None:
            return local_condition.shape[-1]
        return -(-length // self.upsample_factor)

    def forward(
        self,
        classes: torch.LongTensor,
        local_condition: torch.Tensor | None = None,
        global_condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher-forced logits. `classes` `(B, T)` mu-law targets; `local_condition` `(B, C_local, F)` with
        `F * upsample_factor >= T`; `global_condition` `(B, C_global)`. Returns `(B, num_classes, T)` (a view of a
        channels-last tensor): position t is the distribution of `classes[:, t]` given `classes[:, :t]` and the
        conditioning."""
        batch, length = classes.shape
        frames = self._frames(length, local_condition)
        if frames * self.upsample_factor < length:
            raise ValueError(
                f"local_condition covers {frames} x {self.upsample_factor} samples, fewer than the {length} given"
            )
        conditions = self.layer_conditions(local_condition, global_condition, frames, batch)
        start = classes.new_full((batch, 1), self.num_classes // 2)
        hidden = self.input_table()[torch.cat([start, classes[:, :-1]], dim=1)]
        skips = 0
        for index, layer in enumerate(self.layers):
            hidden, skip = layer(hidden, conditions[:, :, index], self.upsample_factor)
            skips = skips + skip
        return self.head(skips).transpose(1, 2)

    @torch.no_grad()
    def generate(
        self,
        local_condition: torch.Tensor | None = None,
        global_condition: torch.Tensor | None = None,
        num_samples: int | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
        progress: bool = False,
    ) -> torch.LongTensor:
        """Ancestral sampling of `(B, num_samples)` mu-law classes (default: all the samples the local conditioning
        covers). `use_cache=True` is Fast WaveNet (per-layer queues, one sample of work per layer and step);
        `use_cache=False` re-runs the network on the whole prefix at every step (the reference it must equal)."""
        if local_condition is not None:
            batch = local_condition.shape[0]
            num_samples = num_samples or local_condition.shape[-1] * self.upsample_factor
        elif global_condition is not None:
            batch = global_condition.shape[0]
        else:
            batch = 1
        if not num_samples:
            raise ValueError("num_samples is needed when there is no local conditioning to set the length")
        frames = self._frames(num_samples, local_condition)
        if frames * self.upsample_factor < num_samples:
            raise ValueError(f"local_condition covers {frames * self.upsample_factor} samples, not {num_samples}")
        steps = tqdm(range(num_samples), desc="WaveNet", unit="sample", disable=not progress)
        if not use_cache:
            samples = torch.full((batch, num_samples), self.num_classes // 2, dtype=torch.long)
            samples = samples.to(self.embedding.weight.device)
            for t in steps:
                logits = self(samples[:, : t + 1], local_condition, global_condition)[:, :, t]
                samples[:, t] = sample_classes(logits, temperature, generator)
            return samples
        return self._generate_cached(local_condition, global_condition, batch, num_samples, frames, temperature,
                                     generator, steps)  # fmt: skip

    def _generate_cached(self, local_condition, global_condition, batch, num_samples, frames, temperature,
                         generator, steps) -> torch.LongTensor:  # fmt: skip
        """Fast WaveNet. Per layer and sample: one matmul over the taps (the queue's entries at `t - (k-1) d, ...,
        t - d` and the current input), the gate, one matmul to residual and skip. The Python loop issues every op,
        so the layers are reduced to plain transposed matrices first (no module lookups), and the conditioning of
        each latent frame is precomputed with the dilated convolutions' biases folded in."""
        device, dtype = self.embedding.weight.device, self.embedding.weight.dtype
        conditions = self.layer_conditions(local_condition, global_condition, frames, batch)
        biases = torch.stack([layer.dilated.bias for layer in self.layers])  # (L, 2G)
        # (frames, L, B, 2G): each latent frame's conditioning plus the dilated convolutions' biases.
        conditions = (conditions + biases).permute(1, 2, 0, 3).contiguous()
        parameters = [
            (layer.dilated.weight.t().contiguous(), layer.output.weight.t().contiguous(), layer.output.bias)
            for layer in self.layers
        ]
        gate, residual_channels = self.gate_channels, self.embedding.embedding_dim
        scale = math.sqrt(0.5)
        head = [(module.weight, module.bias) for module in self.head if isinstance(module, nn.Linear)]
        # Queue of each layer: its last `history` inputs in a ring buffer, zeros before the start (the zero
        # padding of the full forward pass).
        queues = [
            torch.zeros(layer.history, batch, residual_channels, device=device, dtype=dtype) for layer in self.layers
        ]
        plans = [
            (layer.history, [layer.dilation * j for j in range(layer.kernel_size - 1, 0, -1)]) for layer in self.layers
        ]
        samples = torch.empty(batch, num_samples, dtype=torch.long, device=device)
        previous = torch.full((batch,), self.num_classes // 2, dtype=torch.long, device=device)
        embedding = self.input_table()
        for t in steps:
            condition = conditions[t // self.upsample_factor]
            hidden = embedding[previous]
            skips = None
            for index, (size, offsets) in enumerate(plans):
                queue = queues[index]
                taps_weight, out_weight, out_bias = parameters[index]
                taps = torch.cat([*(queue[(t - offset) % size] for offset in offsets), hidden], dim=1)
                queue[t % size] = hidden
                pre = torch.addmm(condition[index], taps, taps_weight)
                gated = torch.tanh(pre[:, :gate]).mul_(torch.sigmoid(pre[:, gate:]))
                out = torch.addmm(out_bias, gated, out_weight)
                hidden = (hidden + out[:, :residual_channels]).mul_(scale)
                skips = out[:, residual_channels:] if skips is None else skips.add_(out[:, residual_channels:])
            out = F.linear(F.relu(skips), *head[0])
            logits = F.linear(F.relu(out), *head[1])
            previous = sample_classes(logits, temperature, generator)
            samples[:, t] = previous
        return samples


__all__ = ["MU_LAW_CHANNELS", "WaveNet", "mu_law_decode", "mu_law_encode", "sample_classes"]
