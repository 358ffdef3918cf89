"""PixelSNAIL prior over VQ-VAE codes (Chen, Mishra, Rohaninejad, Abbeel 2017; Razavi et al. 2019), with cached
incremental sampling, over 2-D code maps (images) and 1-D code sequences (e.g. audio).

The prior models p(codes) = prod_p p(code_p | codes before p) in raster order (time order for a sequence). Every
layer is causal *per layer* (see `pixelsnail_layers`): its output at position p depends only on its input at
positions at or before p (the first layer: strictly before p). That is what makes sampling incremental and exact: at
step p each layer computes its output at p alone, from a small cache of its past inputs (convolutions) or of past
keys and values (attention), and the result equals running the whole network on the whole map and reading p.

Receptive field. Computing each layer at p at step p means no layer may read a position after p, so in 2-D the
convolutions see the row just above only up to `k // 2` columns to the right of p, row `r - d` up to about
`d * (k // 2)` columns (a cone widening upwards), and everything to the left. In 1-D each convolution adds `k - 1`
steps of past. Attention closes the gap: with it every position sees the whole past. Without it the prior is a
convolutional "cone" prior; for the VQ-VAE-2 bottom prior the top codes, which the conditioning stack reads without a
causal mask, supply the global context.

`architecture="gated_pixelcnn"` swaps the stages for the VQ-VAE paper's gated PixelCNN (`gated_pixelcnn_layers`):
its vertical stack sees the rows above to their right edge (given enough layers), and since its value at a row
depends on that whole row above, it is cached a row at a time (once the row above is sampled) while the horizontal
stack advances one position per step.

Classifier-free guidance: a class-conditional prior trained with `class_dropout` has a null class; `generate(...,
guidance_scale=s)` runs the batch under its labels and under the null class in one forward per step and samples from
`l_uncond + s * (l_cond - l_uncond)`.
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
from .gated_pixelcnn_layers import GatedPixelCNN
from .layers import ResidualStack, conv, init_conv_weights
from .modeling_utils import StrictLoadingMixin, is_traced
from .pixelsnail_layers import CAUSAL_CONVOLUTIONS, CausalSelfAttention, GatedResidualBlock, positional_encoding


@dataclass
class PixelSNAILOutput(ModelOutput):
    """
    Output of [`PixelSNAILModel.forward`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, returned when `labels` are given):
            mean negative log-likelihood of the labels, in nats per code.
        logits (`torch.FloatTensor` of shape `(B, K, h, w)`, or `(B, K, T)` for a 1-D prior):
            unnormalised log-probabilities of the code at each position given the codes before it in raster order.
        bits_per_code (`torch.FloatTensor` of shape `()`, returned when `labels` are given): `loss / ln 2`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    bits_per_code: torch.FloatTensor | None = None


