"""Audio examples to training batches, in DataLoader workers: decode (soundfile), skip and count what cannot be used,
convert with the model's feature extractor, crop fixed-length segments.

The batch carries the same accounting keys as the image and code collators (`hf_vqvae.data.collate`):
`num_examples`, `skipped` (`{cause: count}`), `bad_examples`, `held_out`, `positions`. Causes: `empty` (no bytes or
no samples), `not_audio` (not a format soundfile reads), `truncated` (the stream ends before its header says),
`bad_rate` (a sampling rate below `MIN_SAMPLING_RATE`), `not_finite` (NaN or infinite samples), `unprocessable`
(refused by the feature extractor). Multichannel audio is not bad: the extractor mixes it to mono.
"""

from __future__ import annotations

import dataclasses
import io
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch
from datasets import Audio

from .collate import example_name, read_bytes
from .sources import DEFAULT_VALIDATION_PERCENTAGE, DataPlan, DatasetError, open_dataset

# Below this the file is almost certainly mislabelled (telephone speech is 8 kHz).
MIN_SAMPLING_RATE = 4000


class BadAudioError(ValueError):
    """An example whose audio cannot be used; `reason` is the counter key it is logged under."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def decode_audio(value: Any) -> tuple[np.ndarray, int]:
    """An audio column value (`{"bytes", "path"}`, `{"array", "sampling_rate"}`, raw bytes or a path) to float32
    samples `(frames, channels)` and the sampling rate, read completely so that a truncated file fails here.

    Raises `BadAudioError` with one of the reasons of this module's docstring."""
    if value is None:
        raise BadAudioError("empty", "no audio")
    if isinstance(value, dict) and value.get("array") is not None:
        samples = np.asarray(value["array"], dtype=np.float32)
        samples = samples[:, None] if samples.ndim == 1 else samples
        return _checked(samples, value.get("sampling_rate"))
    data, path = (value.get("bytes"), value.get("path")) if isinstance(value, dict) else (value, None)
    try:
        if data is None and path is not None:
            data = read_bytes(path)
        if isinstance(data, str):
            data = read_bytes(data)
    except OSError as error:
        raise BadAudioError("empty", f"cannot read {path or data}: {error}") from error
    if not data:
        raise BadAudioError("empty", "zero bytes")
    try:
        handle = soundfile.SoundFile(io.BytesIO(data))
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise BadAudioError("not_audio", str(error)) from error
    with handle:
        expected = handle.frames
        try:
            samples = handle.read(dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError) as error:
            raise BadAudioError("truncated", str(error)) from error
        rate = handle.samplerate
    if expected > 0 and len(samples) < expected:
        raise BadAudioError("truncated", f"{len(samples)} of the {expected} samples its header announces")
    return _checked(samples, rate)


def _checked(samples: np.ndarray, rate: Any) -> tuple[np.ndarray, int]:
    if samples.size == 0:
        raise BadAudioError("empty", "0 samples")
    if rate is None or int(rate) < MIN_SAMPLING_RATE:
        raise BadAudioError("bad_rate", f"sampling rate {rate} Hz (below {MIN_SAMPLING_RATE} Hz)")
    if not np.isfinite(samples).all():
        raise BadAudioError("not_finite", f"{int((~np.isfinite(samples)).sum())} NaN or infinite samples")
    return samples, int(rate)


def open_audio_dataset(
    dataset: str,
    *,
    label_column: str | None = None,
    train_split: str = "train",
    eval_split: str | None = None,
    validation_split_percentage: float = DEFAULT_VALIDATION_PERCENTAGE,
    what: str = "this command",
) -> tuple[DataPlan, str]:
    """A speech dataset (`prepare_data.py --source speech`, or any with an `Audio` column and a speaker `ClassLabel`)
    as a `DataPlan` whose audio stays undecoded (`{bytes, path}`: `AudioCollator` decodes in the workers, skipping bad
    files, and `datasets` would need torchcodec to decode), and the name of its audio column. Splits and held-out
    examples follow `open_dataset`, so training, evaluation and code extraction read the same utterances."""
    plan = open_dataset(
        dataset, train_split=train_split, eval_split=eval_split,
        validation_split_percentage=validation_split_percentage, kind="codes",
        label_column=label_column or "speaker_id",
    )  # fmt: skip
    found = [name for name, feature in plan.features.items() if isinstance(feature, Audio)]
    if not found:
        raise DatasetError(
            f"{what} needs a dataset with an Audio column; {dataset} has {sorted(plan.features)} "
            "(scripts/prepare_data.py --source speech writes one)"
        )
    column = "audio" if "audio" in found else found[0]
    splits = {name: split.cast_column(column, Audio(decode=False)) for name, split in plan.splits.items()}
    return dataclasses.replace(plan, splits=splits), column


