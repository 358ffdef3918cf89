"""Configuration of the VQ-VAE (van den Oord et al. 2017)."""

from __future__ import annotations

from transformers import PreTrainedConfig

from .config_validation import (
    check_autoencoder_fields,
    check_positive_int,
    check_power_of_two,
    check_quantizer_fields,
)


class VQLevelsMixin:
    """The level list every VQ config exposes, so that code working on VQ models never asks which kind it has.

    A VQ-VAE is the one-level case of the VQ-VAE-2 hierarchy. Each config gives, **top level first**,
    `level_downsample_factors`, `level_num_embeddings` and `level_embedding_dims`; the properties here derive the
    rest. Every level's code map has `spatial_dims` dimensions.
    """

    # Only a hierarchy has upper encoders whose width can differ (VQVAE2Config declares the field); a one-level
    # model reads this default.
    upper_encoder_downsample_channels = None

    @property
    def num_levels(self) -> int:
        return len(self.level_downsample_factors)

    @property
    def latent_sizes(self) -> tuple[int, ...]:
        """Side of each level's code map for `image_size` inputs, top first (rounded up: a code-map input whose side
        is no multiple of the factor is padded)."""
        return tuple(-(-self.image_size // factor) for factor in self.level_downsample_factors)

    @property
    def level_latent_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Shape of each level's code map (without the batch) for `image_size` inputs, top first."""
        return tuple((size,) * self.spatial_dims for size in self.latent_sizes)


class VQVAEConfig(VQLevelsMixin, PreTrainedConfig):
    r"""
    Configuration of a [`VQVAEModel`]. Defaults follow the paper's ImageNet model: 128x128 RGB inputs, 4x
    downsampling to a 32x32 map of K = 512 codes, 256 hidden channels, two residual blocks, EMA codebook; k-means
    initialisation and dead-code restarts are on because they measurably raise codebook usage.

    Args:
        in_channels (`int`, defaults to 3): signal channels (1 for greyscale or mono audio, 3 for RGB).
        image_size (`int`, defaults to 128): side of the square images the model is trained on (the length of a 1-D
            signal, the side of a 3-D clip); the image processor resizes to it. Any input whose sides are multiples
            of `downsample_factor` works in `forward`.
        spatial_dims (`int`, defaults to 2): dimensions of the signal: 1 for a waveform `(B, C, T)`, 2 for images
            `(B, C, H, W)`, 3 for clips `(B, C, F, H, W)`. Codes have the same number of dimensions.
        hidden_channels (`int`, defaults to 256): width of the encoder and decoder.
        residual_channels (`int`, defaults to 256): width inside each residual block (its 3x3 conv).
        num_residual_blocks (`int`, defaults to 2): residual blocks in the encoder and in the decoder.
        downsample_factor (`int`, defaults to 4): side of the image divided by side of the code map; a power of two.
        num_embeddings (`int`, defaults to 512): codebook size K.
        embedding_dim (`int`, defaults to 64): code vector size D.
        commitment_cost (`float`, defaults to 0.25): beta of the commitment loss.
        decay (`float`, defaults to 0.99): EMA decay of the codebook; 0 trains the codebook with the codebook loss.
        epsilon (`float`, defaults to 1e-5): Laplace smoothing of the EMA counts.
        kmeans_init (`bool`, defaults to `True`): k-means initialisation of the codebook on the first batch.
        kmeans_iters (`int`, defaults to 10): Lloyd iterations of that k-means.
        dead_code_threshold (`float`, defaults to 1.0): restart codes whose smoothed count per step falls below
            this; 0 disables restarts.
        usage_window (`int`, defaults to 100): training steps over which codebook usage is reported.
        input_num_embeddings (`int`, *optional*): what the input is. `None` (the default): a signal in [-1, 1] with
            `in_channels` channels. An int K: a code map `(B, *spatial)` of K codes (e.g. another VQ model's codes:
            stage 2 of the VQ-VAE paper's two-stage model), embedded to `in_channels` on the way in; the decoder
            then outputs logits `(B, K, *spatial)` trained with cross-entropy, and sides need not be multiples of
            the downsampling factor (the embedded map is zero-padded, the outputs cropped).

    Example:

    ```python
    >>> from hf_vqvae import VQVAEConfig, VQVAEModel
    >>> config = VQVAEConfig(in_channels=1, image_size=28, downsample_factor=4, hidden_channels=64)
    >>> model = VQVAEModel(config)
    ```
    """

    model_type = "vqvae"

    in_channels: int = 3
    image_size: int = 128
    spatial_dims: int = 2
    hidden_channels: int = 256
    residual_channels: int = 256
    num_residual_blocks: int = 2
    downsample_factor: int = 4
    num_embeddings: int = 512
    embedding_dim: int = 64
    commitment_cost: float = 0.25
    decay: float = 0.99
    epsilon: float = 1e-5
    kmeans_init: bool = True
    kmeans_iters: int = 10
    dead_code_threshold: float = 1.0
    usage_window: int = 100
    input_num_embeddings: int | None = None

    def __post_init__(self, **kwargs):
        check_autoencoder_fields(self)
        check_power_of_two("downsample_factor", self.downsample_factor, minimum=2)
        if self.input_num_embeddings is not None:
            check_positive_int("input_num_embeddings", self.input_num_embeddings)
        elif self.image_size % self.downsample_factor:
            raise ValueError(
                f"`image_size` ({self.image_size}) must be divisible by `downsample_factor` ({self.downsample_factor})"
            )
        check_quantizer_fields(self)
        super().__post_init__(**kwargs)

    @property
    def latent_size(self) -> int:
        """Side of the code map for `image_size` inputs (rounded up for a padded code-map input)."""
        return -(-self.image_size // self.downsample_factor)

    @property
    def level_downsample_factors(self) -> tuple[int, ...]:
        return (self.downsample_factor,)

    @property
    def level_num_embeddings(self) -> tuple[int, ...]:
        return (self.num_embeddings,)

    @property
    def level_embedding_dims(self) -> tuple[int, ...]:
        return (self.embedding_dim,)


__all__ = ["VQLevelsMixin", "VQVAEConfig"]
