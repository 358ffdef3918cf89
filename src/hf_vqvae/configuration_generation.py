"""Configuration of a generation bundle: a VQ-VAE(-2) decoder and the PixelSNAIL priors over its codes, in one repo;
or an audio VQ-VAE (the speech model) and a 1-D PixelSNAIL over its code sequences."""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .configuration_audio_vqvae import AudioVQVAEConfig
from .configuration_pixelsnail import PixelSNAILConfig
from .configuration_vqvae import VQVAEConfig
from .configuration_vqvae2 import VQVAE2Config

# The sub-configs are resolved here rather than through `AutoConfig` (`SubConfigSpec(AutoConfig, ...)`): a repo loaded
# with `trust_remote_code=True` where hf_vqvae is not installed has no "vqvae" model type in transformers' mapping,
# while these classes come with the repo's own code files.
VQ_CONFIG_CLASSES: dict[str, type[PreTrainedConfig]] = {
    "vqvae": VQVAEConfig,
    "vqvae2": VQVAE2Config,
    "audio_vqvae": AudioVQVAEConfig,
}

# What transformers sets on a config and then on each of its sub-configs (`from_pretrained(dtype=...)`,
# `attn_implementation`): set here on all of them at once, the priors included, a list that transformers'
# one-config-per-key `sub_configs` cannot name.
_SHARED_WITH_SUB_CONFIGS = ("dtype", "_attn_implementation", "_experts_implementation")


class _SubConfigClasses:
    """`sub_configs`, transformers' name -> class of each sub-config: on the class the default (`VQVAEConfig`), on an
    instance the class it holds (a VQ-VAE-2 bundle's `vq_config` is a `VQVAE2Config`), so that transformers' tooling
    (`SubConfig.from_pretrained(bundle_folder)`, the config tests) reads each sub-config with its own class."""

    def __get__(self, instance: PreTrainedConfig | None, owner: type[PreTrainedConfig]) -> dict[str, type]:
        classes = {key: spec.config_class for key, spec in owner.sub_configs_defaults.items()}
        if instance is not None:
            for key in classes:
                if isinstance(value := instance.__dict__.get(key), PreTrainedConfig):
                    classes[key] = type(value)
        return classes


def _build_config(value: Any, classes: dict[str, type[PreTrainedConfig]], name: str) -> PreTrainedConfig:
    """A config object from a config object or its `to_dict()` (which names its `model_type`)."""
    if isinstance(value, PreTrainedConfig):
        if value.model_type not in classes:
            raise ValueError(f"`{name}` must be one of the model types {sorted(classes)}, got {value.model_type!r}")
        return value
    if not isinstance(value, dict):
        raise TypeError(f"`{name}` must be a config or a dict, got {type(value).__name__}")
    value = dict(value)
    model_type = value.pop("model_type", None)
    if model_type not in classes:
        raise ValueError(f"`{name}` must name a `model_type` among {sorted(classes)}, got {model_type!r}")
    value.pop("transformers_version", None)
    return classes[model_type](**value)


def _is_audio(vq_config: PreTrainedConfig) -> bool:
    return vq_config.model_type == AudioVQVAEConfig.model_type


