"""`unconditional-audio-generation`: speech from a speech generation bundle (an audio VQ-VAE and a 1-D PixelSNAIL
over its codes, [`VQGenerationModel`]). Written to be copied into Hub repos and loaded with
`pipeline("unconditional-audio-generation", model=repo_id, trust_remote_code=True)` where hf_vqvae is not installed:
it imports transformers, torch, numpy and the image generation pipeline it extends (copied beside it), and reads the
model by duck typing.

A custom task name: transformers' `text-to-audio` reads text, and there is no built-in task for sampling audio from
nothing (or from a speaker); this one mirrors `unconditional-image-generation`.
"""

from __future__ import annotations

from typing import Any

import torch

from .pipeline_vqvae import VQGenerationPipeline


class VQAudioGenerationPipeline(VQGenerationPipeline):
    """Speech from a speech generation bundle: code sequences sampled by its prior (speaker-conditional, or not),
    decoded by the WaveNet with each clip's speaker.

    Example:

    ```python
    >>> from transformers import pipeline
    >>> speak = pipeline("unconditional-audio-generation", model="org/audio-vq-generation", trust_remote_code=True)
    >>> clips = speak(num_samples=2, speaker="Allison Smith", seed=0)  # doctest: +SKIP
    >>> clips[0]["audio"].shape, clips[0]["sampling_rate"]  # doctest: +SKIP
    ((16384,), 16000)
    ```

    Call args:
        num_samples (`int`, defaults to 1): how many clips.
        speaker (`int`, `str` or a list of them, *optional*): for a speaker-conditional prior, one speaker (id or
            name, as the config's `id2label` names them) for every clip or one per clip. Without it the clips cycle
            through the speakers.
        seed (`int`, *optional*): seeds the prior and the WaveNet; the same seed gives the same waveforms.
        temperature (`float`, defaults to 1.0): of the prior's softmax (the WaveNet samples at 1).
        top_k (`int`, *optional*): the prior samples among the `top_k` most likely codes only.
        guidance_scale (`float`, *optional*): classifier-free guidance of a prior trained with a null speaker.
        use_cache (`bool`, defaults to `True`): incremental sampling (fast); `False` gives the same codes slowly.

    Returns:
        a list of `num_samples` dicts `{"audio": float32 array (T,) in [-1, 1], "sampling_rate": int}`, `T` the
        bundle's `num_samples` (the prior's codes times 64).
    """

    _load_image_processor = False

    def __call__(self, num_samples: int = 1, speaker=None, **kwargs):
        if not getattr(self.model.config, "is_audio", False):
            raise ValueError("this bundle makes images, not speech: use the 'unconditional-image-generation' pipeline")
        return super().__call__(num_samples, class_labels=speaker, **kwargs)

    def _label_ids(self, class_labels) -> list[int] | None:
        try:
            return super()._label_ids(class_labels)
        except ValueError:
            names = list((getattr(self.model.config, "id2label", None) or {}).values())
            raise ValueError(f"unknown speaker {class_labels!r}: this model's speakers are {names}") from None

    def postprocess(self, model_outputs: dict[str, torch.Tensor], **kwargs) -> list[dict[str, Any]]:
        # The image pipeline's `_forward` returns what `generate` gives under "images": here waveforms (N, T).
        rate = self.model.config.sampling_rate
        return [{"audio": clip.numpy(), "sampling_rate": rate} for clip in model_outputs["images"].float().cpu()]


__all__ = ["VQAudioGenerationPipeline"]