def write_wav(path: str | Path, clip: torch.Tensor | np.ndarray, sampling_rate: int) -> Path:
    """One mono clip in [-1, 1] (clipped there) as a 16-bit PCM WAV file, its folder made if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = torch.as_tensor(clip).detach().float().cpu().clamp(-1, 1).numpy()
    soundfile.write(path, samples, sampling_rate, subtype="PCM_16")
    return path


class AudioCollator:
    """Decodes a list of audio examples, converts each with `feature_extractor` (16 kHz mono in [-1, 1]) and crops
    `segment_samples` of each (a random window if `random_crop`, else the middle one; shorter clips are padded and
    masked). Returns `{"input_values": (B, T), "attention_mask": (B, T), "speaker_ids": (B,) or None}` plus the
    accounting keys of this module's docstring.

    Random crops draw from `random.Random` seeded from torch's RNG when the collator first runs in a process, so
    each DataLoader worker (seeded by the loader's generator) crops reproducibly.
    """

    def __init__(
        self,
        feature_extractor,
        audio_column: str = "audio",
        speaker_column: str | None = "speaker_id",
        segment_samples: int | None = None,
        random_crop: bool = True,
        held_out: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        multiple = feature_extractor.pad_to_multiple_of
        if segment_samples is not None and (segment_samples <= 0 or segment_samples % multiple):
            raise ValueError(f"segment_samples must be a positive multiple of {multiple}, got {segment_samples}")
        self.feature_extractor = feature_extractor
        self.audio_column = audio_column
        self.speaker_column = speaker_column
        self.segment_samples = segment_samples
        self.random_crop = random_crop
        self.held_out = held_out
        self._rng: random.Random | None = None

    def _crop(self, values: np.ndarray) -> np.ndarray:
        if self.segment_samples is None or len(values) <= self.segment_samples:
            return values
        slack = len(values) - self.segment_samples
        if self.random_crop:
            if self._rng is None:
                self._rng = random.Random(int(torch.randint(0, 2**31 - 1, ())))
            start = self._rng.randint(0, slack)
        else:
            start = slack // 2
        return values[start : start + self.segment_samples]

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        segments, kept, skipped, bad, held_out = [], [], Counter(), [], 0
        for position, example in enumerate(examples):
            if self.held_out is not None and self.held_out(example):
                held_out += 1
                continue
            name = example_name(example, position, self.audio_column)
            try:
                samples, rate = decode_audio(example.get(self.audio_column))
                if self.speaker_column and example.get(self.speaker_column) is None:
                    raise BadAudioError("no_speaker", f"{self.speaker_column} is missing")
                try:
                    features = self.feature_extractor(samples, sampling_rate=rate, padding=False)
                except ValueError as error:
                    raise BadAudioError("unprocessable", str(error)) from error
                segments.append(self._crop(np.asarray(features["input_values"][0])))
                kept.append((position, example))
            except BadAudioError as error:
                skipped[error.reason] += 1
                bad.append(f"{name}: {error.reason} ({error})")
        if segments:
            batch = self.feature_extractor.pad(
                {"input_values": segments},
                padding="max_length" if self.segment_samples else True,
                max_length=self.segment_samples,
                pad_to_multiple_of=self.feature_extractor.pad_to_multiple_of,
                return_attention_mask=True,
                return_tensors="pt",
            )
            values, mask = batch["input_values"], batch["attention_mask"]
        else:
            values = torch.empty(0, self.segment_samples or 0)
            mask = torch.empty(0, self.segment_samples or 0, dtype=torch.long)
        speakers = [int(example[self.speaker_column]) for _, example in kept] if self.speaker_column else []
        return {
            "input_values": values,
            "attention_mask": mask,
            "speaker_ids": torch.tensor(speakers, dtype=torch.long) if speakers else None,
            "ids": None,
            "num_examples": len(examples) - held_out,
            "skipped": dict(skipped),
            "bad_examples": bad,
            "held_out": held_out,
            "positions": [position for position, _ in kept],
        }


__all__ = ["MIN_SAMPLING_RATE", "AudioCollator", "BadAudioError", "decode_audio", "open_audio_dataset", "write_wav"]
