"""Feature extractor of the audio VQ-VAE: any waveform to what the model reads, 16 kHz mono float32 in [-1, 1].

Resampling uses soxr (or scipy's polyphase filter where soxr is missing); torchaudio is deliberately not used (the
PyPI build does not match recent torch). This file imports nothing from hf_vqvae, so that it can be copied into a
Hub repo and loaded with `trust_remote_code=True`.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np
from transformers import BatchFeature, SequenceFeatureExtractor
from transformers.utils import TensorType


def _integer_to_float(samples: np.ndarray) -> np.ndarray:
    """PCM integers to floats in [-1, 1): signed ones by their full scale, unsigned 8-bit around 128 (as in WAV)."""
    if samples.dtype == np.uint8:
        return (samples.astype(np.float32) - 128.0) / 128.0
    return samples.astype(np.float32) / float(-np.iinfo(samples.dtype).min)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """`(T,)`, `(channels, T)` or `(T, channels)` to `(T,)` by averaging the channels. A 2-D array's shorter axis is
    taken to be the channels (any real recording has more samples than channels)."""
    if samples.ndim == 1:
        return samples
    if samples.ndim != 2:
        raise ValueError(f"audio must be 1-D (samples) or 2-D (channels and samples), got shape {samples.shape}")
    channel_axis = 0 if samples.shape[0] <= samples.shape[1] else 1
    return samples.mean(axis=channel_axis)


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited resampling of a 1-D float signal (soxr's high quality; scipy's polyphase filter otherwise)."""
    if rate_in == rate_out:
        return samples
    try:
        import soxr

        return soxr.resample(samples, rate_in, rate_out, quality="HQ").astype(np.float32, copy=False)
    except ImportError:
        from scipy.signal import resample_poly

        ratio = Fraction(rate_out, rate_in)
        return resample_poly(samples, ratio.numerator, ratio.denominator).astype(np.float32, copy=False)


