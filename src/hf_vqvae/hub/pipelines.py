"""The pipelines a repo serves: their code beside the model's, and their `custom_pipelines` entries in config.json."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers.dynamic_module_utils import custom_object_save

from ..pipeline_audio_generation import VQAudioGenerationPipeline
from ..pipeline_audio_vqvae import AudioVQVAEAudioToAudioPipeline, AudioVQVAEFeatureExtractionPipeline
from ..pipeline_video import VQVideoPipeline
from ..pipeline_vqvae import VQGenerationPipeline, VQVAEFeatureExtractionPipeline, VQVAEImageToImagePipeline
from ..repo_kinds import repo_kind

PIPELINES: dict[str, type] = {
    "image-to-image": VQVAEImageToImagePipeline,
    "image-feature-extraction": VQVAEFeatureExtractionPipeline,
    "unconditional-image-generation": VQGenerationPipeline,
    "audio-to-audio": AudioVQVAEAudioToAudioPipeline,
    "feature-extraction": AudioVQVAEFeatureExtractionPipeline,
    "video-prediction": VQVideoPipeline,
    "unconditional-audio-generation": VQAudioGenerationPipeline,
}
# The input type transformers records for each task (`custom_pipelines[task]["type"]`); "image" otherwise.
PIPELINE_TYPES: dict[str, str] = {
    "audio-to-audio": "audio",
    "feature-extraction": "audio",
    "unconditional-audio-generation": "audio",
}
# The tasks each kind of repo serves, its main one (the card's `pipeline_tag`) first. A prior alone makes code maps,
# not images: it serves no pipeline task; the generation bundle serves images from it.
REPO_TASKS: dict[str, list[str]] = {
    "vqvae": ["image-to-image", "image-feature-extraction"],
    "vqvae2": ["image-to-image", "image-feature-extraction"],
    "pixelsnail": [],
    "vq_generation": ["unconditional-image-generation", "image-to-image", "image-feature-extraction"],
    "audio_vqvae": ["audio-to-audio", "feature-extraction"],
    # The frame VQ-VAE inside a video model or a two-stage bundle serves the image pipelines too.
    "vq_video": ["video-prediction", "image-to-image", "image-feature-extraction"],
    "vq_two_stage": ["unconditional-image-generation", "image-to-image"],
    # A generation bundle of the speech model (model type vq_generation, an audio VQ-VAE and its prior) serves
    # speech, not images: `repo_tasks` picks this entry for it.
    "vq_generation_audio": ["unconditional-audio-generation"],
}


def repo_tasks(config) -> list[str]:
    """The tasks a repo of `config` serves (`REPO_TASKS` by `repo_kind`: a speech generation bundle its own)."""
    return list(REPO_TASKS[repo_kind(config)])


def add_pipelines(repo_dir: str | Path, tasks: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Adds the pipelines of `tasks` to a saved model folder: their code file, and one `custom_pipelines` entry per
    task in config.json, MERGED with the entries already there (each `Pipeline.save_pretrained` would replace them
    with its own task only; entries as it writes them: impl as `module.Class`, `pt` the model classes). Returns the
    merged entries."""
    repo_dir = Path(repo_dir)
    config_path = repo_dir / "config.json"
    config = json.loads(config_path.read_text())
    entries = dict(config.get("custom_pipelines") or {})
    for task in tasks:
        if task not in PIPELINES:
            raise ValueError(f"no hf_vqvae pipeline for task {task!r}; known: {sorted(PIPELINES)}")
        pipeline_class = PIPELINES[task]
        module = pipeline_class.__module__.split(".")[-1]
        entries[task] = {
            "impl": f"{module}.{pipeline_class.__name__}",
            "pt": ["AutoModel"],
            "type": PIPELINE_TYPES.get(task, "image"),
        }
        # The pipeline's file (and any relative import of it) next to the model code, for trust_remote_code.
        custom_object_save(pipeline_class, repo_dir)
    config["custom_pipelines"] = entries
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return entries


__all__ = ["PIPELINES", "REPO_TASKS", "add_pipelines", "repo_tasks"]
