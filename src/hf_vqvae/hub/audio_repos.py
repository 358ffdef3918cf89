"""The Hub-ready folder of a speech generation bundle: the audio VQ-VAE and its prior in one repo
([`VQGenerationModel`]), so that `pipeline("unconditional-audio-generation", model=repo_id, trust_remote_code=True)`
speaks. `hub.repos.build_generation_repo` dispatches here for an audio VQ-VAE (the bundle's `repo_kind` is
`vq_generation_audio`).

The folder: weights and code, the feature extractor, the pipeline (`hub.pipelines.repo_tasks`), WAV samples per
speaker under `examples/` (16-bit, at the model's rate), their spectrograms under `images/` (clips over 64 ms),
and a card (`hub.audio_card.write_speech_generation_card`) with the runs' measured metrics and the speakers'
licences, and its web demo (`app.py`: a speaker and a seed in, a clip out).
"""

from __future__ import annotations

import logging
import math
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoModel

from ..audio_images import save_spectrogram_grid
from ..audio_metrics import code_bits_per_second
from ..data.audio import write_wav
from ..evaluation.datasets import DatasetInfo
from ..feature_extraction_audio import VQVAEAudioFeatureExtractor
from ..modeling_generation import VQGenerationModel
from ..modeling_pixelsnail import PixelSNAILModel
from ..sampling import default_class_labels, num_classes_of
from ..space.build import write_app
from .audio_card import speaker_table_rows, write_speech_generation_card
from .pipelines import add_pipelines, repo_tasks
from .runs import IMAGES_DIR, TrainingRun

logger = logging.getLogger(__name__)

EXAMPLES_DIR = "examples"
# audio_images' spectrograms take 1024-sample windows: shorter clips (64 ms at 16 kHz) get no picture.
MIN_SPECTROGRAM_SAMPLES = 1024


def _run(folder: str | Path) -> TrainingRun | None:
    """The training run of a folder, or None for a saved model without `metrics.json` (nothing measured)."""
    try:
        return TrainingRun.read(folder)
    except FileNotFoundError:
        return None


def _feature_extractor(vq_dir: Path, config) -> VQVAEAudioFeatureExtractor:
    """The one saved with the model (train.py saves it), else the model's default."""
    if (vq_dir / "preprocessor_config.json").exists():
        return VQVAEAudioFeatureExtractor.from_pretrained(vq_dir)
    return VQVAEAudioFeatureExtractor(sampling_rate=config.sampling_rate, pad_to_multiple_of=config.downsample_factor)


def speech_metrics(vq_config, vq_run: TrainingRun | None, prior_runs: Sequence[TrainingRun | None]) -> list:
    """The card's `(name, value with its baseline)` rows: what the runs measured on held-out utterances (the VQ
    run's NLL against the mu-law unigram baseline and its codebook use, each prior's bits per code against the
    uniform log2 K), and the codes' fixed bit rate."""
    rows = []
    measured = vq_run.card_metrics if vq_run else {}
    if "eval/nll" in measured:
        baseline = measured.get("eval/unigram_nll")
        rows.append(("held-out NLL (nats / mu-law sample)", f"{measured['eval/nll']:.3f}"
                     + (f" (unigram baseline {baseline:.3f})" if baseline is not None else "")))  # fmt: skip
    if "eval/perplexity" in measured:
        rows.append(("codebook perplexity", f"{measured['eval/perplexity']:.1f} of {vq_config.num_embeddings} codes"))
    bits_per_second = code_bits_per_second(vq_config.num_embeddings, vq_config.latent_rate)
    rows.append(("code rate", f"{bits_per_second:.0f} bit/s fixed-length"))
    for index, run in enumerate(prior_runs):
        bits = (run.card_metrics if run else {}).get("eval/bits_per_code")
        if bits is not None:
            name = "prior" if len(prior_runs) == 1 else f"prior {index}"
            rows.append((f"{name}: bits per code, held out", f"{bits:.3f} (uniform: log2 K = "
                         f"{math.log2(vq_config.num_embeddings):.0f})"))  # fmt: skip
    return rows


def _training(vq_run: TrainingRun | None, prior_runs: Sequence[TrainingRun | None]) -> str:
    parts = []
    if vq_run is not None:
        parts.append(f"The audio VQ-VAE: {vq_run.steps} steps of `scripts/train.py --model audio_vqvae` on "
                     f"`{vq_run.train_args.get('dataset')}`.")  # fmt: skip
    for run in prior_runs:
        if run is not None:
            parts.append(f"The prior: {run.steps} steps of `scripts/train.py --model pixelsnail` on the codes of "
                         f"`{run.train_args.get('dataset')}` (`scripts/extract_codes.py`).")  # fmt: skip
    return " ".join(parts) or "Built from saved models without training records."