def resample_to_mono(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Any PCM or float array to a float32 `(T,)` at `rate_out`."""
    samples = np.asarray(samples)
    if np.issubdtype(samples.dtype, np.integer):
        samples = _integer_to_float(samples)
    return resample(to_mono(samples.astype(np.float32, copy=False)), int(rate_in), int(rate_out))


class VQVAEAudioFeatureExtractor(SequenceFeatureExtractor):
    r"""
    Turns raw audio into `input_values` `(B, T)` float32 in [-1, 1] at `sampling_rate` and an `attention_mask`
    `(B, T)` (1 on real samples, 0 on padding).

    Each example is converted to float (PCM integers by their full scale), mixed to mono (the shorter axis of a 2-D
    array is taken as channels), resampled from its own rate to `sampling_rate`, and clipped to [-1, 1]. A batch is
    padded with silence on the right to its longest example, rounded up to `pad_to_multiple_of`, the model's
    downsampling factor, so that every latent frame covers whole samples.

    Args:
        sampling_rate (`int`, defaults to 16000): rate the model works at.
        pad_to_multiple_of (`int`, defaults to 64): lengths are padded to a multiple of this (the encoder's
            downsampling factor, 2^6 in the paper).
        padding_value (`float`, defaults to 0.0): value of padded samples (silence).
        return_attention_mask (`bool`, defaults to `True`).

    Example:

    ```python
    >>> import numpy as np
    >>> from hf_vqvae import VQVAEAudioFeatureExtractor
    >>> extractor = VQVAEAudioFeatureExtractor()
    >>> stereo_44k = np.zeros((2, 44100), dtype=np.float32)
    >>> batch = extractor(stereo_44k, sampling_rate=44100, return_tensors="pt")
    >>> batch.input_values.shape  # 16000 samples, padded to a multiple of 64
    torch.Size([1, 16000])
    ```
    """

    model_input_names = ["input_values", "attention_mask"]

    def __init__(
        self,
        feature_size: int = 1,
        sampling_rate: int = 16000,
        padding_value: float = 0.0,
        pad_to_multiple_of: int = 64,
        return_attention_mask: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(
            feature_size=feature_size,
            sampling_rate=sampling_rate,
            padding_value=padding_value,
            return_attention_mask=return_attention_mask,
            **kwargs,
        )
        if not isinstance(pad_to_multiple_of, int) or pad_to_multiple_of < 1:
            raise ValueError(f"`pad_to_multiple_of` must be a positive integer, got {pad_to_multiple_of!r}")
        self.pad_to_multiple_of = pad_to_multiple_of

    def _batch(self, raw_audio: Any, sampling_rate: int | None) -> tuple[list[Any], list[int | None]]:
        """A list of `(array, rate)` from one array, a list of arrays, or `datasets`-style dicts
        (`{"array", "sampling_rate"}`) which carry their own rate."""
        # An array (or tensor) is always ONE example, 2-D meaning channels: a batch is a list. (transformers' speech
        # extractors read a 2-D array as a batch of mono clips; here that would silently mix a stereo file's
        # channels into two examples, or a batch into one.)
        single = isinstance(raw_audio, dict) or hasattr(raw_audio, "ndim")
        if isinstance(raw_audio, (list, tuple)) and raw_audio and isinstance(raw_audio[0], (int, float)):
            single = True  # a plain list of samples
        examples = [raw_audio] if single else list(raw_audio)
        arrays, rates = [], []
        for example in examples:
            if isinstance(example, dict):
                if "array" not in example:
                    raise ValueError(f"an audio dict needs an 'array' key, got keys {sorted(example)}")
                arrays.append(example["array"])
                rates.append(example.get("sampling_rate", sampling_rate))
            else:
                arrays.append(example)
                rates.append(sampling_rate)
        return arrays, rates

    def __call__(
        self,
        raw_audio: np.ndarray | Sequence[np.ndarray] | dict | Sequence[dict],
        sampling_rate: int | None = None,
        padding: bool | str = True,
        max_length: int | None = None,
        truncation: bool = False,
        pad_to_multiple_of: int | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | TensorType | None = None,
        **kwargs,
    ) -> BatchFeature:
        """
        Args:
            raw_audio: one waveform (`(T,)`, `(channels, T)` or `(T, channels)`; numpy, torch or a list of
                samples; an array is always one example), a list of them, or `{"array": ..., "sampling_rate": ...}`
                dicts as `datasets` decodes them.
            sampling_rate (`int`): rate of the given arrays; required unless every example is a dict with its rate.
            padding, max_length, truncation: as in [`SequenceFeatureExtractor.pad`]; by default the batch is padded
                to its longest example.
            pad_to_multiple_of (`int`, *optional*): overrides the extractor's own.

        Returns:
            [`BatchFeature`] with `input_values` `(B, T)` and `attention_mask` `(B, T)`.

        Raises:
            ValueError: naming the example when it is empty, holds NaN or infinite samples, has more than two
                dimensions, or has no (or a non-positive) sampling rate.
        """
        arrays, rates = self._batch(raw_audio, sampling_rate)
        if not arrays:
            raise ValueError("no audio given (an empty batch)")
        values = []
        for index, (array, rate) in enumerate(zip(arrays, rates)):
            name = f"audio example {index}"
            if rate is None:
                raise ValueError(
                    f"{name} has no sampling rate: pass sampling_rate=... (this extractor resamples any rate to "
                    f"{self.sampling_rate} Hz)"
                )
            if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
                raise ValueError(f"{name}: sampling rate must be a positive integer, got {rate!r}")
            if hasattr(array, "detach"):  # a torch tensor
                array = array.detach().cpu().numpy()
            array = np.asarray(array)
            if array.size == 0:
                raise ValueError(f"{name} is empty (0 samples)")
            if not (np.issubdtype(array.dtype, np.number) and not np.iscomplexobj(array)):
                raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}")
            if array.ndim > 2:
                raise ValueError(f"{name} must be 1-D or 2-D (channels and samples), got shape {array.shape}")
            if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
                bad = int((~np.isfinite(array)).sum())
                raise ValueError(f"{name} has {bad} NaN or infinite samples")
            mono = resample_to_mono(array, int(rate), self.sampling_rate)
            values.append(np.clip(mono, -1.0, 1.0).astype(np.float32, copy=False))

        return_attention_mask = self.return_attention_mask if return_attention_mask is None else return_attention_mask
        return self.pad(
            BatchFeature({"input_values": values}),
            padding=padding,
            max_length=max_length,
            truncation=truncation,
            pad_to_multiple_of=pad_to_multiple_of or self.pad_to_multiple_of,
            return_attention_mask=return_attention_mask,
            return_tensors=return_tensors,
        )


__all__ = ["VQVAEAudioFeatureExtractor", "resample", "resample_to_mono", "to_mono"]
