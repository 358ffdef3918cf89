"""Hub packaging: everything a repo needs for an hf_vqvae model to be used the way Hub users use models.

* `build_model_repo(run_dir, repo_dir, repo_id)`: a VQ-VAE, VQ-VAE-2 or PixelSNAIL prior trained by
  `scripts/train.py`, as a repo folder: weights, modelling code (`trust_remote_code`), processor config, pipelines,
  a model card filled from the run's `metrics.json` / `train_args.json`, and its pictures under `images/`.
* `build_generation_repo(vq_dir, prior_dirs, repo_dir, repo_id)`: a generation bundle ([`VQGenerationModel`]), the
  VQ model and its priors in ONE repo, so that one `from_pretrained` or
  `pipeline("unconditional-image-generation", model=repo_id, trust_remote_code=True)` gives images.
* `add_pipelines(repo_dir, tasks)`: the pipelines' code and their `custom_pipelines` entries, merged into config.json
  (each `Pipeline.save_pretrained` would replace the entries with its own task only).
* `render_model_card(...)`: a card from the Jinja templates in `hf_vqvae/model_cards/` through
  `huggingface_hub.ModelCard.from_template`.
* `push_folder(repo_dir, repo_id)`: the whole folder in ONE commit; `push_training_run` for `train.py --push_to_hub`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import transformers
from huggingface_hub import CommitOperationAdd, EvalResult, HfApi, ModelCard, ModelCardData
from PIL import Image
from transformers import AutoModel
from transformers.dynamic_module_utils import custom_object_save

from .data.fashion_mnist import FASHION_MNIST_LABELS
from .evaluation import (
    EVAL_RESULTS_FILE,
    eval_results_of_entries,
    level_names,
    metric_entries,
    weights_fingerprint,
)
from .image_processing_vqvae import VQVAEImageProcessor
from .modeling_generation import VQGenerationModel
from .modeling_pixelsnail import PixelSNAILModel
from .pipeline_vqvae import VQGenerationPipeline, VQVAEFeatureExtractionPipeline, VQVAEImageToImagePipeline
from .training.images import save_sample_grid

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------------------- tables

PIPELINES: dict[str, type] = {
    "image-to-image": VQVAEImageToImagePipeline,
    "image-feature-extraction": VQVAEFeatureExtractionPipeline,
    "unconditional-image-generation": VQGenerationPipeline,
}
# The tasks each kind of repo serves, its main one (the card's `pipeline_tag`) first. A prior alone makes code maps,
# not images: it serves no pipeline task; the generation bundle serves images from it.
REPO_TASKS: dict[str, list[str]] = {
    "vqvae": ["image-to-image", "image-feature-extraction"],
    "vqvae2": ["image-to-image", "image-feature-extraction"],
    "pixelsnail": [],
    "vq_generation": ["unconditional-image-generation", "image-to-image", "image-feature-extraction"],
}
CARD_TEMPLATES = {
    "vqvae": "vqvae.md",
    "vqvae2": "vqvae2.md",
    "pixelsnail": "prior.md",
    "vq_generation": "generation.md",
}
KIND_TITLES = {
    "vqvae": "VQ-VAE",
    "vqvae2": "VQ-VAE-2",
    "pixelsnail": "PixelSNAIL prior",
    "vq_generation": "VQ-VAE generation bundle",
}
# The local sources of scripts/prepare_data.py, with their Hub dataset ids where one exists.
KNOWN_SOURCES = {
    "fashion-mnist": {
        "hub_id": "zalando-datasets/fashion_mnist",
        "name": "Fashion-MNIST",
        "class_names": list(FASHION_MNIST_LABELS),
    },
    "photos": {
        "hub_id": None,
        "name": "Photo crops (scikit-image sample photos and Lomiri wallpapers)",
        "class_names": None,
    },
}
_PRIOR_TRAINING_FIELDS = ("class_conditional", "code_column", "condition_column")
# train_args.json fields shown in the card's training table, in this order (the prior's own ones last).
TRAINING_FIELDS = (
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "learning_rate",
    "adam_beta1",
    "adam_beta2",
    "weight_decay",
    "lr_warmup_steps",
    "max_train_steps",
    "max_grad_norm",
    "mixed_precision",
    "seed",
    *_PRIOR_TRAINING_FIELDS,
)
# Config fields every PreTrainedConfig carries that say nothing about the architecture.
_GENERIC_CONFIG_KEYS = {
    "_name_or_path", "architectures", "auto_map", "chunk_size_feed_forward", "dtype", "id2label", "label2id",
    "is_encoder_decoder", "output_attentions", "output_hidden_states", "problem_type", "return_dict",
    "transformers_version", "custom_pipelines",
}  # fmt: skip
IMAGES_DIR = "images"
_SKIPPED_FILES = {".DS_Store"}


# ------------------------------------------------------------------------------------------------ reading runs
@dataclass
class DatasetInfo:
    """What a card says about the data: the Hub id (if the data is on the Hub), a readable name, the evaluation
    split, class names, and the local folder (to read an example image from)."""

    name: str
    hub_id: str | None = None
    split: str = "test"
    class_names: list[str] | None = None
    local_dir: Path | None = None
    image_column: str = "image"

    @property
    def model_index_type(self) -> str:
        return self.hub_id or self.name


@dataclass
class TrainingRun:
    """A folder written by `scripts/train.py`: the final model, `metrics.json`, `train_args.json`, `images/`, and
    `eval_results.json` if `scripts/evaluate.py --output` measured the final weights (kept in `evaluation`)."""

    folder: Path
    metrics: dict[str, Any]
    train_args: dict[str, Any]
    codes_info: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] | None = None

    @classmethod
    def read(cls, folder: str | Path) -> TrainingRun:
        folder = Path(folder)
        missing = [name for name in ("config.json", "metrics.json") if not (folder / name).exists()]
        if missing:
            raise FileNotFoundError(
                f"{folder} is not a finished training run of scripts/train.py (missing {', '.join(missing)}); the "
                "card is filled from the run's measured metrics, so they must exist"
            )

        def read_json(name: str) -> dict[str, Any] | None:
            path = folder / name
            return json.loads(path.read_text()) if path.exists() else None

        evaluation = read_json(EVAL_RESULTS_FILE)
        if evaluation is not None:
            measured = (evaluation.get("evaluation") or {}).get("weights_sha256")
            if measured is None or measured != weights_fingerprint(folder):
                logger.warning(
                    "%s: %s measured other weights than the model.safetensors there now; the card reports the "
                    "end-of-training figures of metrics.json (rerun scripts/evaluate.py to refresh it)",
                    folder,
                    EVAL_RESULTS_FILE,
                )
                evaluation = None
        return cls(
            folder=folder,
            metrics=read_json("metrics.json"),
            train_args=read_json("train_args.json") or {},
            codes_info=read_json("codes_info.json"),
            config=read_json("config.json"),
            evaluation=evaluation,
        )

    @property
    def card_metrics(self) -> dict[str, Any]:
        """What the card reports: scripts/evaluate.py's figures of the final weights if there are any (the whole
        split, SSIM, FID, the NLL bound), else the end-of-training evaluation of metrics.json."""
        return self.evaluation["metrics"] if self.evaluation else self.metrics

    @property
    def measured(self) -> str:
        """How the card's figures were measured, completing "Measured ... on N images"."""
        return "by `scripts/evaluate.py`" if self.evaluation else "at the end of training"

    @property
    def evaluated_images(self) -> int | None:
        """How many held-out images the card's figures cover (None: the whole split)."""
        if self.evaluation:
            return self.evaluation["metrics"].get("num_images")
        return self.train_args.get("eval_samples")

    @property
    def model_type(self) -> str:
        return self.config["model_type"]

    @property
    def steps(self) -> int | None:
        return self.metrics.get("train/steps")

    def latest_picture(self) -> Path | None:
        """The last evaluation's picture (reconstruction grid, or prior samples)."""
        pictures = sorted((self.folder / IMAGES_DIR).glob("*.png"))
        return pictures[-1] if pictures else None

    def dataset(self) -> DatasetInfo:
        """The data the run was trained on. Priors train on code datasets; their card names the image dataset the
        codes were extracted from (`codes_info.json`'s `source_dataset`)."""
        source = self.train_args.get("dataset") or ""
        image_column = self.train_args.get("image_column", "image")
        class_names = None
        if self.codes_info is not None:
            class_names = _class_names_of(_local_dir(source), "label")
            source = self.codes_info.get("source_dataset") or source
        return describe_dataset(
            source, split=self.train_args.get("eval_split", "test"), image_column=image_column, class_names=class_names
        )


