"""Held-out evaluation of a trained audio VQ-VAE on real speech (issue 14): reconstruction and voice conversion,
shared by the speech main job (`scripts/run_demo_audio.py`) and its benchmark (`benchmarks/bench_speech.py`).

The sources are the longest held-out utterances of each speaker (long, so that STOI has speech to work with); each
is decoded as every speaker the model knows, in one batch. A speaker classifier learns from 1 s crops of the other
held-out utterances (real audio only, never model outputs) and reads the decoded clips twice: as it is, and with its
features standardised on the decoded clips, which removes the decoder's own channel (see `SpeakerClassifier`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import soundfile
import torch

from ..audio_metrics import (
    SpeakerClassifier,
    code_bits_per_second,
    conversion_scores,
    multi_resolution_stft_distance,
    stoi,
)


def read_waveform(row: dict) -> torch.Tensor:
    """`(T,)` float32 samples of a speech dataset row whose `audio` column was cast with `Audio(decode=False)`."""
    return torch.from_numpy(soundfile.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")[0])


def middle(clip: torch.Tensor, length: int) -> torch.Tensor:
    """The middle `length` samples of `clip`, zero-padded at the end when it is shorter."""
    start = max(0, (len(clip) - length) // 2)
    return torch.nn.functional.pad(clip[start : start + length], (0, max(0, length - len(clip))))


@dataclass
class SpeechEvaluation:
    """What `evaluate_speech` measured (`results`) and the audio it measured, for WAV examples and pictures:
    the source rows, their original clips `(N, L)`, and `decoded` `(S, N, L)`: source n in speaker s's voice."""

    results: dict[str, float]
    sources: list[dict]
    originals: torch.Tensor
    decoded: torch.Tensor
    source_speakers: torch.Tensor

    @property
    def reconstructions(self) -> torch.Tensor:
        """`(N, L)`: each source decoded with its own speaker."""
        return self.decoded[self.source_speakers, torch.arange(len(self.sources))]


def _mean(values) -> float:
    values = [v for v in values if v == v]  # STOI is NaN on clips too short to score
    return float(np.mean(values)) if values else float("nan")


@torch.no_grad()
def evaluate_speech(
    model,
    test_rows: Sequence[dict],
    sources_per_speaker: int = 2,
    clip_seconds: float = 1.5,
    temperature: float = 0.5,
    seed: int = 0,
    progress: bool = False,
) -> SpeechEvaluation:
    """Reconstruction (STOI and multi-resolution STFT distance, each against a noise baseline) and voice conversion
    (the speaker classifier's answers, raw and standardised on the decoded clips; STOI against the source) of
    `sources_per_speaker` held-out utterances per speaker among `test_rows`, decoded at `temperature`."""
    rate, factor = model.config.sampling_rate, model.config.downsample_factor
    length = int(clip_seconds * rate) // factor * factor
    by_speaker: dict[int, list] = {}
    for row in sorted(test_rows, key=lambda row: -row["duration"]):
        by_speaker.setdefault(row["speaker_id"], []).append(row)
    sources = [row for s in sorted(by_speaker) for row in by_speaker[s][:sources_per_speaker]]
    source_ids = {row["id"] for row in sources}
    originals = torch.stack([middle(read_waveform(row), length) for row in sources])
    source_speakers = torch.tensor([row["speaker_id"] for row in sources])
    clips, labels = [], []
    for row in test_rows:
        if row["id"] not in source_ids:
            audio = read_waveform(row)
            for offset in range(0, len(audio) - rate + 1, rate):
                clips.append(audio[offset : offset + rate])
                labels.append(row["speaker_id"])
    num_sources, num_speakers = len(sources), model.config.num_speakers
    classifier = SpeakerClassifier(num_speakers, rate).fit(clips, labels)

    generator = torch.Generator().manual_seed(seed)
    codes = model.encode(originals)
    decoded = model.decode(
        codes.repeat(num_speakers, 1), torch.arange(num_speakers).repeat_interleave(num_sources), generator=generator,
        temperature=temperature, progress=progress,
    ).view(num_speakers, num_sources, -1)  # fmt: skip
    noise = torch.randn(originals.shape, generator=generator) * originals.std(dim=1, keepdim=True)
    conversions = [(n, t) for t in range(num_speakers) for n in range(num_sources) if source_speakers[n] != t]
    probabilities = torch.stack([classifier.predict_proba(list(decoded[t])) for t in range(num_speakers)])
    scores = conversion_scores(probabilities, source_speakers)
    # Standardised on all decoded clips: every source as every speaker, so each voice equally; no label is used.
    standardized = classifier.predict_proba(list(decoded.flatten(0, 1)), standardize_on_inputs=True)
    standardized = conversion_scores(standardized.view(num_speakers, num_sources, -1), source_speakers)
    pairs = list(zip(originals, decoded[source_speakers, torch.arange(num_sources)], noise))
    results = {
        "stoi_reconstruction": _mean(stoi(o, r, rate) for o, r, _ in pairs),
        "stoi_conversion_vs_source": _mean(stoi(originals[n], decoded[t, n], rate) for n, t in conversions),
        "stoi_noise": _mean(stoi(o, z, rate) for o, _, z in pairs),
        "mrstft_reconstruction": _mean(multi_resolution_stft_distance(o, r) for o, r, _ in pairs),
        "mrstft_noise": _mean(multi_resolution_stft_distance(o, z) for o, _, z in pairs),
        "speaker_accuracy_real": float((classifier.predict(list(originals)) == source_speakers).float().mean()),
        "speaker_accuracy_reconstruction": scores["reconstruction_accuracy"],
        **{key: value for key, value in scores.items() if key != "reconstruction_accuracy"},
        **{f"standardized_{key}": value for key, value in standardized.items()},
        "decode_temperature": temperature,
        "num_sources": num_sources,
        "num_conversions": len(conversions),
        "chance": 1 / num_speakers,
        "code_bits_per_second": code_bits_per_second(model.config.num_embeddings, model.config.latent_rate),
    }
    return SpeechEvaluation(results, sources, originals, decoded, source_speakers)


__all__ = ["SpeechEvaluation", "evaluate_speech", "middle", "read_waveform"]
