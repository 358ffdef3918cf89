"""A generation bundle: a VQ-VAE(-2) and its PixelSNAIL priors as ONE `PreTrainedModel`, so that one
`from_pretrained` (or `pipeline("unconditional-image-generation", model=repo_id, trust_remote_code=True)`) gives
images: ancestral sampling through the priors, top first, then decoding. The same bundle holds the speech model (an
audio VQ-VAE and a 1-D prior over its codes, `pipeline("unconditional-audio-generation", ...)`): `generate` then
returns waveforms, the WaveNet decoding with the speaker the prior was conditioned on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

from .configuration_generation import VQGenerationConfig
from .modeling_audio_vqvae import AudioVQVAEModel
from .modeling_pixelsnail import PixelSNAILModel
from .modeling_utils import ComposedPreTrainedMixin
from .modeling_vqvae import VQVAEModel
from .modeling_vqvae2 import VQVAE2Model
from .sampling import decode_codes, generate_images

VQ_MODEL_CLASSES: dict[str, type[PreTrainedModel]] = {
    "vqvae": VQVAEModel,
    "vqvae2": VQVAE2Model,
    "audio_vqvae": AudioVQVAEModel,
}


class VQGenerationPreTrainedModel(ComposedPreTrainedMixin, PreTrainedModel):
    config_class = VQGenerationConfig
    base_model_prefix = "vq_generation"


class VQGenerationModel(VQGenerationPreTrainedModel):
    """A VQ-VAE or VQ-VAE-2 (`vq_model`) and the PixelSNAIL priors over its codes (`priors`, top level first).

    `generate` samples images; `forward`, `encode` and `decode` are those of the VQ model, so the bundle also serves
    reconstruction and code extraction.

    Example:

    ```python
    >>> import torch
    >>> from hf_vqvae import PixelSNAILConfig, PixelSNAILModel, VQGenerationModel, VQVAEConfig, VQVAEModel
    >>> vq_model = VQVAEModel(VQVAEConfig(image_size=16, hidden_channels=16, residual_channels=8, num_embeddings=32))
    >>> prior_config = PixelSNAILConfig(num_embeddings=32, latent_height=4, latent_width=4, hidden_channels=16)
    >>> prior = PixelSNAILModel(prior_config)
    >>> bundle = VQGenerationModel.from_parts(vq_model, [prior])
    >>> bundle.generate(2, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([2, 3, 16, 16])
    ```
    """

    def __init__(self, config: VQGenerationConfig) -> None:
        super().__init__(config)
        self.vq_model = VQ_MODEL_CLASSES[config.vq_config.model_type](config.vq_config)
        self.priors = nn.ModuleList(PixelSNAILModel(prior_config) for prior_config in config.prior_configs)
        self.post_init()

    @classmethod
    def from_parts(
        cls,
        vq_model: PreTrainedModel,
        priors: Sequence[PixelSNAILModel],
        id2label: dict[int, str] | None = None,
    ) -> VQGenerationModel:
        """Bundles trained parts: the VQ model and its priors (top level first). The bundle holds copies of their
        weights and buffers (EMA state included), bitwise equal, on the VQ model's device and dtype.

        Args:
            vq_model ([`VQVAEModel`] or [`VQVAE2Model`]): the decoder.
            priors (sequence of [`PixelSNAILModel`]): top level first.
            id2label (`dict[int, str]`, *optional*): class names of class-conditional priors.
        """
        speakers = getattr(vq_model.config, "speaker_names", None)
        if id2label is None and speakers and any(prior.config.num_classes for prior in priors):
            id2label = dict(enumerate(speakers))  # a speech prior's classes are the speakers
        config = VQGenerationConfig(
            vq_config=vq_model.config.to_dict(),
            prior_configs=[prior.config.to_dict() for prior in priors],
            id2label=id2label,
            label2id={name: index for index, name in id2label.items()} if id2label else None,
        )
        bundle = cls(config).to(device=vq_model.device, dtype=vq_model.dtype)
        # Strict loads: every parameter and persistent buffer of each part, copied bitwise.
        bundle.vq_model.load_state_dict(vq_model.state_dict())
        for target, prior in zip(bundle.priors, priors):
            target.load_state_dict(prior.state_dict())
        return bundle.eval()

    # ------------------------------------------------------------------------------------------- the VQ model
    def forward(self, pixel_values: torch.FloatTensor | None = None, return_dict: bool | None = None, **kwargs):
        """The VQ model's forward: `pixel_values` `(B, C, H, W)` in [-1, 1] -> its output (`reconstruction`, `codes`,
        `loss`, ...). See [`VQVAEModel.forward`] / [`VQVAE2Model.forward`]; a speech bundle takes the arguments of
        [`AudioVQVAEModel.forward`] (`input_values`, `speaker_ids`, ...)."""
        inputs = () if pixel_values is None else (pixel_values,)
        return self.vq_model(*inputs, return_dict=return_dict, **kwargs)

    @torch.no_grad()
    def encode(self, pixel_values: torch.FloatTensor):
        """Codes of images `(B, C, H, W)` in [-1, 1]: `(B, h, w)` for a VQ-VAE, one map per level (top first) for
        a VQ-VAE-2; of waveforms `(B, T)` for speech: `(B, T / 64)`."""
        return self.vq_model.encode(pixel_values)

    @torch.no_grad()
    def decode(self, codes: Sequence[torch.LongTensor] | torch.LongTensor, **audio_options: Any) -> torch.FloatTensor:
        """Pixels `(B, C, H, W)` in [-1, 1] from the code maps of the upper levels, top first (as `generate` returns
        them with `return_codes=True`: one per prior); the levels below them are left out of the decoder. A lone
        map `(B, h, w)` is the top level's. Speech: waveforms `(B, T)` sampled by the WaveNet from codes `(B, T / 64)`
        with `speaker_ids` (and `generator`, `progress`), see [`sampling.decode_codes`]."""
        return decode_codes(self.vq_model, [codes] if torch.is_tensor(codes) else list(codes), **audio_options)

    # ---------------------------------------------------------------------------------------------- sampling
    @torch.no_grad()
    def generate(
        self,
        num_images: int = 1,
        class_labels: torch.LongTensor | int | Sequence[int] | None = None,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
        return_codes: bool = False,
        guidance_scale: float | None = None,
        progress: bool = False,
    ) -> torch.FloatTensor | tuple[torch.FloatTensor, list[torch.LongTensor]]:
        """Samples images: codes by ancestral sampling (the top prior, then each lower prior conditioned on the codes
        above it), decoded by the VQ model. A speech bundle samples waveforms `(B, num_samples)` at `sampling_rate`:
        code sequences from the prior, then the WaveNet with the speaker of each sample (`class_labels` are the
        speakers; an unconditional prior's samples cycle through the speakers of a speaker-conditioned decoder).

        Args:
            num_images (`int`): batch size B.
            class_labels (`torch.LongTensor` of shape `(B,)`, `int` or list of `int`, *optional*): classes for
                class-conditional priors; one int is used for every image. Without labels, a class-conditional
                bundle cycles through its classes (`0, 1, ..., num_classes - 1, 0, ...`).
            temperature (`float`): divides the logits before sampling; > 0.
            top_k (`int`, *optional*): sample among the `top_k` most likely codes only.
            generator (`torch.Generator`, *optional*): the random source; a seeded one makes the images reproducible.
            use_cache (`bool`): incremental sampling (one position of work per step); `False` re-runs each prior on
                the whole map at every step (same samples, much slower).
            return_codes (`bool`): also return the sampled code maps, top first.
            guidance_scale (`float`, *optional*): classifier-free guidance of class-conditional priors trained with a
                null class (`class_dropout > 0`): codes are sampled from `l_uncond + s * (l_cond - l_uncond)`, both
                logits from one forward over a doubled batch. 1 is plain conditional sampling, 0 unconditional;
                above 1 makes images more typical of their class (less diverse). None (default): no guidance.

            progress (`bool`): show progress bars (the WaveNet's sample by sample for speech).

        Returns:
            pixels `(B, C, H, W)` in [-1, 1] (speech: waveforms `(B, T)` in [-1, 1]), or `(pixels, codes)` with
            `return_codes=True`.
        """
        return generate_images(
            list(self.priors),
            self.vq_model,
            num_images,
            class_labels=class_labels,
            temperature=temperature,
            top_k=top_k,
            generator=generator,
            use_cache=use_cache,
            return_codes=return_codes,
            guidance_scale=guidance_scale,
            progress=progress,
        )


__all__ = ["VQGenerationModel", "VQGenerationPreTrainedModel"]
