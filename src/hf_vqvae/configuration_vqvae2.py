"""Configuration of the hierarchical VQ-VAE-2 (Razavi, van den Oord, Vinyals 2019)."""

from __future__ import annotations

from types import SimpleNamespace

from transformers import PreTrainedConfig

from .config_validation import (
    QUANTIZER_CONFIG_KEYS,
    check_autoencoder_fields,
    check_positive_int,
    check_power_of_two,
    check_quantizer_fields,
)
from .configuration_vqvae import VQLevelsMixin

# The quantizer fields shared by all levels: all but K and D, which may be per-level lists here.
_SHARED_QUANTIZER_FIELDS = tuple(
    key for key in QUANTIZER_CONFIG_KEYS if key not in {"num_embeddings", "embedding_dim"}
)


def _per_level(name: str, value, num_levels: int) -> tuple[int, ...]:
    """`value` (one int for every level, or a list with one int per level) as a tuple of `num_levels` ints."""
    if isinstance(value, (list, tuple)):
        if len(value) != num_levels:
            raise ValueError(
                f"`{name}` must be one integer or a list with one value per level: `downsample_factors` has "
                f"{num_levels} levels, but `{name}` lists {len(value)} values ({list(value)!r})"
            )
        for index, item in enumerate(value):
            check_positive_int(f"{name}[{index}]", item)
        return tuple(value)
    check_positive_int(name, value)
    return (value,) * num_levels


