"""How a trained VQ model and its PixelSNAIL priors make images: ancestral sampling through the priors (top level
first, each lower prior conditioned on the codes just sampled above it), then one decoder pass.

`generate_images` is the one entry point: `scripts/sample.py`, the training task's sample grids, the FID of
`hf_vqvae.evaluation` and the generation bundle ([`VQGenerationModel.generate`]) all call it. It works on any VQ
model through the level list (`config.num_levels`, `decode_levels`), so a VQ-VAE is simply a one-level hierarchy.
An audio VQ-VAE (the speech model) is one level too: its "images" are waveforms `(N, T)`, sampled by its WaveNet
with a speaker per sample (a speaker-conditional prior's class labels).
This file is copied into generation bundle repos (`trust_remote_code`): it imports only torch, tqdm and the prior.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from .modeling_pixelsnail import PixelSNAILModel


def default_class_labels(num_samples: int, num_classes: int, device: torch.device | str | None = None):
    """The labels used when a class-conditional model is sampled without any: the classes in turn,
    `0, 1, ..., num_classes - 1, 0, ...`, so every class is shown."""
    return torch.arange(num_samples, device=device) % num_classes


def num_classes_of(priors: Sequence[PixelSNAILModel]) -> int | None:
    """Classes of the class-conditional priors among `priors` (they must agree), or None when none takes a label."""
    counts = {prior.config.num_classes for prior in priors if prior.config.num_classes is not None}
    if len(counts) > 1:
        raise ValueError(f"class-conditional priors must agree on `num_classes`, got {sorted(counts)}")
    return counts.pop() if counts else None


def class_labels_for(
    priors: Sequence[PixelSNAILModel],
    num_samples: int,
    class_labels: torch.LongTensor | int | Sequence[int] | None = None,
    device: torch.device | str | None = None,
) -> torch.LongTensor | None:
    """The `(num_samples,)` labels to sample `priors` with: None if no prior is class-conditional, the given
    labels (one for every sample, or one per sample) checked against `num_classes`, or `default_class_labels`."""
    num_classes = num_classes_of(priors)
    if num_classes is None:
        if class_labels is not None:
            raise ValueError("these priors are not class-conditional: sample without `class_labels`")
        return None
    if class_labels is None:
        return default_class_labels(num_samples, num_classes, device)
    labels = torch.as_tensor(class_labels, dtype=torch.long, device=device).flatten()
    if labels.numel() == 1:
        labels = labels.expand(num_samples)
    if labels.numel() != num_samples:
        raise ValueError(f"`class_labels` must hold one label or {num_samples} (one per sample), got {labels.numel()}")
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise ValueError(f"`class_labels` must lie in [0, {num_classes}), got {labels.tolist()}")
    return labels.contiguous()


@torch.no_grad()
def sample_codes(
    priors: Sequence[PixelSNAILModel],
    num_samples: int,
    class_labels: torch.LongTensor | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    condition: torch.LongTensor | None = None,
    guidance_scale: float | None = None,
) -> list[torch.LongTensor]:
    """Samples one code map per prior, top level first; a prior with a conditioning stack is conditioned on the
    codes the prior before it just sampled (VQ-VAE-2: the bottom prior on the top codes).

    Args:
        priors: consecutive levels, top first. Only the first may go without a prior above it, and then it must be
            unconditional or be given `condition`.
        num_samples: batch size B.
        class_labels (`torch.LongTensor` of shape `(B,)`, *optional*): passed to class-conditional priors.
        condition (`torch.LongTensor` of shape `(B, *latent)`, *optional*): the codes of the level above the first
            prior, for a first prior that is conditional (a lower prior sampled under given upper codes).
        guidance_scale (`float`, *optional*): classifier-free guidance of the class-conditional priors (each must
            have a null class); priors without class labels sample as usual.

    Returns:
        list of `torch.LongTensor` `(B, *latent_l)`, one per prior, top first.
    """
    if guidance_scale is not None and num_classes_of(priors) is None:
        raise ValueError(
            "`guidance_scale` is classifier-free guidance of class-conditional priors, and none of these priors takes "
            "class labels: sample with guidance_scale=None"
        )
    codes: list[torch.LongTensor] = []
    for index, prior in enumerate(priors):
        config = prior.config
        above = codes[-1] if codes else condition
        if config.condition_num_embeddings is not None and above is None:
            raise ValueError(
                f"prior {index} is conditional but has no prior above it to sample its condition: pass `condition`"
            )
        labels = None
        if config.num_classes is not None:
            if class_labels is None:
                raise ValueError(
                    f"prior {index} is class-conditional: pass class_labels (B,) in [0, {config.num_classes})"
                )
            labels = class_labels.to(prior.device)
        codes.append(
            prior.generate(
                num_samples,
                condition=above.to(prior.device) if config.condition_num_embeddings is not None else None,
                class_labels=labels,
                temperature=temperature,
                top_k=top_k,
                generator=generator,
                use_cache=use_cache,
                guidance_scale=guidance_scale if config.num_classes is not None else None,
            )
        )
    return codes


def is_audio_model(vq_model) -> bool:
    """Whether `vq_model` is the speech model (its decoder samples waveforms, given speakers)."""
    return getattr(vq_model.config, "model_type", None) == "audio_vqvae"


def speaker_ids_for(vq_model, num_samples: int, class_labels: torch.LongTensor | None) -> torch.LongTensor | None:
    """The speakers a speech decoder samples `num_samples` clips with: a speaker-conditional prior's class labels
    (its classes are the speakers), else every speaker in turn; None for a decoder without speakers."""
    num_speakers = vq_model.config.num_speakers
    if not num_speakers:
        return None
    if class_labels is not None:
        return class_labels
    return default_class_labels(num_samples, num_speakers, vq_model.device)


@torch.no_grad()
def decode_codes(
    vq_model,
    codes: Sequence[torch.LongTensor],
    first_level: int = 0,
    *,
    speaker_ids: torch.LongTensor | int | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> torch.FloatTensor:
    """Pixels `(B, C, H, W)` in [-1, 1] from the code maps of consecutive levels, top first, the first of them at
    level `first_level` (0 is the top). The levels not given are left out of the decoder (`decode_levels`): a
    hierarchy sampled by fewer priors than it has levels decodes from the upper levels alone.

    An audio VQ-VAE's one code sequence `(B, T / f)` gives waveforms `(B, T)` in [-1, 1], sampled by its WaveNet
    from `generator` with `speaker_ids` (`(B,)` or one id; default every speaker in turn), with a progress bar if
    `progress`."""
    if is_audio_model(vq_model):
        if len(codes) != 1 or first_level != 0:
            raise ValueError(f"an audio VQ-VAE has one level of codes: got {len(codes)} from level {first_level}")
        if speaker_ids is None:
            speaker_ids = speaker_ids_for(vq_model, len(codes[0]), None)
        return vq_model.decode(codes[0], speaker_ids=speaker_ids, generator=generator, progress=progress)
    if getattr(vq_model.config, "input_num_embeddings", None) is not None:
        raise ValueError(
            "this VQ model reads and writes code maps (stage 2 of a two-stage model): its decoder gives logits over "
            "stage 1's codes, not pixels; decode through both stages with VQTwoStageModel"
        )
    num_levels = vq_model.config.num_levels
    if not codes or first_level < 0 or first_level + len(codes) > num_levels:
        raise ValueError(
            f"the VQ model has {num_levels} level(s): {len(codes)} code map(s) from level {first_level} do not fit"
        )
    device = vq_model.device
    levels = [None] * num_levels
    levels[first_level : first_level + len(codes)] = [level_codes.to(device) for level_codes in codes]
    return vq_model.decode_levels(levels).clamp(-1, 1)


@torch.no_grad()
def generate_images(
    priors: Sequence[PixelSNAILModel],
    vq_model,
    num_samples: int,
    *,
    class_labels: torch.LongTensor | int | Sequence[int] | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    use_cache: bool = True,
    condition: torch.LongTensor | None = None,
    first_level: int | None = None,
    guidance_scale: float | None = None,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = False,
    return_codes: bool = False,
) -> torch.FloatTensor | tuple[torch.FloatTensor, list[torch.LongTensor]]:
    """`num_samples` images `(N, C, H, W)` in [-1, 1]: codes sampled through `priors` (`sample_codes`), decoded by
    `vq_model` (`decode_codes`). For an audio VQ-VAE, waveforms `(N, T)`: the WaveNet samples from the same
    generator, each clip with its class label as the speaker (`speaker_ids_for`).

    Args:
        priors: the priors of consecutive levels, top first (see `sample_codes`).
        vq_model: the VQ-VAE or VQ-VAE-2 the priors' codes come from.
        class_labels: for class-conditional priors, one label or one per image; default `default_class_labels`.
        temperature, top_k, use_cache: passed to each prior's `generate`.
        generator: the random source; or `seed`, which seeds a new one on the priors' device (not both).
        condition: the given codes `(N, *latent)` of the level above the first prior, decoded with the samples.
        first_level: the level of `priors[0]` (0 is the top), so that the codes decode at their own levels; default
            0, or 1 with `condition`.
        guidance_scale: classifier-free guidance of the class-conditional priors (see `PixelSNAILModel.generate`).
        batch_size: sample this many images at a time (default: all at once); every batch draws from the same
            generator, so the same call gives the same images.
        device: where the images are gathered (default: the VQ model's); `"cpu"` keeps large sets off the GPU.
        progress: show a tqdm bar.
        return_codes: also return the sampled code maps, one per prior, top first.

    Returns:
        the images, or `(images, codes)` with `return_codes=True`.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples <= 0:
        raise ValueError(f"the number of images must be a positive integer, got {num_samples!r}")
    if not priors:
        raise ValueError("generate_images needs at least one prior (top level first)")
    prior_device = priors[0].device
    if seed is not None:
        if generator is not None:
            raise ValueError("pass `generator` or `seed`, not both")
        generator = torch.Generator(device=prior_device).manual_seed(seed)
    labels = class_labels_for(priors, num_samples, class_labels, prior_device)
    given = [] if condition is None else [condition]
    first_level = len(given) if first_level is None else first_level
    batch_size = batch_size or num_samples
    # A speech decoder samples too: with the clips' speakers, from the same random source, with its own progress.
    speakers = speaker_ids_for(vq_model, num_samples, labels) if is_audio_model(vq_model) else None
    images, codes = [], []
    with tqdm(total=num_samples, desc="sample", unit="img", disable=not progress) as bar:
        for start in range(0, num_samples, batch_size):
            rows = slice(start, min(start + batch_size, num_samples))
            size = rows.stop - rows.start
            batch_codes = sample_codes(
                priors,
                size,
                None if labels is None else labels[rows],
                temperature,
                top_k,
                generator,
                use_cache,
                condition=None if condition is None else condition[rows],
                guidance_scale=guidance_scale,
            )
            decoding = {}
            if is_audio_model(vq_model):
                decoding = {"speaker_ids": None if speakers is None else speakers[rows], "generator": generator,
                            "progress": progress}  # fmt: skip
            pixels = decode_codes(
                vq_model, [level[rows] for level in given] + batch_codes, first_level - len(given), **decoding
            )
            images.append(pixels if device is None else pixels.to(device))
            codes.append(batch_codes)
            bar.update(size)
    pixels = torch.cat(images)
    if not return_codes:
        return pixels
    return pixels, [torch.cat(level) for level in zip(*codes)]


__all__ = [
    "class_labels_for",
    "decode_codes",
    "default_class_labels",
    "generate_images",
    "is_audio_model",
    "num_classes_of",
    "sample_codes",
    "speaker_ids_for",
]
