"""What kind of Hub repo a model makes: the key of `hub.pipelines.REPO_TASKS` (the tasks it serves) and of
`space.build.DEMO_APPS` (its web demo). Read from a config object or from a saved folder's config.json alike, so
that the packaging (which holds the model) and the Space builder (which holds only the folder) agree.

No imports of the rest of the package: both the hub and the space modules read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# A generation bundle (model type vq_generation) around the speech model serves speech, not images.
SPEECH_GENERATION = "vq_generation_audio"


def repo_kind(config: Mapping[str, Any] | Any) -> str:
    """The model type of `config` (a `PreTrainedConfig` or a config.json dict), except for a generation bundle that
    holds an audio VQ-VAE: `"vq_generation_audio"`."""
    data = config if isinstance(config, Mapping) else config.to_dict()
    model_type = data.get("model_type")
    vq_config = data.get("vq_config") or {}
    if model_type == "vq_generation" and vq_config.get("model_type") == "audio_vqvae":
        return SPEECH_GENERATION
    return model_type


__all__ = ["SPEECH_GENERATION", "repo_kind"]
