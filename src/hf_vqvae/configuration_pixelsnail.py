"""Configuration of the PixelSNAIL prior over VQ-VAE codes (Chen et al. 2017; Razavi et al. 2019)."""

from __future__ import annotations

from transformers import PreTrainedConfig

from .config_validation import check_positive_int, check_range


class PixelSNAILConfig(PreTrainedConfig):
    r"""
    Configuration of a [`PixelSNAILModel`], an autoregressive prior over a `latent_height` x `latent_width` map of
    codes in `[0, num_embeddings)`, sampled in raster order.

    The network is `num_stages` stages of `num_residual_blocks` gated residual blocks built from causal convolutions
    (each followed, where `attention` says so, by causal multi-head self-attention over the whole past). With
    `attention=False` it is a gated-PixelCNN-style prior as in the VQ-VAE paper; with attention it is PixelSNAIL,
    the VQ-VAE-2 top prior. The VQ-VAE-2 bottom prior sets `condition_num_embeddings` (and the condition map's
    size): it then reads the top codes through a conditioning stack of residual blocks.

    Args:
        num_embeddings (`int`, defaults to 512): number of codes K (the VQ-VAE's codebook size).
        latent_height (`int`, defaults to 32): height h of the code map.
        latent_width (`int`, defaults to 32): width w of the code map.
        hidden_channels (`int`, defaults to 128): width of the network (code embeddings, residual stream,
            attention).
        num_stages (`int`, defaults to 4): stages of residual blocks (each optionally followed by attention).
        num_residual_blocks (`int`, defaults to 2): gated residual blocks per stage.
        attention (`bool` or `list[bool]`, defaults to `True`): causal self-attention after every stage (`True`),
            none (`False`), or per stage (a list of `num_stages` booleans).
        num_attention_heads (`int`, defaults to 4): heads of each attention layer; must divide `hidden_channels`.
        dropout (`float`, defaults to 0.1): dropout inside the gated residual blocks (training only).
        kernel_size (`int`, defaults to 5): odd size k >= 3 of the causal convolutions. Each sees the k // 2 rows
            above (k columns wide, centred) and the k // 2 + 1 positions to the left of and at the current one.
        condition_num_embeddings (`int`, *optional*): number of codes of the condition map (the top level of a
            VQ-VAE-2); `None` for a prior without a condition map.
        condition_height (`int`, *optional*): height of the condition map; must divide `latent_height`. Required
            with `condition_num_embeddings`.
        condition_width (`int`, *optional*): width of the condition map; must divide `latent_width`. Required with
            `condition_num_embeddings`.
        condition_channels (`int`, *optional*): width of the conditioning stack; defaults to `hidden_channels`.
        num_condition_blocks (`int`, defaults to 2): residual blocks of the conditioning stack.
        num_classes (`int`, *optional*): number of classes for a class-conditional prior; `None` for none.

    Example:

    ```python
    >>> from hf_vqvae import PixelSNAILConfig, PixelSNAILModel
    >>> top = PixelSNAILConfig(num_embeddings=512, latent_height=8, latent_width=8, hidden_channels=64)
    >>> bottom = PixelSNAILConfig(
    ...     latent_height=16, latent_width=16, hidden_channels=64, attention=False,
    ...     condition_num_embeddings=512, condition_height=8, condition_width=8,
    ... )
    >>> model = PixelSNAILModel(top)
    ```
    """

    model_type = "pixelsnail"

    num_embeddings: int = 512
    latent_height: int = 32
    latent_width: int = 32
    hidden_channels: int = 128
    num_stages: int = 4
    num_residual_blocks: int = 2
    attention: bool | list[bool] = True
    num_attention_heads: int = 4
    dropout: float = 0.1
    kernel_size: int = 5
    condition_num_embeddings: int | None = None
    condition_height: int | None = None
    condition_width: int | None = None
    condition_channels: int | None = None
    num_condition_blocks: int = 2
    num_classes: int | None = None

    def __post_init__(self, **kwargs):
        check_positive_int("num_embeddings", self.num_embeddings)
        check_positive_int("latent_height", self.latent_height)
        check_positive_int("latent_width", self.latent_width)
        check_positive_int("hidden_channels", self.hidden_channels)
        check_positive_int("num_stages", self.num_stages)
        if isinstance(self.num_residual_blocks, bool) or not isinstance(self.num_residual_blocks, int):
            raise ValueError(f"`num_residual_blocks` must be an integer >= 0, got {self.num_residual_blocks!r}")
        if self.num_residual_blocks < 0:
            raise ValueError(f"`num_residual_blocks` must be an integer >= 0, got {self.num_residual_blocks!r}")
        if isinstance(self.attention, (list, tuple)):
            if len(self.attention) != self.num_stages or not all(isinstance(a, bool) for a in self.attention):
                raise ValueError(
                    f"`attention` must be a bool or a list of `num_stages` ({self.num_stages}) bools, "
                    f"got {self.attention!r}"
                )
            self.attention = list(self.attention)
        elif not isinstance(self.attention, bool):
            raise ValueError(
                f"`attention` must be a bool or a list of {self.num_stages} bools, got {self.attention!r}"
            )
        check_positive_int("num_attention_heads", self.num_attention_heads)
        if any(self.attention_per_stage) and self.hidden_channels % self.num_attention_heads:
            raise ValueError(
                f"`num_attention_heads` ({self.num_attention_heads}) must divide `hidden_channels` "
                f"({self.hidden_channels})"
            )
        check_range("dropout", self.dropout, 0.0, 1.0, high_inclusive=False)
        if isinstance(self.kernel_size, bool) or not isinstance(self.kernel_size, int) or self.kernel_size < 3:
            raise ValueError(f"`kernel_size` must be an odd integer >= 3, got {self.kernel_size!r}")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"`kernel_size` must be an odd integer >= 3, got {self.kernel_size!r}")
        if self.condition_num_embeddings is not None:
            check_positive_int("condition_num_embeddings", self.condition_num_embeddings)
            for name, size, latent in (
                ("condition_height", self.condition_height, self.latent_height),
                ("condition_width", self.condition_width, self.latent_width),
            ):
                if size is None:
                    raise ValueError(f"`{name}` is required when `condition_num_embeddings` is set, got None")
                check_positive_int(name, size)
                if latent % size:
                    latent_name = name.replace("condition", "latent")
                    raise ValueError(f"`{name}` ({size}) must divide `{latent_name}` ({latent})")
        elif self.condition_height is not None or self.condition_width is not None:
            raise ValueError(
                "`condition_height` and `condition_width` need `condition_num_embeddings` (the condition's K); "
                f"got condition_num_embeddings=None, condition_height={self.condition_height!r}, "
                f"condition_width={self.condition_width!r}"
            )
        if self.condition_channels is None:
            self.condition_channels = self.hidden_channels
        check_positive_int("condition_channels", self.condition_channels)
        if isinstance(self.num_condition_blocks, bool) or not isinstance(self.num_condition_blocks, int):
            raise ValueError(f"`num_condition_blocks` must be an integer >= 0, got {self.num_condition_blocks!r}")
        if self.num_condition_blocks < 0:
            raise ValueError(f"`num_condition_blocks` must be an integer >= 0, got {self.num_condition_blocks!r}")
        if self.num_classes is not None:
            check_positive_int("num_classes", self.num_classes)
        super().__post_init__(**kwargs)

    @property
    def num_codes(self) -> int:
        """Alias of `num_embeddings` (K), the issue's name for it."""
        return self.num_embeddings

    @property
    def attention_per_stage(self) -> list[bool]:
        """`attention` expanded to one boolean per stage."""
        if isinstance(self.attention, bool):
            return [self.attention] * self.num_stages
        return list(self.attention)

    @property
    def is_conditional(self) -> bool:
        """Whether the prior reads a condition code map (the VQ-VAE-2 bottom prior)."""
        return self.condition_num_embeddings is not None

    @property
    def is_class_conditional(self) -> bool:
        return self.num_classes is not None


__all__ = ["PixelSNAILConfig"]
