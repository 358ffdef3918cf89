"""The model cards of the speech model's repos: the audio VQ-VAE (`write_audio_card`: audio widget examples, voice
conversion) and its generation bundle with a speaker-conditional prior (`write_speech_generation_card`: the WAVs it
generated, per speaker). Both carry the measured metrics with their baselines, the speakers with their licences, how
it was trained and how to use it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from ..data.speech import SPEAKERS
from ..space.build import DEMO_APPS, demo_card_section

_MODEL = """\
A VQ-VAE over 16 kHz speech (van den Oord, Vinyals, Kavukcuoglu 2017, section 4.3): six strided 1-D convolutions
(stride 2, window 4) turn the waveform into codes 64 times shorter (250 per second), and a WaveNet conditioned on
the codes and on a speaker embedding samples the waveform back, one mu-law sample at a time."""
_SLOW = """\
Decoding samples the WaveNet sample by sample (Fast WaveNet queues): on one CPU thread it runs tens of times
slower than real time, so keep clips short."""


def _table(rows: Sequence[tuple[str, str]]) -> str:
    return "\n".join(["| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)])


def speaker_table_rows(names: Sequence[str]) -> list[dict[str, Any]]:
    """`{id, name, description, licence}` of each speaker of a model, by name from `data.speech.SPEAKERS` (the
    offline speech data); a voice that is not one of them is described as unknown, with its licence unknown."""
    known = {speaker.name: speaker for speaker in SPEAKERS}
    rows = []
    for index, name in enumerate(names):
        speaker = known.get(name)
        description, licence = (
            (speaker.description, speaker.licence) if speaker else ("not from the offline data", "unknown")
        )
        rows.append({"id": index, "name": name, "description": description, "licence": licence})
    return rows


def _write(
    folder: str | Path,
    *,
    data: ModelCardData,
    title: str,
    body: str,
    metrics: Sequence[tuple[str, str]],
    speakers: Sequence[dict[str, Any]],
    training: str,
    reproduce: str,
    spectrograms: str | None,
) -> Path:
    """README.md: the front matter, `body` (model, use, demo, samples), then the parts both cards share."""
    licences = sorted({speaker["licence"] for speaker in speakers})
    speaker_rows = "\n".join(f"| {s['id']} | {s['name']} | {s['description']} | {s['licence']} |" for s in speakers)
    measured = _table(metrics) if metrics else "Nothing measured: the runs this folder was built from have no metrics."
    content = f"""---
{data.to_yaml()}
---

# {title}

{body}
## Measured on held-out utterances

{measured}

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
    """Writes `folder/README.md` of an audio VQ-VAE. `examples`: `(path in the repo, title)` of WAV files, shown as
    the audio widget's examples; `metrics`: `(name, value with its baseline)` rows; `speakers`: dicts with `id`,
    `name`, `description`, `licence`."""
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="audio-to-audio",
        license="other",
        tags=["vq-vae", "wavenet", "speech", "voice-conversion", "audio-to-audio", "hf_vqvae"],
        widget=[{"src": path, "example_title": title} for path, title in examples],
    )
    body = f"""{_MODEL} Decoding the codes of speaker A with speaker B's id is the paper's voice conversion.

## Use

```python
from transformers import pipeline

convert = pipeline("audio-to-audio", model="{repo_id}", trust_remote_code=True)
same = convert("clip.wav", source_speaker="{speakers[0]["name"]}", seed=0)      # reconstruction
other = convert("clip.wav", target_speaker="{speakers[-1]["name"]}", seed=0)    # voice conversion
codes = pipeline("feature-extraction", model="{repo_id}", trust_remote_code=True)("clip.wav")["codes"]
```

{_SLOW}

{demo_card_section(repo_id, DEMO_APPS["audio_vqvae"])}"""
    title = f"{repo_id.split('/')[-1]}: the VQ-VAE paper's speech model"
    return _write(folder, data=data, title=title, body=body, metrics=metrics, speakers=speakers, training=training,
                  reproduce=reproduce, spectrograms=spectrograms)  # fmt: skip


def write_speech_generation_card(
    folder: str | Path,
    *,
    repo_id: str,
    task: str,
    metrics: Sequence[tuple[str, str]],
    speakers: Sequence[dict[str, Any]],
    samples: Sequence[tuple[str, str]],
    sampling: str,
    training: str,
    reproduce: str,
    spectrograms: str | None = None,
) -> Path:
    """Writes `folder/README.md` of a speech generation bundle (an audio VQ-VAE and a prior over its codes).
    `task`: its pipeline (the card's `pipeline_tag`); `samples`: `(path in the repo, title)` of the WAVs the bundle
    generated, shown as the widget's example outputs and listed with a player each, `spectrograms` their picture;
    `sampling`: how they were drawn; the rest as `write_audio_card`."""
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag=task,
        license="other",
        tags=["vq-vae", "wavenet", "pixelsnail", "speech", "speech-generation", "hf_vqvae"],
        widget=[{"example_title": title, "output": {"url": path}} for path, title in samples],
    )
    speaker = speakers[-1]["name"] if speakers else None
    speaker_argument = f", speaker={speaker!r}" if speaker else ""
    players = "\n".join(
        f'| {title} | <audio controls src="{path}"></audio> [{path}]({path}) |' for path, title in samples
    )
    body = f"""{_MODEL} A PixelSNAIL prior over the code sequences{" (conditioned on the speaker)" if speakers else ""}
samples new codes, and the WaveNet speaks them: speech from nothing but a seed{" and a speaker" if speakers else ""}.
Both are in this one repo (`VQGenerationModel`).

## Use

```python
from transformers import AutoModel, pipeline

speak = pipeline("{task}", model="{repo_id}", trust_remote_code=True)
clips = speak(num_samples=2{speaker_argument}, seed=0)   # [{{"audio": float32 (T,), "sampling_rate": 16000}}, ...]

model = AutoModel.from_pretrained("{repo_id}", trust_remote_code=True)   # waveforms (N, T) in [-1, 1]
```

`{task}` is this package's own task (transformers has no built-in task that samples audio from nothing), so the
Hub's widget cannot run it: listen to the samples below, run the pipeline, or run the web demo below. {_SLOW}

{demo_card_section(repo_id, DEMO_APPS["vq_generation_audio"])}

## Samples

{sampling}

| sample | |
|---|---|
{players}

{f"![spectrograms of the samples]({spectrograms})" if spectrograms else ""}

"""
    title = f"{repo_id.split('/')[-1]}: speech generation with the VQ-VAE paper's speech model"
    return _write(folder, data=data, title=title, body=body, metrics=metrics, speakers=speakers, training=training,
                  reproduce=reproduce, spectrograms=None)  # fmt: skip


__all__ = ["speaker_table_rows", "write_audio_card", "write_speech_generation_card"]
