"""The model card of an audio VQ-VAE repo: audio widget examples (WAV files in the repo), the measured metrics with
their baselines, the speakers with their licences, how it was trained and how to use it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from ..space.build import DEMO_APPS, demo_card_section


def _table(rows: Sequence[tuple[str, str]]) -> str:
    return "\n".join(["| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)])


def write_audio_card(
    folder: str | Path,
    *,
    repo_id: str,
    metrics: Sequence[tuple[str, str]],
    speakers: Sequence[dict[str, Any]],
    examples: Sequence[tuple[str, str]],
    training: str,
    reproduce: str,
    spectrograms: str | None = None,
) -> Path:
    """Writes `folder/README.md`. `examples`: `(path in the repo, title)` of WAV files, shown as the audio widget's
    examples; `metrics`: `(name, value with its baseline)` rows; `speakers`: dicts with `id`, `name`,
    `description`, `licence`."""
    licences = sorted({speaker["licence"] for speaker in speakers})
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="audio-to-audio",
        license="other",
        tags=["vq-vae", "wavenet", "speech", "voice-conversion", "audio-to-audio", "hf_vqvae"],
        widget=[{"src": path, "example_title": title} for path, title in examples],
    )
    speaker_rows = "\n".join(f"| {s['id']} | {s['name']} | {s['description']} | {s['licence']} |" for s in speakers)
    content = f"""---
{data.to_yaml()}
---

# {repo_id.split("/")[-1]}: the VQ-VAE paper's speech model

A VQ-VAE over 16 kHz speech (van den Oord, Vinyals, Kavukcuoglu 2017, section 4.3): six strided 1-D convolutions
(stride 2, window 4) turn the waveform into codes 64 times shorter (250 per second), and a WaveNet conditioned on
the codes and on a speaker embedding samples the waveform back, one mu-law sample at a time. Decoding the codes of
speaker A with speaker B's id is the paper's voice conversion.

## Use

```python
from transformers import pipeline

convert = pipeline("audio-to-audio", model="{repo_id}", trust_remote_code=True)
same = convert("clip.wav", source_speaker="{speakers[0]["name"]}", seed=0)      # reconstruction
other = convert("clip.wav", target_speaker="{speakers[-1]["name"]}", seed=0)    # voice conversion
codes = pipeline("feature-extraction", model="{repo_id}", trust_remote_code=True)("clip.wav")["codes"]
```

Decoding samples the WaveNet sample by sample (Fast WaveNet queues): on one CPU thread it runs tens of times
slower than real time, so keep clips short.

{demo_card_section(repo_id, DEMO_APPS["audio_vqvae"])}
## Measured on held-out utterances

{_table(metrics)}

{f"![spectrograms]({spectrograms})" if spectrograms else ""}

## Training

{training}

Reproduce: `{reproduce}`

## Speakers and licences

The training data are real recordings that Debian ships (`prepare_data.py --source speech`); this model is trained
on them, so their licences ({", ".join(licences)}) apply to what it learned from each voice.

| id | speaker | recordings | licence |
|---|---|---|---|
{speaker_rows}
"""
    path = Path(folder) / "README.md"
    ModelCard(content).save(path)
    return path


__all__ = ["write_audio_card"]