def _vq_levels(vq_config: PreTrainedConfig, length: int | None = None) -> list[tuple[int, ...]]:
    """`(num_embeddings, *latent_shape)` of each level of `vq_config`'s codes, top first. An audio VQ-VAE has one
    level, a sequence whose length is free (the WaveNet decodes any number of codes): `length`, else that of its
    training crop."""
    if _is_audio(vq_config):
        return [(vq_config.num_embeddings, length or vq_config.segment_samples // vq_config.downsample_factor)]
    return [(k, *shape) for k, shape in zip(vq_config.level_num_embeddings, vq_config.level_latent_shapes)]


def _default_top_prior(vq_config: PreTrainedConfig) -> PixelSNAILConfig:
    """An unconditional PixelSNAIL (default sizes) over the top code map of `vq_config`: what a bundle holds when no
    `prior_configs` are given (the lower levels are then left out when decoding)."""
    num_embeddings, *shape = _vq_levels(vq_config)[0]
    if len(shape) == 1:
        return PixelSNAILConfig(num_embeddings=num_embeddings, spatial_dims=1, latent_length=shape[0])
    if len(shape) == 2:
        return PixelSNAILConfig(num_embeddings=num_embeddings, latent_height=shape[0], latent_width=shape[1])
    raise ValueError(
        f"a PixelSNAIL prior models code sequences or maps, not the {len(shape)}-D codes of this VQ model: pass "
        "`prior_configs` for a VQ model whose top codes are 1-D or 2-D"
    )


def _sides(level: tuple[int, ...]) -> str:
    """`(K, *shape)` of a code map as its sides, `HxW`."""
    return "x".join(map(str, level[1:]))


class VQGenerationConfig(PreTrainedConfig):
    r"""
    Configuration of a [`VQGenerationModel`]: everything needed to make images in one repo, a VQ-VAE or VQ-VAE-2 (the
    decoder) and the autoregressive priors over its code maps, **top level first**. Priors after the first are
    conditioned on the codes of the level above (VQ-VAE-2 bottom prior). With fewer priors than levels, the lower
    levels are left out when decoding.

    Or speech: an [`AudioVQVAEConfig`] and one 1-D PixelSNAIL over its code sequences (`spatial_dims=1`; its
    `latent_length` sets the clip length, `latent_length * downsample_factor` samples). A class-conditional prior's
    classes are the speakers (`num_classes == num_speakers`), whose names `id2label` holds.

    Args:
        vq_config (`VQVAEConfig`, `VQVAE2Config` or `dict`, *optional*): the VQ model's config (a dict needs its
            `model_type`, "vqvae", "vqvae2" or "audio_vqvae", as `to_dict()` writes it). Defaults to `VQVAEConfig()`.
        prior_configs (`list[PixelSNAILConfig | dict]`, *optional*): one config per prior, top level first. Each must
            model the code map of its level: same K (`num_embeddings`) and map size; a prior after the first must be
            conditioned on the level above (`condition_num_embeddings`, `condition_height`, `condition_width`).
            Defaults to one unconditional `PixelSNAILConfig` over the top level.
        id2label (`dict[int, str]`, *optional*): names of the classes of class-conditional priors, so that pipelines
            accept `class_labels="Sneaker"`.

    Example:

    ```python
    >>> from hf_vqvae import PixelSNAILConfig, VQGenerationConfig, VQVAEConfig
    >>> vq = VQVAEConfig(in_channels=1, image_size=28, num_embeddings=128)
    >>> prior = PixelSNAILConfig(num_embeddings=128, latent_height=7, latent_width=7, num_classes=10)
    >>> config = VQGenerationConfig(vq_config=vq, prior_configs=[prior])
    >>> config.num_classes, config.image_size
    (10, 28)
    ```
    """

    model_type = "vq_generation"
    # transformers' composite-config mechanism for the one config-valued field. The class is the default only:
    # `vq_config` is resolved by `model_type` here (see VQ_CONFIG_CLASSES), and `sub_configs` names its own class.
    sub_configs_defaults = {"vq_config": SubConfigSpec(VQVAEConfig)}
    sub_configs = _SubConfigClasses()

    vq_config: dict | PreTrainedConfig | None = None
    prior_configs: list | tuple | None = None

    def __post_init__(self, **kwargs):
        # Both default, as every `PreTrainedConfig` must build with no arguments (transformers' tooling does).
        self.vq_config = _build_config(
            VQVAEConfig() if self.vq_config is None else self.vq_config, VQ_CONFIG_CLASSES, "vq_config"
        )
        if getattr(self.vq_config, "input_num_embeddings", None) is not None:
            raise ValueError(
                "`vq_config` reads code maps (input_num_embeddings is set: stage 2 of a two-stage model), so its "
                "samples would be logits over codes, not images: bundle it with its stage-1 model in VQTwoStageModel"
            )
        if self.prior_configs is None:
            self.prior_configs = [_default_top_prior(self.vq_config)]
        if not self.prior_configs:
            raise ValueError("`prior_configs` must hold at least one PixelSNAIL config (top level first)")
        self.prior_configs = [
            _build_config(prior, {"pixelsnail": PixelSNAILConfig}, f"prior_configs[{index}]")
            for index, prior in enumerate(self.prior_configs)
        ]
        self._check_priors_match_levels()
        super().__post_init__(**kwargs)

    def __setattr__(self, key: str, value: Any) -> None:
        super().__setattr__(key, value)
        if key not in _SHARED_WITH_SUB_CONFIGS:
            return
        priors = self.__dict__.get("prior_configs")
        targets = [self.__dict__.get("vq_config"), *(priors if isinstance(priors, list) else ())]
        if isinstance(value, dict):  # per sub-config ({"": ..., "vq_config": ...}): the base class did `vq_config`
            targets, value = targets[1:], value.get("prior_configs", getattr(self, key))
        for sub_config in targets:
            if isinstance(sub_config, PreTrainedConfig):
                setattr(sub_config, key, value)

    def _check_priors_match_levels(self) -> None:
        """Each prior must model the code map of its level, so that sampled codes decode: a mismatch would otherwise
        surface only as an index error deep inside the decoder's codebook lookup."""
        levels = self.level_shapes
        if len(self.prior_configs) > len(levels):
            raise ValueError(
                f"the VQ model has {len(levels)} level(s) but {len(self.prior_configs)} priors were given (top first)"
            )
        for index, (prior, level) in enumerate(zip(self.prior_configs, levels)):
            got = (prior.num_embeddings, *prior.latent_shape)
            if got != level:
                raise ValueError(
                    f"prior_configs[{index}] models {_sides(got)} maps of {got[0]} codes, but level {index} of the VQ "
                    f"model has {_sides(level)} maps of {level[0]} codes"
                )
            if index == 0 and prior.is_conditional:
                raise ValueError("prior_configs[0] (the top prior) must not be conditioned on a code map")
            if index > 0:
                above = levels[index - 1]
                condition = (prior.condition_num_embeddings, *(prior.condition_shape or ()))
                if condition != above:
                    raise ValueError(
                        f"prior_configs[{index}] must be conditioned on level {index - 1} ({_sides(above)} maps of "
                        f"{above[0]} codes), got condition (K, *shape) = {condition}"
                    )
        class_counts = {prior.num_classes for prior in self.prior_configs if prior.num_classes is not None}
        if len(class_counts) > 1:
            raise ValueError(f"class-conditional priors must agree on `num_classes`, got {sorted(class_counts)}")
        # A speech bundle's class label is the speaker: the prior's classes are the decoder's speakers.
        if self.is_audio and class_counts and class_counts != {self.vq_config.num_speakers}:
            raise ValueError(
                f"the prior's classes are the speakers the WaveNet decodes with: num_classes must be the audio "
                f"model's num_speakers ({self.vq_config.num_speakers}), got {class_counts.pop()}"
            )

    # ------------------------------------------------------------------------------------------------ properties
    @property
    def level_shapes(self) -> list[tuple[int, ...]]:
        """`(num_embeddings, *latent_shape)` of each level's code map for `image_size` signals, top first:
        `(K, height, width)` for images; `(K, length)` for speech, the length the prior models."""
        priors = self.__dict__.get("prior_configs") or [None]
        length = getattr(priors[0], "latent_length", None)
        return _vq_levels(self.vq_config, length)

    @property
    def is_audio(self) -> bool:
        """Whether the bundle makes speech (an audio VQ-VAE's codes): `generate` then returns waveforms."""
        return _is_audio(self.vq_config)

    @property
    def sampling_rate(self) -> int | None:
        """The rate of generated speech (None for images)."""
        return self.vq_config.sampling_rate if self.is_audio else None

    @property
    def num_samples(self) -> int | None:
        """Waveform samples of one generated clip: the prior's codes times the downsampling (None for images)."""
        return self.level_shapes[0][1] * self.vq_config.downsample_factor if self.is_audio else None

    @property
    def image_size(self) -> int:
        return self.vq_config.image_size

    @property
    def in_channels(self) -> int:
        return self.vq_config.in_channels

    @property
    def num_classes(self) -> int | None:
        """Classes of the class-conditional priors (they agree), or None when no prior takes a class label."""
        counts = [prior.num_classes for prior in self.prior_configs if prior.num_classes is not None]
        return counts[0] if counts else None

    # ----------------------------------------------------------------------------------------------- serialising
    def to_dict(self) -> dict[str, Any]:
        # The base class serialises config-valued attributes (`vq_config`) but not lists of configs.
        output = super().to_dict()
        priors = []
        for prior in self.prior_configs:
            prior_dict = prior.to_dict()
            prior_dict.pop("transformers_version", None)
            priors.append(prior_dict)
        output["prior_configs"] = priors
        return output


__all__ = ["VQGenerationConfig"]
