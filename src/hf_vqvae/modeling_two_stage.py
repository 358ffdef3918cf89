"""The VQ-VAE paper's two-stage model (section 4.2) as ONE `PreTrainedModel`: a VQ-VAE over frames (stage 1), a VQ-VAE
over stage 1's code maps (stage 2, `input_num_embeddings` set: code embeddings in, logits over the codes out) and a
PixelSNAIL prior over stage 2's few codes. Samples go prior -> stage-2 decoder -> stage-1 decoder; only the last
touches pixels."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_two_stage import VQTwoStageConfig
from .modeling_pixelsnail import PixelSNAILModel
from .modeling_utils import ComposedPreTrainedMixin
from .modeling_vqvae import VQVAEModel


@dataclass
class VQTwoStageOutput(ModelOutput):
    """
    Output of [`VQTwoStageModel.forward`]: a frame through both stages and back.

    Args:
        reconstruction (`torch.FloatTensor` of shape `(B, C, H, W)`): the frame decoded from its stage-2 codes
            through both decoders, in [-1, 1].
        codes (`torch.LongTensor` of shape `(B, h2, w2)`): the stage-2 (top) codes.
        stage1_codes (`torch.LongTensor` of shape `(B, h1, w1)`): stage 1's codes of the frame.
        recovered_stage1_codes (`torch.LongTensor` of shape `(B, h1, w1)`): stage 1's codes as stage 2 recovers them.
    """

    reconstruction: torch.FloatTensor | None = None
    codes: torch.LongTensor | None = None
    stage1_codes: torch.LongTensor | None = None
    recovered_stage1_codes: torch.LongTensor | None = None


class VQTwoStagePreTrainedModel(ComposedPreTrainedMixin, PreTrainedModel):
    config_class = VQTwoStageConfig
    base_model_prefix = "vq_two_stage"


class VQTwoStageModel(VQTwoStagePreTrainedModel):
    """`stage1` (frames <-> codes), `stage2` (codes <-> top codes) and `prior` (over top codes).

    Example:

    ```python
    >>> import torch
    >>> from hf_vqvae import PixelSNAILConfig, PixelSNAILModel, VQTwoStageModel, VQVAEConfig, VQVAEModel
    >>> small = dict(hidden_channels=16, residual_channels=8, embedding_dim=8)
    >>> stage1 = VQVAEModel(VQVAEConfig(image_size=84, num_embeddings=64, **small))
    >>> stage2 = VQVAEModel(VQVAEConfig(image_size=21, downsample_factor=8, in_channels=16, num_embeddings=32,
    ...                                 input_num_embeddings=64, **small))
    >>> prior = PixelSNAILModel(PixelSNAILConfig(num_embeddings=32, latent_height=3, latent_width=3))
    >>> VQTwoStageModel.from_parts(stage1, stage2, prior).generate(2).shape
    torch.Size([2, 3, 84, 84])
    ```
    """

    def __init__(self, config: VQTwoStageConfig) -> None:
        super().__init__(config)
        self.stage1 = VQVAEModel(config.stage1_config)
        self.stage2 = VQVAEModel(config.stage2_config)
        self.prior = PixelSNAILModel(config.prior_config)
        self.post_init()

    @classmethod
    def from_parts(cls, stage1: VQVAEModel, stage2: VQVAEModel, prior: PixelSNAILModel) -> VQTwoStageModel:
        """Bundles trained parts (copies of their weights and buffers, bitwise)."""
        config = VQTwoStageConfig(
            stage1_config=stage1.config.to_dict(),
            stage2_config=stage2.config.to_dict(),
            prior_config=prior.config.to_dict(),
        )
        model = cls(config).to(device=stage1.device, dtype=stage1.dtype)
        for target, part in ((model.stage1, stage1), (model.stage2, stage2), (model.prior, prior)):
            target.load_state_dict(part.state_dict())
        return model.eval()

    @torch.no_grad()
    def encode(self, pixel_values: torch.FloatTensor) -> torch.LongTensor:
        """Top codes `(B, h2, w2)` of frames `(B, C, H, W)` in [-1, 1]."""
        return self.stage2.encode(self.stage1.encode(pixel_values))

    @torch.no_grad()
    def decode_stage1_codes(
        self, codes: torch.LongTensor, temperature: float = 0.0, generator: torch.Generator | None = None
    ) -> torch.LongTensor:
        """Stage 1's code map from top codes: the most likely code at each position (`temperature=0`), or a sample
        of stage 2's categorical distribution at that temperature."""
        logits = self.stage2.decode(codes.to(self.device))
        if temperature == 0:
            return logits.argmax(1)
        probs = torch.softmax(logits.float().movedim(1, -1) / temperature, dim=-1)
        flat = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator)
        return flat.view(probs.shape[:-1])

    @torch.no_grad()
    def decode(self, codes: torch.LongTensor, temperature: float = 0.0) -> torch.FloatTensor:
        """Frames `(B, C, H, W)` in [-1, 1] from top codes `(B, h2, w2)`, through both decoders."""
        return self.stage1.decode(self.decode_stage1_codes(codes, temperature)).clamp(-1, 1)

    @torch.no_grad()
    def forward(self, pixel_values: torch.FloatTensor, return_dict: bool | None = None) -> VQTwoStageOutput | tuple:
        """A frame through both encoders and both decoders. See [`VQTwoStageOutput`]."""
        stage1_codes = self.stage1.encode(pixel_values)
        codes = self.stage2.encode(stage1_codes)
        recovered = self.decode_stage1_codes(codes)
        output = VQTwoStageOutput(
            reconstruction=self.stage1.decode(recovered).clamp(-1, 1),
            codes=codes,
            stage1_codes=stage1_codes,
            recovered_stage1_codes=recovered,
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    @torch.no_grad()
    def generate(
        self,
        num_images: int = 1,
        class_labels=None,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
        return_codes: bool = False,
    ) -> torch.FloatTensor | tuple[torch.FloatTensor, torch.LongTensor]:
        """Samples frames: top codes from the prior (ancestral sampling, cached), then both decoders (stage 2's most
        likely code at each position).

        Args:
            num_images (`int`): batch size B.
            class_labels: must be None (the prior is unconditional); accepted so that the
                `unconditional-image-generation` pipeline serves this model as it serves any generation bundle.

        Returns:
            frames `(B, C, H, W)` in [-1, 1], or `(frames, top_codes)` with `return_codes=True`.
        """
        if isinstance(num_images, bool) or not isinstance(num_images, int) or num_images <= 0:
            raise ValueError(f"`num_images` must be a positive integer, got {num_images!r}")
        if class_labels is not None:
            raise ValueError("this two-stage model's prior is unconditional: generate without `class_labels`")
        codes = self.prior.generate(
            num_images, temperature=temperature, top_k=top_k, generator=generator, use_cache=use_cache
        )
        frames = self.decode(codes)
        return (frames, codes) if return_codes else frames


__all__ = ["VQTwoStageModel", "VQTwoStageOutput", "VQTwoStagePreTrainedModel"]
