"""Hub-ready repo folders: weights and code (`trust_remote_code`), processor config, pipelines, a model card from
measured results and its pictures under `images/`.

* `build_model_repo(run_dir, repo_dir, repo_id)`: a VQ-VAE, VQ-VAE-2 or PixelSNAIL prior trained by
  `scripts/train.py`.
* `build_generation_repo(vq_dir, prior_dirs, repo_dir, repo_id)`: a generation bundle ([`VQGenerationModel`]), the
  VQ model and its priors in ONE repo, so that one `from_pretrained` or
  `pipeline("unconditional-image-generation", model=repo_id, trust_remote_code=True)` gives images (or, for an
  audio VQ-VAE, `pipeline("unconditional-audio-generation", ...)` speech: `hub.audio_repos`).
"""

from __future__ import annotations

import io
import json
import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from transformers import AutoModel

from ..configuration_generation import VQGenerationConfig
from ..data import HeldOut
from ..evaluation.datasets import DatasetInfo
from ..image_processing_vqvae import VQVAEImageProcessor
from ..images import save_sample_grid
from ..loading import load_processor
from ..modeling_generation import VQGenerationModel
from ..modeling_pixelsnail import PixelSNAILModel
from ..repo_kinds import SPEECH_GENERATION, repo_kind
from ..sampling import default_class_labels, num_classes_of
from ..space.build import write_app
from .audio_repos import build_speech_generation_repo
from .cards import render_model_card
from .pipelines import REPO_TASKS, add_pipelines
from .runs import IMAGES_DIR, TrainingRun

logger = logging.getLogger(__name__)


def example_image(dataset: DatasetInfo) -> Image.Image | None:
    """The first image of the evaluation data of a local dataset (parquet shards), or None: of its evaluation split,
    or the first that training held out of its train split."""
    if dataset.local_dir is None:
        return None
    import pyarrow.parquet as pq

    shards = sorted(dataset.local_dir.glob(f"**/{dataset.split}-*.parquet"))
    held_out = HeldOut(dataset.held_out_percentage, "image") if dataset.held_out_percentage else None
    for shard in shards:
        for value in pq.read_table(shard, columns=[dataset.image_column]).column(0).to_pylist():
            if held_out is None or held_out({"image": value}):
                data = value.get("bytes") if isinstance(value, dict) else value
                return Image.open(io.BytesIO(data)) if data else None
    return None


def _fresh_dir(repo_dir: str | Path) -> Path:
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
            run.codes_info.write(repo_dir)
        picture = _copy_picture(run.latest_picture(), repo_dir, "samples.png")
        if picture:
            images["samples"] = picture
        class_names = dataset.class_names if model.config.num_classes else None
    else:
        processor = load_processor(run.folder, model.config)
        processor.save_pretrained(repo_dir)
        picture = _copy_picture(run.latest_picture(), repo_dir, "reconstructions.png")
        if picture:
            images["reconstructions"] = picture
        images.update(_example_pictures(model, processor, dataset, repo_dir))
        class_names = None
    add_pipelines(repo_dir, REPO_TASKS[kind])
    write_app(repo_dir)  # the Gradio demo, for repos that serve images
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
    vq_dir: str | Path, prior_dirs: Sequence[str | Path], repo_dir: str | Path, repo_id: str, **options: Any
) -> Path:
    """A generation bundle repo of the VQ model of `vq_dir` and the priors of `prior_dirs` (top level first), built
    by the builder of the bundle's kind (`GENERATION_REPO_BUILDERS`, keyed by `repo_kind`): images
    (`build_image_generation_repo`) or speech (`hub.audio_repos.build_speech_generation_repo`). `options` are those
    builders' own (`license`, `num_samples`: 16 images or one clip per speaker by default, `seed`, `temperature`,
    `top_k`, `dataset`)."""
    vq_type = json.loads((Path(vq_dir) / "config.json").read_text()).get("model_type")
    kind = repo_kind({"model_type": VQGenerationConfig.model_type, "vq_config": {"model_type": vq_type}})
    return GENERATION_REPO_BUILDERS[kind](vq_dir, prior_dirs, repo_dir, repo_id, **options)


def build_image_generation_repo(
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
    """A generation bundle repo: the VQ model of `vq_dir` and the priors of `prior_dirs` (top level first) as one
    [`VQGenerationModel`], its processor config, the three pipelines, README.md, and images/ (the VQ run's
    reconstructions and `num_samples` (default 16) samples drawn by the bundle itself with `seed`).

    Args:
        vq_dir: training run (or saved folder) of the VQ-VAE / VQ-VAE-2.
        prior_dirs: training runs of the priors over its codes, top level first.
        repo_dir: the folder to write (replaced if it exists).
        repo_id: the Hub id the card's snippets load (`org/name`).
        license: the weights' license, a Hub license id.
        num_samples, seed, temperature, top_k: how the sample picture is drawn.
        dataset: overrides what the card says about the data (default: read from the VQ run).
    """
    num_samples = num_samples or 16
    vq_run = TrainingRun.read(vq_dir)
    prior_runs = [TrainingRun.read(folder) for folder in prior_dirs]
    for prior_run in prior_runs:
        source = prior_run.codes_info.vq_model if prior_run.codes_info else None
        if source and Path(source).exists() and Path(source).resolve() != Path(vq_dir).resolve():
            logger.warning(f"the prior in {prior_run.folder} was trained on codes of {source}, not of {vq_dir}")
    dataset = dataset or vq_run.dataset()
    vq_model = AutoModel.from_pretrained(vq_run.folder).eval()
    priors = [PixelSNAILModel.from_pretrained(run.folder).eval() for run in prior_runs]
    class_names = None
    num_classes = num_classes_of(priors)
    if num_classes is not None:
        class_names = next((run.dataset().class_names for run in prior_runs if run.codes_info), None)
        class_names = class_names or dataset.class_names
        if class_names is not None and len(class_names) != num_classes:
            class_names = None
    id2label = dict(enumerate(class_names)) if class_names else None
    bundle = VQGenerationModel.from_parts(vq_model, priors, id2label=id2label)

    repo_dir = _fresh_dir(repo_dir)
    bundle.save_pretrained(repo_dir)
    processor = load_processor(vq_run.folder, vq_model.config)
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
    # The labels `generate` used: none given, a class-conditional bundle cycles through its classes.
    labels = default_class_labels(num_samples, num_classes).tolist() if num_classes is not None else None
    add_pipelines(repo_dir, REPO_TASKS["vq_generation"])
    write_app(repo_dir)
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


# The builder of each kind of generation bundle (`repo_kind` of its config), all with build_generation_repo's
# arguments.
GENERATION_REPO_BUILDERS: dict[str, Callable[..., Path]] = {
    VQGenerationConfig.model_type: build_image_generation_repo,
    SPEECH_GENERATION: build_speech_generation_repo,
}


__all__ = [
    "GENERATION_REPO_BUILDERS",
    "build_generation_repo",
    "build_image_generation_repo",
    "build_model_repo",
    "example_image",
]