class VQVAE2Config(VQLevelsMixin, PreTrainedConfig):
    r"""
    Configuration of a [`VQVAE2Model`], a hierarchy of quantised code maps. Defaults follow the paper's 256x256
    model: two levels, a top map at 1/8 of the image side (32x32) and a bottom map at 1/4 (64x64), K = 512 codes of
    dimension 64 per level, EMA codebooks, 128 hidden channels, two residual blocks per stack. k-means initialisation
    and dead-code restarts are on, as in [`VQVAEConfig`], because they measurably raise codebook usage.

    Levels are listed **top first** everywhere: `downsample_factors[i]`, `num_embeddings[i]`, `embedding_dim[i]`,
    the model's `quantizers[i]` and `codes[i]` / `perplexity[i]` of its outputs all describe the same level.

    Args:
        in_channels (`int`, defaults to 3): signal channels (1 for greyscale or mono audio, 3 for RGB).
        image_size (`int`, defaults to 256): side of the square images the model is trained on (the length of a 1-D
            signal, the side of a 3-D clip); the image processor resizes to it. Any input whose sides are multiples
            of the top level's factor works in `forward`.
        spatial_dims (`int`, defaults to 2): dimensions of the signal: 1 for a waveform `(B, C, T)`, 2 for images
            `(B, C, H, W)`, 3 for clips `(B, C, F, H, W)`. Codes have the same number of dimensions.
        hidden_channels (`int`, defaults to 128): width of the encoders and decoders.
        residual_channels (`int`, defaults to 64): width inside each residual block (its 3x3 conv).
        num_residual_blocks (`int`, defaults to 2): residual blocks in every encoder and decoder.
        downsample_factors (`list[int]`, defaults to `[8, 4]`): image side divided by code-map side for each level,
            top first. Powers of two, strictly decreasing (so each is a multiple of the next); at least one level,
            three or more allowed. `image_size` must be divisible by the first (largest).
        num_embeddings (`int` or `list[int]`, defaults to 512): codebook size K, for all levels or one per level.
        embedding_dim (`int` or `list[int]`, defaults to 64): code vector size D, for all levels or one per level.
        commitment_cost (`float`, defaults to 0.25): beta of the commitment loss (every level).
        decay (`float`, defaults to 0.99): EMA decay of the codebooks; 0 trains them with the codebook loss.
        epsilon (`float`, defaults to 1e-5): Laplace smoothing of the EMA counts.
        kmeans_init (`bool`, defaults to `True`): k-means initialisation of each codebook on the first batch.
        kmeans_iters (`int`, defaults to 10): Lloyd iterations of that k-means.
        dead_code_threshold (`float`, defaults to 1.0): restart codes whose smoothed count per step falls below
            this; 0 disables restarts.
        usage_window (`int`, defaults to 100): training steps over which codebook usage is reported.
        input_num_embeddings (`int`, *optional*): what the input is. `None` (the default): a signal in [-1, 1] with
            `in_channels` channels. An int K: a code map `(B, *spatial)` of K codes (e.g. another VQ model's codes:
            stage 2 of the VQ-VAE paper's two-stage model), embedded to `in_channels` on the way in; the decoder
            then outputs logits `(B, K, *spatial)` trained with cross-entropy, and sides need not be multiples of
            the downsampling factor (the embedded map is zero-padded, the outputs cropped).
        upper_encoder_downsample_channels (`int`, *optional*): output width of the last strided convolution in the
            encoders of the levels above the bottom one (the 3x3 convolution after it reads this width and writes
            `hidden_channels`). `None` (the default) uses `hidden_channels`. rosinality/vq-vae-2-pytorch's top
            encoder uses `hidden_channels // 2`; its converted checkpoints set that here.

    Example:

    ```python
    >>> from hf_vqvae import VQVAE2Config, VQVAE2Model
    >>> config = VQVAE2Config(image_size=128, downsample_factors=[16, 8, 4], hidden_channels=64)
    >>> config.latent_sizes
    (8, 16, 32)
    >>> model = VQVAE2Model(config)
    ```
    """

    model_type = "vqvae2"

    in_channels: int = 3
    image_size: int = 256
    spatial_dims: int = 2
    hidden_channels: int = 128
    residual_channels: int = 64
    num_residual_blocks: int = 2
    # Tuples, not lists: dataclass fields may not have mutable defaults. `to_dict` writes them as JSON lists.
    downsample_factors: list[int] | tuple[int, ...] = (8, 4)
    num_embeddings: int | list[int] | tuple[int, ...] = 512
    embedding_dim: int | list[int] | tuple[int, ...] = 64
    commitment_cost: float = 0.25
    decay: float = 0.99
    epsilon: float = 1e-5
    kmeans_init: bool = True
    kmeans_iters: int = 10
    dead_code_threshold: float = 1.0
    usage_window: int = 100
    input_num_embeddings: int | None = None
    upper_encoder_downsample_channels: int | None = None

    def __post_init__(self, **kwargs):
        check_autoencoder_fields(self)
        if self.input_num_embeddings is not None:
            check_positive_int("input_num_embeddings", self.input_num_embeddings)
        self._check_levels()
        if self.upper_encoder_downsample_channels is not None:
            check_positive_int("upper_encoder_downsample_channels", self.upper_encoder_downsample_channels)
        # The quantizer fields shared by all levels, checked as for the other models; K and D go in as the first
        # level's values (`_check_levels` has checked every level's).
        fields = {key: getattr(self, key) for key in _SHARED_QUANTIZER_FIELDS}
        fields.update(num_embeddings=self.level_num_embeddings[0], embedding_dim=self.level_embedding_dims[0])
        check_quantizer_fields(SimpleNamespace(**fields))
        super().__post_init__(**kwargs)

    def _check_levels(self) -> None:
        factors = self.downsample_factors
        if not isinstance(factors, (list, tuple)):
            raise ValueError(
                f"`downsample_factors` must be a list of ints (one per level, top first), got {factors!r}"
            )
        if len(factors) == 0:
            raise ValueError(
                "`downsample_factors` must list at least one level (top first, e.g. [8, 4] for a 1/8 top map and a "
                "1/4 bottom map), got []"
            )
        for index, factor in enumerate(factors):
            check_power_of_two(f"downsample_factors[{index}]", factor, minimum=2)
        if any(upper <= lower for upper, lower in zip(factors[:-1], factors[1:])):
            raise ValueError(
                "`downsample_factors` must be strictly decreasing from the top level to the bottom level, each a "
                f"multiple of the next (e.g. [8, 4] or [16, 8, 4]), got {list(factors)!r}"
            )
        if self.image_size % factors[0] and self.input_num_embeddings is None:
            raise ValueError(
                f"`image_size` ({self.image_size}) must be divisible by the top level's downsample factor "
                f"(`downsample_factors[0]` = {factors[0]}) so that every level's code map has an integer size"
            )
        # JSON gives lists; keep one type so that configs compare equal after a round trip.
        self.downsample_factors = list(factors)
        for name in ("num_embeddings", "embedding_dim"):
            value = getattr(self, name)
            _per_level(name, value, len(factors))
            if isinstance(value, tuple):
                setattr(self, name, list(value))

    @property
    def level_downsample_factors(self) -> tuple[int, ...]:
        """Image side divided by code-map side for each level, top first."""
        return tuple(self.downsample_factors)

    @property
    def level_num_embeddings(self) -> tuple[int, ...]:
        """Codebook size K of each level, top first."""
        return _per_level("num_embeddings", self.num_embeddings, self.num_levels)

    @property
    def level_embedding_dims(self) -> tuple[int, ...]:
        """Code vector size D of each level, top first."""
        return _per_level("embedding_dim", self.embedding_dim, self.num_levels)


__all__ = ["VQVAE2Config"]
