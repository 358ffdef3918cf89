"""Configuration of the PixelSNAIL prior over VQ-VAE codes (Chen et al. 2017; Razavi et al. 2019)."""

from __future__ import annotations

from transformers import PreTrainedConfig

from .config_validation import check_positive_int, check_range

# "pixelsnail": gated residual blocks of causal convolutions (+ causal attention); "gated_pixelcnn": the VQ-VAE
# paper's vertical and horizontal stacks.
ARCHITECTURES = ("pixelsnail", "gated_pixelcnn")


class PixelSNAILConfig(PreTrainedConfig):
    r"""
    Configuration of a [`PixelSNAILModel`], an autoregressive prior over discrete codes in `[0, num_embeddings)`:
    a `latent_height` x `latent_width` map sampled in raster order (`spatial_dims=2`, images), or a sequence of
    `latent_length` codes sampled in time order (`spatial_dims=1`, e.g. the codes of a waveform).

    The network is `num_stages` stages of `num_residual_blocks` gated residual blocks built from causal convolutions
    (each followed, where `attention` says so, by causal multi-head self-attention over the whole past). With
    `attention=False` it is a convolutional prior whose convolutions see a cone of the past (the row above only up
    to `kernel_size // 2` columns to the right); with attention it is PixelSNAIL, the VQ-VAE-2 top prior.
    `architecture="gated_pixelcnn"` selects instead the VQ-VAE paper's prior, a gated PixelCNN (van den Oord et al.
    2016) with a vertical and a horizontal stack and no blind spot (2-D maps only). The VQ-VAE-2 bottom prior sets
    `condition_num_embeddings` (and the condition map's size): it then reads the codes of the level above through a
    conditioning stack of residual blocks. Either architecture takes the condition map and class labels.

    Classifier-free guidance: a class-conditional prior trained with `class_dropout > 0` learns the unconditional
    distribution too, under an extra "null" class (`null_class`, label id `num_classes`), and then samples with
    `generate(..., guidance_scale=s)` from `l_uncond + s * (l_cond - l_uncond)`.

    Args:
        num_embeddings (`int`, defaults to 512): number of codes K (the VQ-VAE's codebook size).
        architecture (`str`, defaults to `"pixelsnail"`): `"pixelsnail"` (gated residual blocks of causal
            convolutions, with the attention that `attention` asks for) or `"gated_pixelcnn"` (the VQ-VAE paper's
            gated PixelCNN: `num_layers` layers of vertical and horizontal stacks, gated tanh/sigmoid units, no blind
            spot; after `L` layers a position sees `L * (kernel_size // 2)` rows above it, that many columns to
            either side, and as many positions to its left). The gated PixelCNN models 2-D maps only, and does not
            use `num_stages`, `num_residual_blocks`, `attention` or `num_attention_heads`.
        spatial_dims (`int`, defaults to 2): 2 for a code map `(h, w)`, 1 for a code sequence `(T,)`. The causal
            convolutions, the attention's positional encoding and the conditioning stack follow it.
        latent_height (`int`, *optional*): height h of the code map (2-D only); defaults to 32 for a 2-D prior.
        latent_width (`int`, *optional*): width w of the code map (2-D only); defaults to 32 for a 2-D prior.
        latent_length (`int`, *optional*): length T of the code sequence; required for a 1-D prior, `None` for 2-D.
        hidden_channels (`int`, defaults to 128): width of the network (code embeddings, residual stream,
            attention).
        num_stages (`int`, defaults to 4): stages of residual blocks (each optionally followed by attention).
        num_layers (`int`, *optional*): gated PixelCNN only: its number of layers (vertical + horizontal stack
            pairs); defaults to 15. Must be None for `architecture="pixelsnail"`, whose depth is `num_stages` x
            `num_residual_blocks`.
        num_residual_blocks (`int`, defaults to 2): gated residual blocks per stage.
        attention (`bool` or `list[bool]`, defaults to `True`): causal self-attention after every stage (`True`),
            none (`False`), or per stage (a list of `num_stages` booleans).
        num_attention_heads (`int`, defaults to 4): heads of each attention layer; must divide `hidden_channels`.
        dropout (`float`, defaults to 0.1): dropout inside the gated residual blocks (training only).
        kernel_size (`int`, defaults to 5): odd size k >= 3 of the causal convolutions. In 2-D each sees the
            k // 2 rows above (k columns wide, centred) and the k // 2 + 1 positions to the left of and at the
            current one; in 1-D the k positions up to and including the current one.
        condition_num_embeddings (`int`, *optional*): number of codes of the condition map (the level above in a
            VQ-VAE-2); `None` for a prior without a condition map.
        condition_height (`int`, *optional*): height of the condition map (2-D); must divide `latent_height`.
            Required with `condition_num_embeddings` in 2-D.
        condition_width (`int`, *optional*): width of the condition map (2-D); must divide `latent_width`.
            Required with `condition_num_embeddings` in 2-D.
        condition_length (`int`, *optional*): length of the condition sequence (1-D); must divide
            `latent_length`. Required with `condition_num_embeddings` in 1-D.
        num_condition_maps (`int`, defaults to 1): how many condition maps of that shape the prior reads at once
            (e.g. the code maps of a video's last N frames, oldest first): each is embedded by the one condition
            embedding and the embeddings are stacked along channels, so the conditioning stack's first convolution
            weighs every map with weights of its own (it knows which map is which). With N > 1 the condition input
            is `(B, N, *condition_shape)`; with 1 it stays `(B, *condition_shape)`.
        condition_channels (`int`, *optional*): width of the conditioning stack; defaults to `hidden_channels`.
        num_condition_blocks (`int`, defaults to 2): residual blocks of the conditioning stack.
        num_classes (`int`, *optional*): number of classes for a class-conditional prior; `None` for none.
        class_dropout (`float`, defaults to 0.0): in training (`model.train()`), the share of class labels replaced
            by the null class, so that the prior also learns the unconditional distribution (classifier-free
            guidance). Needs `num_classes`.
        null_class (`bool`, *optional*): whether the class embedding has the extra null-class row (label id
            `num_classes`) that guidance samples the unconditional logits with; defaults to `class_dropout > 0`.
            Keep it True when fine-tuning a guided prior with `class_dropout=0`.

    Example:

    ```python
    >>> from hf_vqvae import PixelSNAILConfig, PixelSNAILModel
    >>> top = PixelSNAILConfig(num_embeddings=512, latent_height=8, latent_width=8, hidden_channels=64)
    >>> bottom = PixelSNAILConfig(
    ...     latent_height=16, latent_width=16, hidden_channels=64, attention=False,
    ...     condition_num_embeddings=512, condition_height=8, condition_width=8,
    ... )
    >>> sequence = PixelSNAILConfig(spatial_dims=1, latent_length=256, hidden_channels=64, num_classes=4)
    >>> model = PixelSNAILModel(sequence)
    >>> gated = PixelSNAILConfig(architecture="gated_pixelcnn", num_layers=8, latent_height=8, latent_width=8,
    ...                          num_classes=10, class_dropout=0.1)
    >>> gated.null_class, gated.null_class_id
    (True, 10)
    ```
    """

    model_type = "pixelsnail"

    num_embeddings: int = 512
    architecture: str = "pixelsnail"
    spatial_dims: int = 2
    latent_height: int | None = None
    latent_width: int | None = None
    latent_length: int | None = None
    hidden_channels: int = 128
    num_stages: int = 4
    num_residual_blocks: int = 2
    num_layers: int | None = None
    attention: bool | list[bool] = True
    num_attention_heads: int = 4
    dropout: float = 0.1
    kernel_size: int = 5
    condition_num_embeddings: int | None = None
    condition_height: int | None = None
    condition_width: int | None = None
    condition_length: int | None = None
    num_condition_maps: int = 1
    condition_channels: int | None = None
    num_condition_blocks: int = 2
    num_classes: int | None = None
    class_dropout: float = 0.0
    null_class: bool | None = None

    def __post_init__(self, **kwargs):
        check_positive_int("num_embeddings", self.num_embeddings)
        self._check_latent_shape()
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
        uses_attention = self.architecture == "pixelsnail" and any(self.attention_per_stage)
        if uses_attention and self.hidden_channels % self.num_attention_heads:
            raise ValueError(
                f"`num_attention_heads` ({self.num_attention_heads}) must divide `hidden_channels` "
                f"({self.hidden_channels})"
            )
        check_range("dropout", self.dropout, 0.0, 1.0, high_inclusive=False)
        if isinstance(self.kernel_size, bool) or not isinstance(self.kernel_size, int) or self.kernel_size < 3:
            raise ValueError(f"`kernel_size` must be an odd integer >= 3, got {self.kernel_size!r}")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"`kernel_size` must be an odd integer >= 3, got {self.kernel_size!r}")
        self._check_condition_shape()
        if self.condition_channels is None:
            self.condition_channels = self.hidden_channels
        check_positive_int("condition_channels", self.condition_channels)
        if isinstance(self.num_condition_blocks, bool) or not isinstance(self.num_condition_blocks, int):
            raise ValueError(f"`num_condition_blocks` must be an integer >= 0, got {self.num_condition_blocks!r}")
        if self.num_condition_blocks < 0:
            raise ValueError(f"`num_condition_blocks` must be an integer >= 0, got {self.num_condition_blocks!r}")
        if self.num_classes is not None:
            check_positive_int("num_classes", self.num_classes)
        self._check_architecture()
        self._check_guidance()
        super().__post_init__(**kwargs)

    def _check_architecture(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"`architecture` must be one of {list(ARCHITECTURES)}, got {self.architecture!r}")
        if self.architecture == "pixelsnail":
            if self.num_layers is not None:
                raise ValueError(
                    f"`num_layers` is the depth of architecture='gated_pixelcnn'; a PixelSNAIL prior's depth is "
                    f"num_stages x num_residual_blocks (got num_layers={self.num_layers!r})"
                )
            return
        if self.spatial_dims != 2:
            raise ValueError(
                "architecture='gated_pixelcnn' models 2-D code maps only (its vertical stack is the rows above); for "
                f"a code sequence (spatial_dims={self.spatial_dims}) use architecture='pixelsnail'"
            )
        self.num_layers = 15 if self.num_layers is None else self.num_layers
        check_positive_int("num_layers", self.num_layers)

    def _check_guidance(self) -> None:
        check_range("class_dropout", self.class_dropout, 0.0, 1.0, high_inclusive=False)
        if self.null_class is None:
            self.null_class = self.class_dropout > 0
        if not isinstance(self.null_class, bool):
            raise ValueError(f"`null_class` must be a bool or None, got {self.null_class!r}")
        if self.num_classes is None and (self.class_dropout > 0 or self.null_class):
            raise ValueError(
                f"`class_dropout` ({self.class_dropout}) and `null_class` ({self.null_class}) are for "
                "class-conditional priors: set `num_classes`"
            )
        if self.class_dropout > 0 and not self.null_class:
            raise ValueError(
                f"`class_dropout={self.class_dropout}` replaces labels by the null class: it needs null_class=True "
                "(or None)"
            )

    def _check_latent_shape(self) -> None:
        if isinstance(self.spatial_dims, bool) or self.spatial_dims not in (1, 2):
            raise ValueError(
                f"`spatial_dims` must be 1 (a code sequence) or 2 (a code map), got {self.spatial_dims!r}"
            )
        if self.spatial_dims == 1:
            if self.latent_length is None:
                raise ValueError("`latent_length` (the code sequence's length) is required when spatial_dims=1")
            for name in ("latent_height", "latent_width", "condition_height", "condition_width"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"`{name}` describes a 2-D code map; a 1-D prior (spatial_dims=1) takes `latent_length` "
                        f"and `condition_length`, got {name}={getattr(self, name)!r}"
                    )
        else:
            for name in ("latent_length", "condition_length"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"`{name}` describes a 1-D code sequence; pass spatial_dims=1 with it, or use "
                        f"`latent_height`/`latent_width` for a 2-D map (got {name}={getattr(self, name)!r})"
                    )
            self.latent_height = 32 if self.latent_height is None else self.latent_height
            self.latent_width = 32 if self.latent_width is None else self.latent_width
        for name, size in zip(self._latent_names, self.latent_shape):
            check_positive_int(name, size)

    def _check_condition_shape(self) -> None:
        names = self._condition_names
        if self.condition_num_embeddings is None:
            if any(getattr(self, name) is not None for name in names):
                given = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
                raise ValueError(
                    f"`{'` and `'.join(names)}` need `condition_num_embeddings` (the condition's K); got "
                    f"condition_num_embeddings=None, {given}"
                )
            if self.num_condition_maps != 1:
                raise ValueError(
                    f"`num_condition_maps` ({self.num_condition_maps!r}) needs `condition_num_embeddings` (a prior "
                    "with condition maps); got condition_num_embeddings=None"
                )
            return
        check_positive_int("condition_num_embeddings", self.condition_num_embeddings)
        check_positive_int("num_condition_maps", self.num_condition_maps)
        for name, latent_name, latent in zip(names, self._latent_names, self.latent_shape):
            size = getattr(self, name)
            if size is None:
                raise ValueError(f"`{name}` is required when `condition_num_embeddings` is set, got None")
            check_positive_int(name, size)
            if latent % size:
                raise ValueError(f"`{name}` ({size}) must divide `{latent_name}` ({latent})")

    @property
    def _latent_names(self) -> tuple[str, ...]:
        return ("latent_length",) if self.spatial_dims == 1 else ("latent_height", "latent_width")

    @property
    def _condition_names(self) -> tuple[str, ...]:
        return ("condition_length",) if self.spatial_dims == 1 else ("condition_height", "condition_width")

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one sample's codes: `(latent_length,)` in 1-D, `(latent_height, latent_width)` in 2-D."""
        return tuple(getattr(self, name) for name in self._latent_names)

    @property
    def condition_shape(self) -> tuple[int, ...] | None:
        """Shape of one sample's condition codes (`(condition_length,)` or `(condition_height, condition_width)`),
        or None for a prior without a condition map."""
        if not self.is_conditional:
            return None
        return tuple(getattr(self, name) for name in self._condition_names)

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

    @property
    def null_class_id(self) -> int | None:
        """The label id of the null class (`num_classes`), or None for a prior without one."""
        return self.num_classes if self.null_class else None

    @property
    def num_class_embeddings(self) -> int | None:
        """Rows of the class embedding: `num_classes`, plus one for the null class."""
        return None if self.num_classes is None else self.num_classes + int(self.null_class)


__all__ = ["PixelSNAILConfig"]