def _local_dir(source: str) -> Path | None:
    path = Path(source)
    return path if source and path.is_dir() else None


def _class_names_of(folder: Path | None, column: str) -> list[str] | None:
    """Class names of a `ClassLabel` column, from the `datasets` features stored in a parquet shard's metadata."""
    if folder is None:
        return None
    import pyarrow.parquet as pq

    shards = sorted(folder.glob("**/*.parquet"))
    if not shards:
        return None
    metadata = pq.read_schema(shards[0]).metadata or {}
    try:
        features = json.loads(metadata[b"huggingface"])["info"]["features"]
        return list(features[column]["names"])
    except (KeyError, TypeError, ValueError):
        return None


def describe_dataset(
    source: str, split: str = "test", image_column: str = "image", class_names: list[str] | None = None
) -> DatasetInfo:
    """A `--dataset` value (a local folder of scripts/prepare_data.py, or a Hub dataset id) as a `DatasetInfo`."""
    local = _local_dir(source)
    if local is None:
        # Not a local folder: a Hub dataset id, as `datasets.load_dataset` takes it.
        return DatasetInfo(name=source, hub_id=source or None, split=split, class_names=class_names)
    info_file = local / "dataset_info.json"
    known = KNOWN_SOURCES.get(json.loads(info_file.read_text()).get("source")) if info_file.exists() else None
    known = known or {"hub_id": None, "name": local.name, "class_names": None}
    return DatasetInfo(
        name=known["name"],
        hub_id=known["hub_id"],
        split=split,
        class_names=class_names or _class_names_of(local, "label") or known["class_names"],
        local_dir=local,
        image_column=image_column,
    )


