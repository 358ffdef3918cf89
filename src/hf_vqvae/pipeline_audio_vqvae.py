"""`transformers` pipelines for the audio VQ-VAE, written to be copied into Hub repos and loaded with
`pipeline(task, model=repo_id, trust_remote_code=True)` where hf_vqvae is not installed: this file imports only
transformers, torch, numpy and soundfile (no `hf_vqvae`, no relative imports), and reads the model by duck typing.

* `audio-to-audio` ([`AudioVQVAEAudioToAudioPipeline`]): reconstruction (encode, then sample the WaveNet with the
  source speaker's id) or, with `target_speaker`, the paper's voice conversion.
* `feature-extraction` ([`AudioVQVAEFeatureExtractionPipeline`]): the codes (250 per second) and their embeddings.

Inputs, like transformers' audio pipelines: a local file path, raw file bytes, a numpy array or torch tensor with
`sampling_rate=`, or a `{"array", "sampling_rate"}` dict (`{"raw", "sampling_rate"}` too), or a list of them.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
import torch
from transformers import Pipeline


def _read_audio(audio: Any, sampling_rate: int | None) -> dict[str, Any]:
    """Any supported input as `{"array": (T,) or (T, C) float32, "sampling_rate": int}`."""
    if isinstance(audio, os.PathLike):
        audio = os.fspath(audio)
    if isinstance(audio, (str, bytes, bytearray)):
        import soundfile

        source = audio if isinstance(audio, str) else io.BytesIO(audio)
        if isinstance(audio, str) and not os.path.isfile(audio):
            raise ValueError(f"no audio file at {audio!r} (URLs are not fetched: download the file first)")
        try:
            array, rate = soundfile.read(source, dtype="float32")
        except (RuntimeError, soundfile.LibsndfileError) as error:
            raise ValueError(f"cannot decode the audio ({error}); WAV, FLAC and Ogg are read") from error
        return {"array": array, "sampling_rate": rate}
    if isinstance(audio, dict):
        array = audio.get("array", audio.get("raw"))
        if array is None:
            raise ValueError(f"an audio dict needs an 'array' (or 'raw') key, got keys {sorted(audio)}")
        return {"array": array, "sampling_rate": audio.get("sampling_rate", sampling_rate)}
    if isinstance(audio, (np.ndarray, torch.Tensor)):
        if sampling_rate is None:
            raise ValueError("an array input needs its rate: pass sampling_rate=... to the pipeline call")
        return {"array": audio, "sampling_rate": sampling_rate}
    raise ValueError(
        f"unsupported audio input of type {type(audio).__name__}: give a file path, file bytes, an array with "
        "sampling_rate=..., or a {'array', 'sampling_rate'} dict"
    )


def _speaker_id(config, speaker: int | str | None, role: str) -> int | None:
    """A speaker id from an id or a name in `config.speaker_names`; None stays None."""
    if speaker is None:
        return None
    names = list(getattr(config, "speaker_names", None) or [])
    if isinstance(speaker, str):
        if speaker not in names:
            raise ValueError(f"unknown {role} {speaker!r}; this model's speakers: {names}")
        return names.index(speaker)
    if not 0 <= int(speaker) < config.num_speakers:
        raise ValueError(f"{role} {speaker} is not in [0, {config.num_speakers}); speakers: {names}")
    return int(speaker)


class _AudioVQPipeline(Pipeline):
    """Shared preprocessing: any audio input -> `input_values` (1, T) at the model's rate, mono, in [-1, 1]."""

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = True
    _load_tokenizer = False

    def preprocess(self, audio, sampling_rate: int | None = None) -> dict[str, torch.Tensor]:
        inputs = self.feature_extractor(_read_audio(audio, sampling_rate), return_tensors="pt")
        return {"input_values": inputs.input_values.to(self.model.dtype), "attention_mask": inputs.attention_mask}


