"""Hub packaging: everything a repo needs for an hf_vqvae model to be used the way Hub users use models.

Modules, in the order data flows through them:

* `runs`: `TrainingRun`, a folder written by `scripts/train.py` (model, `metrics.json`, `train_args.json`, pictures,
  `codes_info.json`, and `eval_results.json` of `scripts/evaluate.py` while it describes the weights there).
* `pipelines`: `add_pipelines(repo_dir, tasks)`, the pipelines' code and their `custom_pipelines` entries merged
  into config.json (each `Pipeline.save_pretrained` would replace the entries with its own task only).
* `cards`: `render_model_card(...)`, a card from the Jinja templates in `hf_vqvae/model_cards/` through
  `huggingface_hub.ModelCard.from_template`, filled with measured results only.
* `repos`: `build_model_repo(run_dir, repo_dir, repo_id)` for a VQ-VAE, VQ-VAE-2 or PixelSNAIL prior, and
  `build_generation_repo(vq_dir, prior_dirs, repo_dir, repo_id)` for a generation bundle ([`VQGenerationModel`]):
  the VQ model and its priors in ONE repo, so that one `from_pretrained` or
  `pipeline("unconditional-image-generation", model=repo_id, trust_remote_code=True)` gives images.
* `push`: `push_folder(repo_dir, repo_id)`, the whole folder in ONE commit; `push_training_run` for
  `train.py --push_to_hub`.
"""

from ..evaluation.datasets import KNOWN_SOURCES, DatasetInfo, describe_dataset
from .cards import CARD_TEMPLATES, KIND_TITLES, TRAINING_FIELDS, render_model_card, template_path
from .pipelines import PIPELINES, REPO_TASKS, add_pipelines
from .push import default_commit_message, push_folder, push_training_run, repo_files
from .repos import build_generation_repo, build_model_repo, example_image
from .runs import IMAGES_DIR, TrainingRun

__all__ = [
    "CARD_TEMPLATES",
    "IMAGES_DIR",
    "KIND_TITLES",
    "KNOWN_SOURCES",
    "PIPELINES",
    "REPO_TASKS",
    "TRAINING_FIELDS",
    "DatasetInfo",
    "TrainingRun",
    "add_pipelines",
    "build_generation_repo",
    "build_model_repo",
    "default_commit_message",
    "describe_dataset",
    "example_image",
    "push_folder",
    "push_training_run",
    "render_model_card",
    "repo_files",
    "template_path",
]