def _file_name(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


@torch.no_grad()
def build_speech_generation_repo(
    vq_dir: str | Path,
    prior_dirs: Sequence[str | Path],
    repo_dir: str | Path,
    repo_id: str,
    license: str = "apache-2.0",
    num_samples: int | None = None,
    seed: int = 0,
    temperature: float = 1.0,
    top_k: int | None = None,
    dataset: DatasetInfo | None = None,
) -> Path:
    """A speech generation bundle repo (the arguments of `hub.repos.build_generation_repo`): `num_samples` clips
    (default: one per speaker) drawn with `seed`, the speakers in turn. `license` is the weights' own; the card's
    `license` is `other`, as the speakers' recordings have their own licences. `dataset` is unused: the speakers
    name the data."""
    del dataset  # an image dataset's description; the speakers' table says where the voices come from
    vq_dir = Path(vq_dir)
    vq_model = AutoModel.from_pretrained(vq_dir).eval()
    priors = [PixelSNAILModel.from_pretrained(folder).eval() for folder in prior_dirs]
    vq_run, prior_runs = _run(vq_dir), [_run(folder) for folder in prior_dirs]
    bundle = VQGenerationModel.from_parts(vq_model, priors)
    config = bundle.config

    repo_dir = Path(repo_dir)
    if repo_dir.exists():
        shutil.rmtree(repo_dir)
    (repo_dir / IMAGES_DIR).mkdir(parents=True)
    bundle.save_pretrained(repo_dir)
    _feature_extractor(vq_dir, vq_model.config).save_pretrained(repo_dir)
    tasks = repo_tasks(config)
    add_pipelines(repo_dir, tasks)
    write_app(repo_dir)  # DEMO_APPS decides: the speech generation demo

    speakers = list(vq_model.config.speaker_names or [])
    num_classes = num_classes_of(priors)
    count = num_samples or max(1, len(speakers))
    labels = default_class_labels(count, num_classes) if num_classes else None
    generator = torch.Generator(device=bundle.device).manual_seed(seed)
    waveforms = bundle.generate(count, class_labels=labels, temperature=temperature, top_k=top_k,
                                generator=generator, progress=True)  # fmt: skip
    # The speaker each clip was decoded with: the prior's label, or the decoder's speakers in turn.
    voices = labels.tolist() if labels is not None else list(range(count))
    samples: list[tuple[str, str]] = []
    for index, clip in enumerate(waveforms):
        speaker = speakers[voices[index] % len(speakers)] if speakers else None
        name = f"sample_{index:03d}" + (f"_{_file_name(speaker)}" if speaker else "")
        write_wav(repo_dir / EXAMPLES_DIR / f"{name}.wav", clip, config.sampling_rate)
        samples.append((f"{EXAMPLES_DIR}/{name}.wav", f"{speaker or 'sample'} (seed {seed}, clip {index})"))
    spectrograms = None
    if waveforms.shape[-1] > MIN_SPECTROGRAM_SAMPLES:
        save_spectrogram_grid([list(waveforms)], repo_dir / IMAGES_DIR / "samples.png", config.sampling_rate)
        spectrograms = f"{IMAGES_DIR}/samples.png"

    conditioning = "the speakers in turn" if num_classes else "an unconditional prior"
    sampling = (
        f"{count} clips of {config.num_samples / config.sampling_rate:.2f} s drawn by this repo's model with seed "
        f"{seed}, temperature {temperature:g}{f', top-k {top_k}' if top_k else ''} ({conditioning}); weights "
        f"licence: {license}."
    )
    write_speech_generation_card(
        repo_dir, repo_id=repo_id, task=tasks[0], metrics=speech_metrics(vq_model.config, vq_run, prior_runs),
        speakers=speaker_table_rows(speakers), samples=samples, sampling=sampling,
        training=_training(vq_run, prior_runs), spectrograms=spectrograms,
        reproduce=f"python scripts/push_to_hub.py --vq_model {vq_dir} --priors "
        f"{' '.join(str(folder) for folder in prior_dirs)} --hub_model_id {repo_id}",
    )  # fmt: skip
    return repo_dir


__all__ = ["EXAMPLES_DIR", "build_speech_generation_repo", "speech_metrics"]