class AudioVQVAEAudioToAudioPipeline(_AudioVQPipeline):
    """Encode, then decode by sampling the speaker-conditioned WaveNet (one sample per step: on a CPU thread about
    100-1000 samples per second depending on the model size, so keep clips short).

    Example:

    ```python
    >>> from transformers import pipeline
    >>> convert = pipeline("audio-to-audio", model="org/audio-vqvae", trust_remote_code=True)
    >>> out = convert("hello.wav", source_speaker="Allison Smith", seed=0)  # doctest: +SKIP
    >>> out = convert("hello.wav", target_speaker="Carlo Flora", seed=0)  # doctest: +SKIP
    >>> out["audio"].shape, out["sampling_rate"]  # doctest: +SKIP
    ((16000,), 16000)
    ```

    Call args:
        audio: a file path, file bytes, an array (with `sampling_rate=`), a `{"array", "sampling_rate"}` dict, or a
            list of them.
        sampling_rate (`int`, *optional*): the rate of array inputs.
        source_speaker (`int` or `str`, *optional*): who speaks in the input (id or name); reconstruction decodes
            with it.
        target_speaker (`int` or `str`, *optional*): decode with this speaker instead: voice conversion.
        temperature (`float`, defaults to 1.0): of the WaveNet's softmax; 0 takes the most likely sample.
        seed (`int`, *optional*): the same seed gives the same waveform.

    Returns (per input) `{"audio": float32 array (T,), "sampling_rate": int}`, `T` the input's length at the model's
    rate, padded to a multiple of its downsampling factor.
    """

    def _sanitize_parameters(
        self, sampling_rate=None, source_speaker=None, target_speaker=None, temperature=None, seed=None, **kwargs
    ):
        preprocess = {"sampling_rate": sampling_rate} if sampling_rate is not None else {}
        forward: dict[str, Any] = {}
        config = self.model.config
        speaker = _speaker_id(config, target_speaker, "target_speaker")
        speaker = speaker if speaker is not None else _speaker_id(config, source_speaker, "source_speaker")
        if speaker is not None:
            forward["speaker"] = speaker
        if temperature is not None:
            forward["temperature"] = float(temperature)
        if seed is not None:
            forward["seed"] = int(seed)
        return preprocess, forward, {}

    def _forward(self, model_inputs, speaker: int | None = None, temperature: float = 1.0, seed: int | None = None):
        if speaker is None and self.model.config.num_speakers:
            names = list(self.model.config.speaker_names or range(self.model.config.num_speakers))
            raise ValueError(f"pass source_speaker= (reconstruction) or target_speaker= (conversion), one of {names}")
        generator = torch.Generator(device=self.model.device)
        if seed is not None:
            generator.manual_seed(seed)
        codes = self.model.encode(model_inputs["input_values"])
        waveform = self.model.decode(codes, speaker_ids=speaker, temperature=temperature, generator=generator)
        return {"audio": waveform}

    def postprocess(self, model_outputs) -> dict[str, Any]:
        return {
            "audio": model_outputs["audio"][0].float().cpu().numpy(),
            "sampling_rate": self.model.config.sampling_rate,
        }


class AudioVQVAEFeatureExtractionPipeline(_AudioVQPipeline):
    """The discrete representation of speech: codes (one per `downsample_factor` samples, 250 per second at 16 kHz)
    and the codebook vectors the decoder reads.

    Example:

    ```python
    >>> from transformers import pipeline
    >>> extract = pipeline("feature-extraction", model="org/audio-vqvae", trust_remote_code=True)
    >>> features = extract("hello.wav", return_tensors=True)  # doctest: +SKIP
    >>> features["codes"].shape, features["quantized"].shape  # doctest: +SKIP
    (torch.Size([250]), torch.Size([64, 250]))
    ```

    Returns (per input) `{"codes": (T / f,), "quantized": (D, T / f)}`, nested lists unless `return_tensors=True`.
    """

    def _sanitize_parameters(self, sampling_rate=None, return_tensors=None, **kwargs):
        preprocess = {"sampling_rate": sampling_rate} if sampling_rate is not None else {}
        postprocess = {"return_tensors": return_tensors} if return_tensors is not None else {}
        return preprocess, {}, postprocess

    def _forward(self, model_inputs) -> dict[str, torch.Tensor]:
        codes = self.model.encode(model_inputs["input_values"])
        return {"codes": codes, "quantized": self.model.quantizer.embed(codes)}

    def postprocess(self, model_outputs, return_tensors: bool = False) -> dict[str, Any]:
        codes, quantized = model_outputs["codes"][0].cpu(), model_outputs["quantized"][0].float().cpu()
        if return_tensors:
            return {"codes": codes, "quantized": quantized}
        return {"codes": codes.tolist(), "quantized": quantized.tolist()}


__all__ = ["AudioVQVAEAudioToAudioPipeline", "AudioVQVAEFeatureExtractionPipeline"]
