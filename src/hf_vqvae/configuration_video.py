"""Configuration of the action-conditioned latent video model (van den Oord et al. 2017, section 4.4): a frame
VQ-VAE and a PixelSNAIL over each next frame's code map, conditioned on the previous frames' codes and the action."""

from __future__ import annotations

import math
from typing import Any

from transformers import PreTrainedConfig

from .configuration_generation import _build_config
from .configuration_pixelsnail import PixelSNAILConfig
from .configuration_vqvae import VQVAEConfig


class VQVideoConfig(PreTrainedConfig):
    r"""
    Configuration of a [`VQVideoModel`]: a VQ-VAE over frames (`vq_config`, whose input is pixels) and the dynamics
    prior (`dynamics_config`), a [`PixelSNAILModel`] over one frame's code map that reads the code maps of the
    `context_frames` frames before it through its conditioning stack (stacked along channels, oldest first:
    `dynamics_config.num_condition_maps`) and the action taken since the last of them as its class label. Video is
    generated entirely in latent space; only the VQ-VAE's decoder touches pixels.

    Args:
        vq_config (`VQVAEConfig` or `dict`): the frame autoencoder (e.g. 84x84 frames -> 21x21 codes, K = 512).
        dynamics_config (`PixelSNAILConfig` or `dict`): must model the VQ-VAE's code maps (same K and map size), be
            conditioned on a code map of the same K and size (`condition_num_embeddings`, `condition_height`,
            `condition_width`), and take one class per action (`num_classes`).
        context_frames (`int`, *optional*): how many previous frames each prediction reads (N); defaults to the
            dynamics prior's `num_condition_maps` (1: a first-order model, the next frame from the last one), and
            must equal it when given.
        teacher_forcing_noise (`float`, defaults to 0.0): in training mode, the share of the predicted frame's own
            codes that the dynamics prior *reads* (its autoregressive input, not its labels and not the previous
            frames) replaced by uniformly drawn codes. Teacher forcing feeds the true codes, so the prior learns to
            lean on the codes already sampled in the frame; in a rollout they are its own samples, and one wrong
            code drags the ones after it in raster order (exposure bias). Noise makes it lean on the previous frames
            and the action instead; 1.0 leaves it only those (each position predicted on its own, a per-position
            classifier). No effect in eval mode. Such a model's rollouts predict each frame in one forward (see
            [`VQVideoModel.predict_codes`]).
        guidance_scale (`float`, *optional*): the classifier-free guidance on the action that rollouts use when
            called without one (`generate`, the pipeline, the demo): each frame is sampled from
            `l_none + s * (l_action - l_none)`, the logits without the action (the null class) and with it. Above 1
            it strengthens what the action does to the view. Needs a dynamics prior trained with a share of the
            actions dropped (`dynamics_config.class_dropout > 0`). None (default): plain conditional sampling.
        id2label (`dict[int, str]`, *optional*): the action names (e.g. ViZDoom's buttons), so that pipelines accept
            `actions=["TURN_LEFT", ...]`.

    Example:

    ```python
    >>> from hf_vqvae import PixelSNAILConfig, VQVAEConfig, VQVideoConfig
    >>> vq = VQVAEConfig(image_size=84, downsample_factor=4, num_embeddings=512)
    >>> dynamics = PixelSNAILConfig(num_embeddings=512, latent_height=21, latent_width=21, num_classes=5,
    ...                             condition_num_embeddings=512, condition_height=21, condition_width=21)
    >>> VQVideoConfig(vq_config=vq, dynamics_config=dynamics).num_actions
    5
    ```
    """

    model_type = "vq_video"

    vq_config: dict | PreTrainedConfig | None = None
    dynamics_config: dict | PreTrainedConfig | None = None
    context_frames: int | None = None
    teacher_forcing_noise: float = 0.0
    guidance_scale: float | None = None

    def __post_init__(self, **kwargs):
        if self.vq_config is None or self.dynamics_config is None:
            raise ValueError(
                "VQVideoConfig needs `vq_config` (the frames' VQ-VAE config) and `dynamics_config` (a PixelSNAIL "
                "config conditioned on the previous frame's codes and on the action)"
            )
        self.vq_config = _build_config(self.vq_config, {"vqvae": VQVAEConfig}, "vq_config")
        self.dynamics_config = _build_config(self.dynamics_config, {"pixelsnail": PixelSNAILConfig}, "dynamics_config")
        self._check_dynamics()
        noise = self.teacher_forcing_noise
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0.0 <= noise <= 1.0:
            raise ValueError(f"`teacher_forcing_noise` must be a number in [0, 1], got {noise!r}")
        self._check_guidance()
        super().__post_init__(**kwargs)

    def _check_guidance(self) -> None:
        scale = self.guidance_scale
        if scale is None:
            return
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale < 0:
            raise ValueError(f"`guidance_scale` must be None or a finite number >= 0, got {scale!r}")
        if self.dynamics_config.null_class_id is None:
            raise ValueError(
                f"`guidance_scale={scale}` needs a dynamics prior trained with a share of the actions dropped "
                "(`dynamics_config.class_dropout > 0`), which learns the logits without the action; this one has no "
                "null class. Leave guidance_scale=None"
            )

    def _check_dynamics(self) -> None:
        """The dynamics prior must predict and read this VQ-VAE's code maps; a mismatch would otherwise surface as
        an index error deep inside an embedding lookup."""
        vq, dynamics = self.vq_config, self.dynamics_config
        if getattr(vq, "input_num_embeddings", None) is not None or vq.spatial_dims != 2:
            raise ValueError("`vq_config` must be a VQ-VAE over images (spatial_dims=2, input_num_embeddings=None)")
        frame = (vq.num_embeddings, vq.latent_size, vq.latent_size)
        got = (dynamics.num_embeddings, *dynamics.latent_shape)
        if got != frame:
            raise ValueError(
                f"dynamics_config models {got[1]}x{got[2]} maps of {got[0]} codes, but the VQ-VAE's frames are "
                f"{frame[1]}x{frame[2]} maps of {frame[0]} codes"
            )
        condition = (dynamics.condition_num_embeddings, *(dynamics.condition_shape or (None, None)))
        if condition != frame:
            raise ValueError(
                "dynamics_config must be conditioned on the previous frame's code map (condition_num_embeddings, "
                f"condition_height, condition_width) = {frame}, got {condition}"
            )
        if dynamics.num_classes is None:
            raise ValueError("dynamics_config must take the action as its class label: set `num_classes`")
        maps = dynamics.num_condition_maps
        if self.context_frames is None:
            self.context_frames = maps
        if isinstance(self.context_frames, bool) or not isinstance(self.context_frames, int):
            raise ValueError(f"`context_frames` must be a positive integer, got {self.context_frames!r}")
        if self.context_frames != maps:
            raise ValueError(
                f"`context_frames` ({self.context_frames}) must equal dynamics_config.num_condition_maps ({maps}): "
                "the dynamics prior reads one condition map per context frame"
            )

    @property
    def num_actions(self) -> int:
        return self.dynamics_config.num_classes

    @property
    def latent_shape(self) -> tuple[int, int]:
        return tuple(self.dynamics_config.latent_shape)

    @property
    def image_size(self) -> int:
        return self.vq_config.image_size

    @property
    def in_channels(self) -> int:
        return self.vq_config.in_channels

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        for name in ("vq_config", "dynamics_config"):
            if isinstance(output.get(name), dict):
                output[name].pop("transformers_version", None)
        return output


__all__ = ["VQVideoConfig"]
