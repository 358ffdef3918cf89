"""Model cards: Jinja templates in `hf_vqvae/model_cards/` through `huggingface_hub.ModelCard.from_template`, filled
with measured results only (the training runs' `metrics.json`, or `scripts/evaluate.py`'s `eval_results.json`), in
the model-index format of `hf_vqvae.evaluation.model_index`."""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import transformers
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from transformers import AutoConfig

from ..evaluation.datasets import DatasetInfo
from ..evaluation.model_index import TASK_INFO, eval_results_of_entries, level_names, metric_entries
from ..space.build import demo_app, demo_card_section
from .pipelines import REPO_TASKS
from .runs import TrainingRun

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
    # The VQ model of a speech generation bundle (push.default_commit_message names a bundle's VQ model).
    "audio_vqvae": "audio VQ-VAE",
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


def _eval_results(rows: list[dict], task: str, dataset: DatasetInfo, task_name: str | None = None) -> list[EvalResult]:
    """The rows as `EvalResult`s of one task of `TASK_INFO` ("reconstruction" or "prior"), under `task_name` if
    given (the task's own name otherwise)."""
    task_type, default_name = TASK_INFO[task]
    return eval_results_of_entries(
        ((row["type"], row["name"], row["value"]) for row in rows),
        task_type=task_type,
        task_name=task_name or default_name,
        dataset_type=dataset.model_index_type,
        dataset_name=dataset.name,
        dataset_split=dataset.split,
        held_out_percentage=dataset.held_out_percentage,
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
        class_names: names of the classes of a class-conditional prior (VQ cards name `dataset.class_names`).
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
        "hf_vqvae_version": package_version(),
        "transformers_version": transformers.__version__,
        "sampling": sampling or {},
        # The folder's app.py (written before its card), with how to run it and push it as a Space.
        "demo_section": demo_card_section(repo_id, app) if (app := demo_app(repo_dir)) else "",
    }
    tags = ["hf_vqvae", "vq-vae", "vector-quantization", "custom_code"]
    eval_results: list[EvalResult] = []
    widget: list[dict[str, Any]] = []

    if kind in ("vqvae", "vqvae2"):
        run = runs["model"]
        vq_config = config
        context.update(_vq_context(vq_config, run))
        context["training_rows"] = _training_rows(run)
        eval_results = _eval_results(context["metric_rows"], "reconstruction", dataset)
        tags += ["image-to-image", "image-feature-extraction"]
        if "example_input" in images and "example_reconstruction" in images:
            widget.append(
                {
                    "src": images["example_input"],
                    "example_title": f"A held-out {dataset.split} image of {dataset.name}",
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
        context["vq_model"] = run.codes_info.vq_model if run.codes_info else None
        eval_results = _eval_results(context["metric_rows"], "prior", dataset)
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
        eval_results = _eval_results(context["metric_rows"], "reconstruction", dataset)
        eval_results += _eval_results(
            [row for prior in priors for row in prior["metric_rows"]],
            "prior",
            dataset,
            task_name="Image generation (prior likelihood)",
        )
        tags += ["pixelsnail", "image-generation", "unconditional-image-generation", "image-to-image"]
        if context["num_classes"]:
            tags.append("class-conditional")
        if "samples" in images:
            seed = (sampling or {}).get("seed")
            title = "Samples" + (f" (seed {seed})" if seed is not None else "")
            widget.append({"example_title": title, "output": {"url": images["samples"]}})
    else:
        raise ValueError(f"unknown kind of repo {kind!r}; known: {sorted(CARD_TEMPLATES)}")

    if len(context.get("levels", ())) > 1:
        tags.append("vq-vae-2")
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
    """Card fields of a VQ model (its config.json as a dict), from its level list: the levels (top first), the
    compression, the metrics."""
    config = AutoConfig.for_model(**vq_config)
    names = _level_names(config.num_levels)
    levels = [
        {"name": name, "side": shape[-1], "num_embeddings": k, "bits": math.prod(shape) * math.log2(k)}
        for name, shape, k in zip(names, config.level_latent_shapes, config.level_num_embeddings)
    ]
    code_bits = sum(level["bits"] for level in levels)
    image_bits = config.in_channels * config.image_size**config.spatial_dims * 8
    return {
        "vq": vq_config,
        "vq_config_json": json.dumps(_architecture(vq_config), indent=2),
        "levels": levels,
        "image_bits": image_bits,
        "code_bits": round(code_bits),
        "compression": round(image_bits / code_bits, 1),
        "metric_rows": _metric_rows(run.card_metrics),
        "measured": run.measured,
        "eval_samples": run.evaluated_images,
    }


def package_version() -> str:
    from .. import __version__

    return __version__


__all__ = ["CARD_TEMPLATES", "KIND_TITLES", "TRAINING_FIELDS", "package_version", "render_model_card", "template_path"]