def _unravel(index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The position (one index per dimension) of raster index `index` in a map of `shape`."""
    position = []
    for size in reversed(shape):
        index, coordinate = divmod(index, size)
        position.append(coordinate)
    return tuple(reversed(position))


class PixelSNAILStage(nn.Module):
    """`num_residual_blocks` gated residual blocks, then (optionally) causal self-attention."""

    def __init__(self, config: PixelSNAILConfig, attention: bool) -> None:
        super().__init__()
        condition_channels = (
            config.condition_channels if config.is_conditional or config.is_class_conditional else None
        )
        self.blocks = nn.ModuleList(
            GatedResidualBlock(
                config.hidden_channels, config.kernel_size, config.dropout, condition_channels, config.spatial_dims
            )
            for _ in range(config.num_residual_blocks)
        )
        self.attention = (
            CausalSelfAttention(config.hidden_channels, config.num_attention_heads, config.spatial_dims)
            if attention
            else None
        )


class PixelSNAILPreTrainedModel(StrictLoadingMixin, PreTrainedModel):
    config_class = PixelSNAILConfig
    base_model_prefix = "pixelsnail"
    main_input_name = "codes"
    supports_gradient_checkpointing = True
    _no_split_modules = ["PixelSNAILStage", "GatedPixelCNNLayer"]

    def _init_weights(self, module: nn.Module) -> None:
        init_conv_weights(module)
        if isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=1.0)


class PixelSNAILModel(PixelSNAILPreTrainedModel):
    """Autoregressive prior over a `(latent_height, latent_width)` code map or a `(latent_length,)` code sequence,
    optionally conditioned on condition codes (VQ-VAE-2 bottom prior) and/or a class label.

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
    >>> sequence = PixelSNAILModel(PixelSNAILConfig(num_embeddings=16, spatial_dims=1, latent_length=12))
    >>> sequence(torch.randint(0, 16, (2, 12))).logits.shape
    torch.Size([2, 16, 12])
    ```
    """

    def __init__(self, config: PixelSNAILConfig) -> None:
        super().__init__(config)
        channels, dims = config.hidden_channels, config.spatial_dims
        self.embedding = nn.Embedding(config.num_embeddings, channels)
        if config.architecture == "gated_pixelcnn":
            condition_channels = (
                config.condition_channels if config.is_conditional or config.is_class_conditional else None
            )
            self.gated_pixelcnn = GatedPixelCNN(
                channels, config.num_layers, config.kernel_size, config.dropout, condition_channels
            )
        else:
            # Strictly causal: the output at p must not see the code at p.
            self.input_conv = CAUSAL_CONVOLUTIONS[dims](channels, channels, config.kernel_size, include_center=False)
            self.stages = nn.ModuleList(PixelSNAILStage(config, attention) for attention in config.attention_per_stage)
        self.output = conv(dims, channels, config.num_embeddings, kernel_size=1)

        if config.is_conditional:
            width = config.condition_channels
            self.condition_embedding = nn.Embedding(config.condition_num_embeddings, width)
            # N condition maps enter stacked along channels (N = 1: the one map, as before the field existed).
            self.condition_conv = conv(dims, config.num_condition_maps * width, width, kernel_size=3, padding=1)
            self.condition_stack = ResidualStack(width, width, config.num_condition_blocks, spatial_dims=dims)
        if config.is_class_conditional:
            # With a null class (classifier-free guidance), its row is the last one, id `num_classes`.
            self.class_embedding = nn.Embedding(config.num_class_embeddings, config.condition_channels)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        """The code embedding, `(num_embeddings, hidden_channels)`: what the first causal convolution and every
        attention layer's keys read."""
        return self.embedding

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.embedding = value

    # ----------------------------------------------------------------------------------------------- validation
    def _check_codes(self, codes: torch.Tensor, name: str, num_embeddings: int, shape: tuple[int, ...]) -> None:
        """Raises ValueError unless `codes` is an integer tensor of shape `shape` with values in
        `[0, num_embeddings)`. `shape` entries that are None are not checked. The value range needs the tensor's
        data, so it is checked in eager mode only (not while torch.compile or torch.export trace)."""
        if not isinstance(codes, torch.Tensor) or codes.dtype.is_floating_point or codes.dtype == torch.bool:
            got = codes.dtype if isinstance(codes, torch.Tensor) else type(codes).__name__
            raise ValueError(f"`{name}` must be an integer (long) tensor of code indices, got {got}")
        if codes.dim() != len(shape) or any(s is not None and s != d for s, d in zip(shape, codes.shape)):
            expected = "(" + ", ".join("batch" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"`{name}` must have shape {expected}, got {tuple(codes.shape)}")
        if is_traced():
            return
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= num_embeddings):
            raise ValueError(
                f"`{name}` must hold codes in [0, {num_embeddings}), got values in "
                f"[{int(codes.min())}, {int(codes.max())}]"
            )

    def _condition_features(
        self, condition: torch.Tensor | None, class_labels: torch.Tensor | None, batch: int
    ) -> torch.Tensor | None:
        """Validates the conditioning inputs and runs the conditioning stack once:
        `(B, condition_channels, *condition_shape)`, or `(B, condition_channels, 1, ...)` for a class alone, or None
        for an unconditional prior."""
        config = self.config
        features = None
        if config.is_conditional:
            maps = config.num_condition_maps
            shape = (batch, *config.condition_shape) if maps == 1 else (batch, maps, *config.condition_shape)
            if condition is None:
                raise ValueError(
                    f"this prior is conditioned on condition codes: pass `condition` of shape "
                    f"({', '.join(map(str, shape))}) with codes in [0, {config.condition_num_embeddings})"
                )
            self._check_codes(condition, "condition", config.condition_num_embeddings, shape)
            embedded = self.condition_embedding(condition).movedim(-1, 1)
            if maps > 1:  # (B, C, N, *s) -> (B, N * C, *s), map by map: channels [i C, (i + 1) C) are map i
                embedded = embedded.transpose(1, 2).flatten(1, 2)
            features = self.condition_stack(self.condition_conv(embedded))
        elif condition is not None:
            raise ValueError(
                "got a `condition` but this prior has no conditioning stack (`condition_num_embeddings` is None); "
                "expected condition=None"
            )
        if config.is_class_conditional:
            if class_labels is None:
                raise ValueError(f"this prior is class-conditional: pass `class_labels` of shape ({batch},)")
            # The null class (id num_classes, if the prior has one) is a valid label: the unconditional model.
            self._check_codes(class_labels, "class_labels", config.num_class_embeddings, (batch,))
            if self.training and config.class_dropout > 0:
                class_labels = self.drop_class_labels(class_labels)
            embedded = self.class_embedding(class_labels).view(batch, -1, *(1,) * config.spatial_dims)
            features = embedded if features is None else features + embedded
        elif class_labels is not None:
            raise ValueError("got `class_labels` but this prior has no class conditioning (`num_classes` is None)")
        return features

    def drop_class_labels(
        self, class_labels: torch.LongTensor, generator: torch.Generator | None = None
    ) -> torch.LongTensor:
        """`class_labels` `(B,)` with each label replaced by the null class (`config.null_class_id`) with probability
        `config.class_dropout`, independently: classifier-free guidance's training. `forward` calls it in training
        mode; a label that is already the null class stays one."""
        config = self.config
        if config.null_class_id is None:
            raise ValueError(
                "drop_class_labels needs a prior with a null class (class_dropout > 0 or null_class=True)"
            )
        drop = torch.rand(class_labels.shape, generator=generator, device=class_labels.device) < config.class_dropout
        return class_labels.masked_fill(drop, config.null_class_id)

    # ------------------------------------------------------------------------------------------------- forward
    def _logits(self, codes: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        """The whole network on the whole map: `(B, *latent_shape)` codes -> `(B, K, *latent_shape)` logits."""
        embeddings = self.embedding(codes).movedim(-1, 1)
        if self.config.architecture == "gated_pixelcnn":
            return self.output(F.elu(self.gated_pixelcnn(embeddings, condition)))
        hidden_states = self.input_conv(embeddings)
        positions = positional_encoding(tuple(codes.shape[1:]), device=codes.device, dtype=embeddings.dtype)
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
            codes (`torch.LongTensor` of shape `(B, latent_height, latent_width)`, or `(B, latent_length)` for a
                1-D prior): codes in `[0, num_embeddings)`.
            condition (`torch.LongTensor` of shape `(B, condition_height, condition_width)`, or
                `(B, condition_length)`, *optional*): the condition codes (the level above), required iff
                `condition_num_embeddings` is set; `(B, num_condition_maps, *condition_shape)` when the prior reads
                several condition maps.
            class_labels (`torch.LongTensor` of shape `(B,)`, *optional*): required iff `num_classes` is set.
            labels (`torch.LongTensor` of the shape of `codes`, *optional*): targets of the loss; to train the prior
                pass `labels=codes`.

        Returns:
            [`PixelSNAILOutput`], or a tuple of its non-None fields when `return_dict=False`.
        """
        config = self.config
        shape = (None, *config.latent_shape)
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
    def _init_cache(self, batch: int, condition: torch.Tensor | None):
        shape = self.config.latent_shape
        like = self.embedding.weight
        if self.config.architecture == "gated_pixelcnn":
            return self.gated_pixelcnn.init_cache(batch, shape, condition)
        return {
            "input": self.input_conv.init_cache(batch, shape),
            "blocks": [[block.init_cache(batch, shape) for block in stage.blocks] for stage in self.stages],
            "attention": [
                stage.attention.init_cache(batch, math.prod(shape), like) if stage.attention is not None else None
                for stage in self.stages
            ],
            "positions": positional_encoding(shape, device=like.device, dtype=like.dtype).flatten(1).t(),
        }

    def _step(self, cache, codes: torch.Tensor, index: int, condition: torch.Tensor | None) -> torch.Tensor:
        """Logits `(B, K)` at raster index `index` from the caches, after storing the code sampled at the previous
        position. Equals `self._logits(codes, condition).flatten(2)[:, :, index]` up to float rounding."""
        shape = self.config.latent_shape
        position = _unravel(index, shape)
        if self.config.architecture == "gated_pixelcnn":
            previous = self.embedding(codes.flatten(1)[:, index - 1]) if index > 0 else None
            hidden_states = self.gated_pixelcnn.step(cache, position, previous)
            return F.linear(F.elu(hidden_states), self.output.weight.flatten(1), self.output.bias)
        previous = None
        if index > 0:
            previous_position = _unravel(index - 1, shape)
            previous = self.embedding(codes.flatten(1)[:, index - 1])
            cache["input"].write(previous_position, previous)
        hidden_states = cache["input"].output(position)
        if condition is not None:
            # The condition's cell over this position (nearest-neighbour upsampling, as in the full forward).
            cell = (p // (size // c) for p, size, c in zip(position, shape, condition.shape[2:]))
            condition = condition[(slice(None), slice(None), *cell)]
        for stage, block_caches, attention_cache in zip(self.stages, cache["blocks"], cache["attention"]):
            for block, block_cache in zip(stage.blocks, block_caches):
                hidden_states = block.step(hidden_states, block_cache, position, condition)
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

    @staticmethod
    def _guided(logits: torch.Tensor, guidance_scale: float | None, doubled: bool) -> torch.Tensor:
        """The logits to sample from: a doubled batch's halves mixed as `l_uncond + s * (l_cond - l_uncond)`."""
        if not doubled:
            return logits
        conditional, unconditional = logits.chunk(2)
        return unconditional + guidance_scale * (conditional - unconditional)

    def _guidance_labels(
        self, guidance_scale: float | None, class_labels: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, bool]:
        """Checks `guidance_scale` and returns the class labels of the forward, and whether each step runs the
        batch twice (conditional, then under the null class). s = 1 is plain conditional sampling and s = 0
        unconditional sampling: both need one pass, and give exactly those logits."""
        if guidance_scale is None:
            return class_labels, False
        config = self.config
        if isinstance(guidance_scale, bool) or not isinstance(guidance_scale, (int, float)):
            raise ValueError(f"`guidance_scale` must be None or a finite number, got {guidance_scale!r}")
        if not math.isfinite(guidance_scale):
            raise ValueError(f"`guidance_scale` must be None or a finite number, got {guidance_scale!r}")
        if not config.is_class_conditional:
            raise ValueError(
                "`guidance_scale` is classifier-free guidance of a class-conditional prior; this prior takes no class "
                "labels (num_classes is None): sample with guidance_scale=None"
            )
        if config.null_class_id is None:
            raise ValueError(
                "`guidance_scale` needs a prior trained with a null class, whose unconditional logits it mixes in; "
                "this prior has none (class_dropout=0, null_class=False). Train with a share of the labels dropped "
                "(scripts/train.py --class_conditional --class_dropout 0.1, or PixelSNAILConfig(class_dropout=0.1)), "
                "or sample with guidance_scale=None"
            )
        if guidance_scale == 0 and class_labels is not None:
            return torch.full_like(class_labels, config.null_class_id), False
        return class_labels, guidance_scale != 1

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
        guidance_scale: float | None = None,
        parallel: bool = False,
    ) -> torch.LongTensor | tuple[torch.LongTensor, torch.FloatTensor]:
        """Ancestral sampling in raster order (time order for a sequence), one step per position. Runs in eval mode
        (the previous mode is restored afterwards).

        Args:
            num_samples (`int`): batch size B.
            condition (`torch.LongTensor` of shape `(B, *condition_shape)`, *optional*): the level above's codes,
                for a conditional prior (`(B, num_condition_maps, *condition_shape)` with several maps). Computed
                through the conditioning stack once per call.
            class_labels (`torch.LongTensor` of shape `(B,)`, *optional*): for a class-conditional prior; with a
                null class, its id (`config.null_class_id`) samples the unconditional model.
            temperature (`float`): divides the logits before sampling; > 0.
            top_k (`int`, *optional*): sample among the `top_k` most likely codes only.
            generator (`torch.Generator`, *optional*): the random source of `torch.multinomial`; both paths draw
                from it identically, so a seeded generator gives the same codes with and without the cache.
            use_cache (`bool`): incremental sampling, one position of work per step (each causal convolution keeps
                the past inputs its kernel reads, each attention layer the past keys and values; the gated
                PixelCNN's vertical stack is computed a row at a time). With `False`, the whole network runs on the
                whole map at every step: the slow reference.
            return_logits (`bool`): also return the logits `(B, K, *latent_shape)` each step sampled from (after
                guidance, before temperature and top-k).
            guidance_scale (`float`, *optional*): classifier-free guidance of a class-conditional prior trained
                with a null class (`class_dropout > 0`): each step samples from `l_uncond + s * (l_cond - l_uncond)`,
                both logits from one forward over the batch doubled (labels, then the null class; the condition map
                and the caches doubled with it). `1` is plain conditional sampling, `0` unconditional sampling (one
                pass each); above 1 sharpens the class. None (default): no guidance.
            parallel (`bool`): every position in one forward, each sampled from its own distribution, the network
                reading uniformly drawn codes where the map's own codes would be. That is exact for a prior trained
                on fully corrupted inputs, which never learned to read them (a video model with
                `teacher_forcing_noise=1`: a per-position predictor given the condition and class), and one forward
                instead of one per position. For any other prior it ignores the dependence between positions: use
                the default.

        Returns:
            codes `(B, *latent_shape)` (long), or `(codes, logits)` with `return_logits=True`.
        """
        config = self.config
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples <= 0:
            raise ValueError(f"`num_samples` must be a positive integer, got {num_samples!r}")
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"`temperature` must be a finite number > 0, got {temperature!r}")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k <= 0):
            raise ValueError(f"`top_k` must be None or a positive integer, got {top_k!r}")
        class_labels, doubled = self._guidance_labels(guidance_scale, class_labels)

        shape = config.latent_shape
        device = self.embedding.weight.device
        was_training = self.training
        self.eval()
        try:
            features = self._condition_features(condition, class_labels, num_samples)
            batch = num_samples
            if doubled:  # one forward gives both logits: the conditional half, then the unconditional one
                batch = 2 * num_samples
                null_labels = torch.full_like(class_labels, config.null_class_id)
                features = torch.cat([features, self._condition_features(condition, null_labels, num_samples)])
            if parallel:
                # Noise like the corrupted training inputs, the same codes in both halves of a guided batch.
                noise = torch.randint(
                    config.num_embeddings, (num_samples, *shape), generator=generator, device=device
                ).repeat(batch // num_samples, *[1] * len(shape))
                logits = self._guided(self._logits(noise, features).float(), guidance_scale, doubled)
                per_position = logits.flatten(2).transpose(1, 2).reshape(-1, config.num_embeddings)
                codes = self._sample(per_position, temperature, top_k, generator).view(num_samples, *shape)
                return (codes, logits) if return_logits else codes
            # Codes as the network reads them: with guidance, each sampled code is written to both halves.
            codes = torch.zeros(batch, *shape, dtype=torch.long, device=device)
            all_logits = (
                torch.zeros(num_samples, config.num_embeddings, *shape, device=device) if return_logits else None
            )
            cache = self._init_cache(batch, features) if use_cache else None
            for index in range(math.prod(shape)):
                if use_cache:
                    logits = self._step(cache, codes, index, features)
                else:
                    logits = self._logits(codes, features).flatten(2)[:, :, index]
                logits = self._guided(logits.float(), guidance_scale, doubled)
                if return_logits:
                    all_logits.view(num_samples, config.num_embeddings, -1)[:, :, index] = logits
                sampled = self._sample(logits, temperature, top_k, generator)
                codes.view(batch, -1)[:, index] = sampled.repeat(batch // num_samples)
        finally:
            self.train(was_training)
        codes = codes[:num_samples]
        return (codes, all_logits) if return_logits else codes


__all__ = ["PixelSNAILModel", "PixelSNAILOutput", "PixelSNAILPreTrainedModel"]
