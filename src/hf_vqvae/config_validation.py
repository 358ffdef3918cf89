"""Checks shared by the hf_vqvae configs. Each raises `ValueError` naming the field, the allowed values and the value
it got, so that a bad config fails at construction instead of deep inside a forward pass."""

from __future__ import annotations

from typing import Any

# The keys a model config forwards to `VectorQuantizer` (`VectorQuantizer.from_config`); they keep the same names in
# all three configs.
QUANTIZER_CONFIG_KEYS = (
    "num_embeddings",
    "embedding_dim",
    "commitment_cost",
    "decay",
    "epsilon",
    "kmeans_init",
    "kmeans_iters",
    "dead_code_threshold",
    "usage_window",
)


def check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}")


def check_range(name: str, value: Any, low: float, high: float, *, high_inclusive: bool = True) -> None:
    upper_ok = value <= high if high_inclusive else value < high
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value >= low and upper_ok):
        bracket = "]" if high_inclusive else ")"
        raise ValueError(f"`{name}` must be in [{low}, {high}{bracket}, got {value!r}")


def check_power_of_two(name: str, value: Any, *, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or value & (value - 1):
        raise ValueError(f"`{name}` must be a power of two >= {minimum}, got {value!r}")


def check_quantizer_fields(config: Any) -> None:
    """The `VectorQuantizer` fields every model config carries (`QUANTIZER_CONFIG_KEYS`)."""
    check_positive_int("num_embeddings", config.num_embeddings)
    check_positive_int("embedding_dim", config.embedding_dim)
    check_range("commitment_cost", config.commitment_cost, 0.0, float("inf"))
    check_range("decay", config.decay, 0.0, 1.0, high_inclusive=False)
    check_range("epsilon", config.epsilon, 0.0, float("inf"))
    if config.epsilon == 0:
        raise ValueError("`epsilon` must be > 0 (it keeps unused EMA codes from dividing by zero), got 0")
    if config.kmeans_init:
        check_positive_int("kmeans_iters", config.kmeans_iters)
    check_range("dead_code_threshold", config.dead_code_threshold, 0.0, float("inf"))
    check_positive_int("usage_window", config.usage_window)


def check_autoencoder_fields(config: Any) -> None:
    """The encoder / decoder fields the VQ-VAE and VQ-VAE-2 configs share."""
    if config.spatial_dims not in (1, 2, 3) or isinstance(config.spatial_dims, bool):
        raise ValueError(
            "`spatial_dims` must be 1 (a waveform or other sequence), 2 (images) or 3 (clips: frames x height x "
            f"width), got {config.spatial_dims!r}"
        )
    check_positive_int("in_channels", config.in_channels)
    check_positive_int("image_size", config.image_size)
    check_positive_int("hidden_channels", config.hidden_channels)
    check_positive_int("residual_channels", config.residual_channels)
    blocks = config.num_residual_blocks
    if not isinstance(blocks, int) or blocks < 0:
        raise ValueError(f"`num_residual_blocks` must be an integer >= 0, got {blocks!r}")
