"""Configuration of the VQ-VAE paper's two-stage generation bundle (section 4.2): frames -> stage-1 codes -> stage-2
codes, and a prior over the stage-2 codes whose samples go through both decoders."""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedConfig

from .configuration_generation import _build_config
from .configuration_pixelsnail import PixelSNAILConfig
from .configuration_vqvae import VQVAEConfig


class VQTwoStageConfig(PreTrainedConfig):
    r"""
    Configuration of a [`VQTwoStageModel`].

    Args:
        stage1_config (`VQVAEConfig` or `dict`): the VQ-VAE over frames (e.g. 84x84 -> 21x21 codes, K = 512).
        stage2_config (`VQVAEConfig` or `dict`): the VQ-VAE over stage 1's code maps: `input_num_embeddings` must be
            stage 1's K and `image_size` stage 1's code-map side (e.g. 21 -> 3x3 codes with `downsample_factor=8`).
        prior_config (`PixelSNAILConfig` or `dict`): the unconditional prior over stage 2's code maps.

    Example:

    ```python
    >>> from hf_vqvae import PixelSNAILConfig, VQTwoStageConfig, VQVAEConfig
    >>> stage1 = VQVAEConfig(image_size=84, downsample_factor=4, num_embeddings=512)
    >>> stage2 = VQVAEConfig(image_size=21, downsample_factor=8, in_channels=64, input_num_embeddings=512)
    >>> prior = PixelSNAILConfig(num_embeddings=512, latent_height=3, latent_width=3)
    >>> VQTwoStageConfig(stage1_config=stage1, stage2_config=stage2, prior_config=prior).top_shape
    (3, 3)
    ```
    """

    model_type = "vq_two_stage"

    stage1_config: dict | PreTrainedConfig | None = None
    stage2_config: dict | PreTrainedConfig | None = None
    prior_config: dict | PreTrainedConfig | None = None

    def __post_init__(self, **kwargs):
        if self.stage1_config is None or self.stage2_config is None or self.prior_config is None:
            raise ValueError(
                "VQTwoStageConfig needs `stage1_config` (frames -> codes), `stage2_config` (codes -> codes, with "
                "`input_num_embeddings`) and `prior_config` (a PixelSNAIL over stage 2's codes)"
            )
        self.stage1_config = _build_config(self.stage1_config, {"vqvae": VQVAEConfig}, "stage1_config")
        self.stage2_config = _build_config(self.stage2_config, {"vqvae": VQVAEConfig}, "stage2_config")
        self.prior_config = _build_config(self.prior_config, {"pixelsnail": PixelSNAILConfig}, "prior_config")
        self._check_chain()
        super().__post_init__(**kwargs)

    def _check_chain(self) -> None:
        stage1, stage2, prior = self.stage1_config, self.stage2_config, self.prior_config
        if stage1.input_num_embeddings is not None:
            raise ValueError("`stage1_config` must read pixels (input_num_embeddings=None)")
        if (stage2.input_num_embeddings, stage2.image_size) != (stage1.num_embeddings, stage1.latent_size):
            raise ValueError(
                f"`stage2_config` must read stage 1's {stage1.latent_size}x{stage1.latent_size} maps of "
                f"{stage1.num_embeddings} codes (input_num_embeddings, image_size), got "
                f"({stage2.input_num_embeddings}, {stage2.image_size})"
            )
        top = (stage2.num_embeddings, stage2.latent_size, stage2.latent_size)
        got = (prior.num_embeddings, *prior.latent_shape)
        if got != top or prior.is_conditional:
            raise ValueError(
                f"`prior_config` must be an unconditional prior over stage 2's {top[1]}x{top[2]} maps of {top[0]} "
                f"codes, got {got[1]}x{got[2]} maps of {got[0]} codes"
                + (" with a condition map" if prior.is_conditional else "")
            )

    @property
    def top_shape(self) -> tuple[int, int]:
        return (self.stage2_config.latent_size, self.stage2_config.latent_size)

    @property
    def image_size(self) -> int:
        return self.stage1_config.image_size

    @property
    def in_channels(self) -> int:
        return self.stage1_config.in_channels

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        for name in ("stage1_config", "stage2_config", "prior_config"):
            if isinstance(output.get(name), dict):
                output[name].pop("transformers_version", None)
        return output


__all__ = ["VQTwoStageConfig"]