def example_image(dataset: DatasetInfo) -> Image.Image | None:
    """The first image of the evaluation split of a local dataset (parquet shards), or None."""
    if dataset.local_dir is None:
        return None
    import io

    import pyarrow.parquet as pq

    shards = sorted(dataset.local_dir.glob(f"**/{dataset.split}-*.parquet"))
    if not shards:
        return None
    column = pq.read_table(shards[0], columns=[dataset.image_column]).column(0)
    if len(column) == 0:
        return None
    value = column[0].as_py()
    data = value.get("bytes") if isinstance(value, dict) else value
    return Image.open(io.BytesIO(data)) if data else None


# ------------------------------------------------------------------------------------------------- pipelines
def add_pipelines(repo_dir: str | Path, tasks: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Adds the pipelines of `tasks` to a saved model folder: their code file, and one `custom_pipelines` entry per
    task in config.json, MERGED with the entries already there (as `Pipeline.save_pretrained` writes them: impl as
    `module.Class`, `pt` the model classes). Returns the merged entries."""
    repo_dir = Path(repo_dir)
    config_path = repo_dir / "config.json"
    config = json.loads(config_path.read_text())
    entries = dict(config.get("custom_pipelines") or {})
    for task in tasks:
        if task not in PIPELINES:
            raise ValueError(f"no hf_vqvae pipeline for task {task!r}; known: {sorted(PIPELINES)}")
        pipeline_class = PIPELINES[task]
        module = pipeline_class.__module__.split(".")[-1]
        entries[task] = {"impl": f"{module}.{pipeline_class.__name__}", "pt": ["AutoModel"], "type": "image"}
        # The pipeline's file (and any relative import of it) next to the model code, for trust_remote_code.
        custom_object_save(pipeline_class, repo_dir)
    config["custom_pipelines"] = entries
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return entries


# ---------------------------------------------------------------------------------------------------- the card
def template_path(kind: str) -> Path:
    """The Jinja template of a kind of repo, shipped as package data in `hf_vqvae/model_cards/`."""
    if kind not in CARD_TEMPLATES:
        raise ValueError(f"no model card template for {kind!r}; known: {sorted(CARD_TEMPLATES)}")
    return Path(str(resources.files("hf_vqvae") / "model_cards" / CARD_TEMPLATES[kind]))


def _metric_rows(metrics: dict[str, Any]) -> list[dict]:
    """The reportable `eval/*` entries of a metrics.json (levels of a hierarchy named top first) as card table rows
    and model-index metrics: the same types, names and rounding as `scripts/evaluate.py`'s model-index."""
    return [{"type": kind, "name": name, "value": value} for kind, name, value in metric_entries(metrics)]


def _level_names(num_levels: int) -> list[str]:
    """Names of the levels in a card's tables: a lone level is the VQ-VAE."""
    return level_names(num_levels) if num_levels > 1 else ["VQ-VAE"]


def _architecture(config: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in sorted(config.items()) if key not in _GENERIC_CONFIG_KEYS}


def _training_rows(run: TrainingRun) -> list[tuple[str, Any]]:
    names = TRAINING_FIELDS if run.model_type == "pixelsnail" else TRAINING_FIELDS[: -len(_PRIOR_TRAINING_FIELDS)]
    rows = [(name, run.train_args[name]) for name in names if run.train_args.get(name) is not None]
    if run.steps is not None:
        rows.append(("steps trained", run.steps))
    skipped = run.metrics.get("train/skipped_examples")
    if skipped is not None:
        rows.append(("unreadable examples skipped", skipped))
    return rows


def _eval_results(rows: list[dict], task_type: str, task_name: str, dataset: DatasetInfo) -> list[EvalResult]:
    return eval_results_of_entries(
        ((row["type"], row["name"], row["value"]) for row in rows),
        task_type=task_type,
        task_name=task_name,
        dataset_type=dataset.model_index_type,
        dataset_name=dataset.name,
        dataset_split=dataset.split,
    )


def _num_parameters(folder: Path) -> int:
    from safetensors import safe_open

    total = 0
    for path in folder.glob("*.safetensors"):
        with safe_open(str(path), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 - safe_open handles are not iterable
                total += math.prod(handle.get_slice(name).get_shape())
    return total


def render_model_card(
    kind: str,
    *,
    repo_id: str,
    repo_dir: Path,
    runs: dict[str, TrainingRun],
    dataset: DatasetInfo,
    images: dict[str, str],
    license: str = "apache-2.0",
    class_names: list[str] | None = None,
    sampling: dict[str, Any] | None = None,
) -> ModelCard:
    """A model card for a repo folder, from the Jinja template of `kind`, filled with measured results only.

    Args:
        kind: "vqvae", "vqvae2", "pixelsnail" or "vq_generation".
        repo_id: the Hub id the card's usage snippets load.
        repo_dir: the built repo folder (its config.json and weights).
        runs: the training runs behind the repo: "vq" and/or "priors" (a list, top first) for a bundle, "model"
            for a single model.
        dataset: what the model was trained and evaluated on.
        images: repo-relative paths of the pictures: "reconstructions", "samples", "example_input",
            "example_reconstruction" (any subset).
        license: the weights' license (a Hub license id).
        class_names: names of the classes of a class-conditional prior.
        sampling: for a bundle, how `images["samples"]` was made (seed, temperature, top_k, num_images).
    """
    config = json.loads((repo_dir / "config.json").read_text())
    model_name = repo_id.split("/")[-1]
    context: dict[str, Any] = {
        "repo_id": repo_id,
        "model_name": model_name,
        "title": KIND_TITLES[kind],
        "dataset": dataset,
        "images": images,
        "class_names": class_names,
        "num_parameters": f"{_num_parameters(repo_dir):,}",
        "hf_vqvae_version": _package_version(),
        "transformers_version": transformers.__version__,
        "sampling": sampling or {},
    }
    tags = ["hf_vqvae", "vq-vae", "vector-quantization", "custom_code"]
    eval_results: list[EvalResult] = []
    widget: list[dict[str, Any]] = []

    if kind in ("vqvae", "vqvae2"):
        run = runs["model"]
        vq_config = config
        context.update(_vq_context(vq_config, run))
        context["training_rows"] = _training_rows(run)
        eval_results = _eval_results(context["metric_rows"], "image-to-image", "Image reconstruction", dataset)
        tags += ["image-to-image", "image-feature-extraction"] + (["vq-vae-2"] if kind == "vqvae2" else [])
        if "example_input" in images and "example_reconstruction" in images:
            widget.append(
                {
                    "src": images["example_input"],
                    "example_title": f"A {dataset.split} image of {dataset.name}",
                    "output": {"url": images["example_reconstruction"]},
                }
            )
    elif kind == "pixelsnail":
        run = runs["model"]
        context["prior_config_json"] = json.dumps(_architecture(config), indent=2)
        context["prior"] = config
        context["metric_rows"] = _metric_rows(run.card_metrics)
        context["measured"] = run.measured
        context["training_rows"] = _training_rows(run)
        context["codes_info"] = run.codes_info or {}
        context["vq_model"] = (run.codes_info or {}).get("vq_model")
        eval_results = _eval_results(
            context["metric_rows"], "unconditional-image-generation", "Prior over VQ-VAE codes", dataset
        )
        tags += ["pixelsnail", "autoregressive-prior"]
        if config.get("num_classes"):
            tags.append("class-conditional")
        if "samples" in images:
            widget.append({"example_title": "Prior samples, decoded", "output": {"url": images["samples"]}})
    elif kind == "vq_generation":
        vq_run, prior_runs = runs["vq"], runs["priors"]
        vq_config = config["vq_config"]
        context.update(_vq_context(vq_config, vq_run))
        level_names = _level_names(len(context["levels"]))
        priors = []
        for index, (prior_run, prior_config) in enumerate(zip(prior_runs, config["prior_configs"])):
            rows = _metric_rows(prior_run.card_metrics)
            if len(prior_runs) > 1:
                for row in rows:
                    row["name"] = f"{row['name']}, {level_names[index]} prior"
            priors.append(
                {
                    "level": level_names[index],
                    "config_json": json.dumps(_architecture(prior_config), indent=2),
                    "config": prior_config,
                    "metric_rows": rows,
                    "measured": prior_run.measured,
                    "training_rows": _training_rows(prior_run),
                }
            )
        context["priors"] = priors
        context["vq_training_rows"] = _training_rows(vq_run)
        context["num_classes"] = next(
            (p["num_classes"] for p in config["prior_configs"] if p.get("num_classes")), None
        )
        eval_results = _eval_results(context["metric_rows"], "image-to-image", "Image reconstruction", dataset)
        eval_results += _eval_results(
            [row for prior in priors for row in prior["metric_rows"]],
            "unconditional-image-generation",
            "Image generation (prior likelihood)",
            dataset,
        )
        tags += ["pixelsnail", "image-generation", "unconditional-image-generation", "image-to-image"]
        if context["num_classes"]:
            tags.append("class-conditional")
        if len(context["levels"]) > 1:
            tags.append("vq-vae-2")
        if "samples" in images:
            seed = (sampling or {}).get("seed")
            title = "Samples" + (f" (seed {seed})" if seed is not None else "")
            widget.append({"example_title": title, "output": {"url": images["samples"]}})
    else:
        raise ValueError(f"unknown kind of repo {kind!r}; known: {sorted(CARD_TEMPLATES)}")

    tasks = REPO_TASKS[kind]
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag=tasks[0] if tasks else None,
        tags=tags,
        license=license,
        datasets=[dataset.hub_id] if dataset.hub_id else None,
        metrics=sorted({result.metric_type for result in eval_results}) or None,
        model_name=model_name,
        eval_results=eval_results or None,
        widget=widget or None,
    )
    return ModelCard.from_template(card_data, template_path=str(template_path(kind)), **context)


def _vq_context(vq_config: dict[str, Any], run: TrainingRun) -> dict[str, Any]:
    """Card fields of a VQ-VAE or VQ-VAE-2: its levels, compression, metrics."""
    size, channels = vq_config["image_size"], vq_config["in_channels"]
    if vq_config["model_type"] == "vqvae2":
        factors = vq_config["downsample_factors"]
        ks = vq_config["num_embeddings"]
        ks = ks if isinstance(ks, list) else [ks] * len(factors)
    else:
        factors, ks = [vq_config["downsample_factor"]], [vq_config["num_embeddings"]]
    names = _level_names(len(factors))
    levels = [
        {"name": name, "side": size // factor, "num_embeddings": k, "bits": (size // factor) ** 2 * math.log2(k)}
        for name, factor, k in zip(names, factors, ks)
    ]
    code_bits = sum(level["bits"] for level in levels)
    return {
        "vq": vq_config,
        "vq_config_json": json.dumps(_architecture(vq_config), indent=2),
        "levels": levels,
        "image_bits": size * size * channels * 8,
        "code_bits": round(code_bits),
        "compression": round(size * size * channels * 8 / code_bits, 1),
        "metric_rows": _metric_rows(run.card_metrics),
        "measured": run.measured,
        "eval_samples": run.evaluated_images,
    }


def _package_version() -> str:
    from . import __version__

    return __version__


# ------------------------------------------------------------------------------------------------ repo folders
def _fresh_dir(repo_dir: str | Path) -> Path:
    import shutil

    repo_dir = Path(repo_dir)
    if repo_dir.exists():
        shutil.rmtree(repo_dir)
    repo_dir.mkdir(parents=True)
    (repo_dir / IMAGES_DIR).mkdir()
    return repo_dir


def _copy_picture(source: Path | None, repo_dir: Path, name: str) -> str | None:
    if source is None or not source.exists():
        return None
    relative = f"{IMAGES_DIR}/{name}"
    Image.open(source).save(repo_dir / relative)
    return relative


@torch.no_grad()
def _example_pictures(vq_model, processor: VQVAEImageProcessor, dataset: DatasetInfo, repo_dir: Path) -> dict:
    """One real held-out image and the model's reconstruction of it, for the card's widget example."""
    image = example_image(dataset)
    if image is None:
        return {}
    pixels = processor(image, return_tensors="pt").pixel_values.to(vq_model.device, vq_model.dtype)
    reconstruction = vq_model(pixels).reconstruction.clamp(-1, 1)
    # The input as the model sees it (resized, cropped, converted), so the two pictures compare like for like.
    seen, rebuilt = processor.postprocess(pixels)[0], processor.postprocess(reconstruction)[0]
    seen.save(repo_dir / IMAGES_DIR / "example_input.png")
    rebuilt.save(repo_dir / IMAGES_DIR / "example_reconstruction.png")
    return {
        "example_input": f"{IMAGES_DIR}/example_input.png",
        "example_reconstruction": f"{IMAGES_DIR}/example_reconstruction.png",
    }


def _processor_for(folder: Path, config) -> VQVAEImageProcessor:
    if (folder / "preprocessor_config.json").exists():
        return VQVAEImageProcessor.from_pretrained(folder)
    return VQVAEImageProcessor.for_model_size(config.image_size, num_channels=config.in_channels)


def build_model_repo(
    run_dir: str | Path,
    repo_dir: str | Path,
    repo_id: str,
    license: str = "apache-2.0",
    dataset: DatasetInfo | None = None,
) -> Path:
    """A Hub-ready folder for one model trained by scripts/train.py (VQ-VAE, VQ-VAE-2 or PixelSNAIL prior):
    weights and code, processor config, pipelines in config.json, README.md and images/.

    Args:
        run_dir: the training run's `output_dir`.
        repo_dir: the folder to write (replaced if it exists).
        repo_id: the Hub id the card's snippets load (`org/name`).
        license: the weights' license, a Hub license id.
        dataset: overrides what the card says about the data (default: read from the run).
    """
    run = TrainingRun.read(run_dir)
    kind = run.model_type
    if kind not in ("vqvae", "vqvae2", "pixelsnail"):
        raise ValueError(f"{run_dir} holds a {kind!r} model; build_model_repo packages vqvae, vqvae2 or pixelsnail")
    dataset = dataset or run.dataset()
    repo_dir = _fresh_dir(repo_dir)
    model = AutoModel.from_pretrained(run.folder).eval()
    # Re-saved rather than copied: the repo gets exactly the weights, the code and the auto_map of this package.
    model.save_pretrained(repo_dir)
    images: dict[str, str] = {}
    if kind == "pixelsnail":
        if run.codes_info is not None:
            (repo_dir / "codes_info.json").write_text(json.dumps(run.codes_info, indent=2) + "\n")
        picture = _copy_picture(run.latest_picture(), repo_dir, "samples.png")
        if picture:
            images["samples"] = picture
        class_names = dataset.class_names if model.config.num_classes else None
    else:
        processor = _processor_for(run.folder, model.config)
        processor.save_pretrained(repo_dir)
        picture = _copy_picture(run.latest_picture(), repo_dir, "reconstructions.png")
        if picture:
            images["reconstructions"] = picture
        images.update(_example_pictures(model, processor, dataset, repo_dir))
        class_names = None
    add_pipelines(repo_dir, REPO_TASKS[kind])
    card = render_model_card(
        kind,
        repo_id=repo_id,
        repo_dir=repo_dir,
        runs={"model": run},
        dataset=dataset,
        images=images,
        license=license,
        class_names=class_names,
    )
    card.save(repo_dir / "README.md")
    return repo_dir


def build_generation_repo(
    vq_dir: str | Path,
    prior_dirs: Sequence[str | Path],
    repo_dir: str | Path,
    repo_id: str,
    license: str = "apache-2.0",
    num_samples: int = 16,
    seed: int = 0,
    temperature: float = 1.0,
    top_k: int | None = None,
    dataset: DatasetInfo | None = None,
) -> Path:
    """A generation bundle repo: the VQ model of `vq_dir` and the priors of `prior_dirs` (top level first) as one
    [`VQGenerationModel`], its processor config, the three pipelines, README.md, and images/ (the VQ run's
    reconstructions and `num_samples` samples drawn by the bundle itself with `seed`).

    Args:
        vq_dir: training run (or saved folder) of the VQ-VAE / VQ-VAE-2.
        prior_dirs: training runs of the priors over its codes, top level first.
        repo_dir: the folder to write (replaced if it exists).
        repo_id: the Hub id the card's snippets load (`org/name`).
        license: the weights' license, a Hub license id.
        num_samples, seed, temperature, top_k: how the sample picture is drawn.
        dataset: overrides what the card says about the data (default: read from the VQ run).
    """
    vq_run = TrainingRun.read(vq_dir)
    prior_runs = [TrainingRun.read(folder) for folder in prior_dirs]
    for prior_run in prior_runs:
        source = (prior_run.codes_info or {}).get("vq_model")
        if source and Path(source).exists() and Path(source).resolve() != Path(vq_dir).resolve():
            logger.warning(f"the prior in {prior_run.folder} was trained on codes of {source}, not of {vq_dir}")
    dataset = dataset or vq_run.dataset()
    vq_model = AutoModel.from_pretrained(vq_run.folder).eval()
    priors = [PixelSNAILModel.from_pretrained(run.folder).eval() for run in prior_runs]
    class_names = None
    if any(prior.config.num_classes for prior in priors):
        num_classes = next(prior.config.num_classes for prior in priors if prior.config.num_classes)
        class_names = next((run.dataset().class_names for run in prior_runs if run.codes_info), None)
        class_names = class_names or dataset.class_names
        if class_names is not None and len(class_names) != num_classes:
            class_names = None
    id2label = dict(enumerate(class_names)) if class_names else None
    bundle = VQGenerationModel.from_parts(vq_model, priors, id2label=id2label)

    repo_dir = _fresh_dir(repo_dir)
    bundle.save_pretrained(repo_dir)
    processor = _processor_for(vq_run.folder, vq_model.config)
    processor.save_pretrained(repo_dir)
    images: dict[str, str] = {}
    picture = _copy_picture(vq_run.latest_picture(), repo_dir, "reconstructions.png")
    if picture:
        images["reconstructions"] = picture
    images.update(_example_pictures(vq_model, processor, dataset, repo_dir))
    generator = torch.Generator(device=bundle.device).manual_seed(seed)
    pixels = bundle.generate(num_samples, temperature=temperature, top_k=top_k, generator=generator)
    samples = processor.postprocess(pixels)
    save_sample_grid(samples, repo_dir / IMAGES_DIR / "samples.png", columns=min(8, num_samples))
    images["samples"] = f"{IMAGES_DIR}/samples.png"
    labels = None
    if bundle.config.num_classes:
        labels = [int(i) % bundle.config.num_classes for i in range(num_samples)]
    add_pipelines(repo_dir, REPO_TASKS["vq_generation"])
    card = render_model_card(
        "vq_generation",
        repo_id=repo_id,
        repo_dir=repo_dir,
        runs={"vq": vq_run, "priors": prior_runs},
        dataset=dataset,
        images=images,
        license=license,
        class_names=class_names,
        sampling={
            "num_images": num_samples,
            "seed": seed,
            "temperature": temperature,
            "top_k": top_k,
            "class_labels": labels,
        },
    )
    card.save(repo_dir / "README.md")
    return repo_dir


# --------------------------------------------------------------------------------------------------------- push
def repo_files(repo_dir: str | Path) -> list[Path]:
    """The files of a repo folder that go to the Hub, sorted (no caches, no hidden files)."""
    repo_dir = Path(repo_dir)
    files = []
    for path in sorted(repo_dir.rglob("*")):
        relative = path.relative_to(repo_dir)
        if not path.is_file() or path.name in _SKIPPED_FILES or path.suffix == ".pyc":
            continue
        if any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
            continue
        files.append(path)
    return files


def default_commit_message(repo_dir: str | Path) -> tuple[str, str]:
    """A commit title naming what is uploaded, and a description listing the files and the card's results."""
    repo_dir = Path(repo_dir)
    config = json.loads((repo_dir / "config.json").read_text())
    kind = config.get("model_type", "model")
    title = KIND_TITLES.get(kind, kind)
    if kind == "vq_generation":
        title += f" ({KIND_TITLES[config['vq_config']['model_type']]} + {len(config['prior_configs'])} prior(s))"
    message = f"Upload {title}: weights, code, pipelines, processor config, model card and images"
    lines = [f"Uploaded with hf_vqvae {_package_version()} (transformers {transformers.__version__})."]
    readme = repo_dir / "README.md"
    if readme.exists():
        card = ModelCard.load(readme)
        for result in card.data.eval_results or []:
            lines.append(f"- {result.metric_name or result.metric_type}: {result.metric_value}")
    lines.append("")
    lines += [f"- {path.relative_to(repo_dir).as_posix()}" for path in repo_files(repo_dir)]
    return message, "\n".join(lines)


def push_folder(
    repo_dir: str | Path,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str | None = None,
    commit_description: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
):
    """Uploads every file of `repo_dir` (weights, code, processor config, card, images) to `repo_id` in ONE
    commit, creating the repo if needed. Returns the `CommitInfo`."""
    repo_dir = Path(repo_dir)
    files = repo_files(repo_dir)
    required = [name for name in ("config.json", "README.md") if not (repo_dir / name).exists()]
    if required:
        raise FileNotFoundError(f"{repo_dir} is not a Hub-ready folder (missing {', '.join(required)})")
    default_message, default_description = default_commit_message(repo_dir)
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    operations = [
        CommitOperationAdd(path_in_repo=path.relative_to(repo_dir).as_posix(), path_or_fileobj=str(path))
        for path in files
    ]
    commit = api.create_commit(
        repo_id,
        operations,
        commit_message=commit_message or default_message,
        commit_description=commit_description if commit_description is not None else default_description,
        repo_type="model",
        revision=revision,
        create_pr=create_pr,
    )
    logger.info(f"pushed {len(operations)} files to {repo_id} in one commit: {getattr(commit, 'commit_url', commit)}")
    return commit


def push_training_run(
    output_dir: str | Path,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    license: str = "apache-2.0",
):
    """What `scripts/train.py --push_to_hub` does after saving: builds `<output_dir>/hub` and pushes it. A bare
    `name` goes to the namespace of the token's user, and the card's snippets name that full id."""
    if "/" not in repo_id:
        repo_id = f"{HfApi(token=token).whoami()['name']}/{repo_id}"
    repo_dir = build_model_repo(output_dir, Path(output_dir) / "hub", repo_id, license=license)
    return push_folder(repo_dir, repo_id, private=private, token=token)


__all__ = [
    "DatasetInfo",
    "TrainingRun",
    "add_pipelines",
    "build_generation_repo",
    "build_model_repo",
    "default_commit_message",
    "describe_dataset",
    "push_folder",
    "push_training_run",
    "render_model_card",
    "repo_files",
    "template_path",
]
