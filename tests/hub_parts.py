"""The trained parts behind tests/test_hub_packaging.py: small VQ-VAE, VQ-VAE-2 and PixelSNAIL models trained for a
few dozen Adam steps on crops of real photos, written as scripts/train.py leaves its runs, the Hub repos built from
them, and an offline Hub cache holding those repos."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from conftest import place_in_hub_cache
from datasets import ClassLabel, Dataset, Features, Value
from datasets import Image as ImageFeature
from PIL import Image

from hf_vqvae import (
    PixelSNAILConfig,
    PixelSNAILModel,
    VQVAE2Config,
    VQVAE2Model,
    VQVAEConfig,
    VQVAEImageProcessor,
    VQVAEModel,
)
from hf_vqvae.codes_info import CodesInfo
from hf_vqvae.data import random_crops, skimage_photos, write_parquet_shards
from hf_vqvae.hub import build_generation_repo, build_model_repo
from hf_vqvae.images import save_reconstruction_grid, save_sample_grid
from hf_vqvae.metrics.functional import codebook_fraction_used, codebook_perplexity, psnr_per_image

# The classes of the class-conditional prior: which photo a crop was cut from.
PHOTOS = ("astronaut", "coffee", "chelsea")
SIZE = 16
# One thread: these models are tiny, and on 2 cores shared with other jobs a second thread mostly waits for its
# turn; it made the tests an order of magnitude slower. Subprocesses get the same setting.
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def photo_crops(per_photo: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, list[Image.Image]]:
    """Crops `(N, 3, SIZE, SIZE)` in [-1, 1] of the PHOTOS, their labels (which photo), and the crops as images."""
    images, labels = [], []
    for label, photo in enumerate(skimage_photos(PHOTOS)):
        crops = list(random_crops([photo], SIZE, per_photo, seed=seed + label))
        images += crops
        labels += [label] * len(crops)
    pixels = torch.from_numpy(np.stack([np.asarray(crop) for crop in images])).permute(0, 3, 1, 2)
    return pixels.float().div(127.5).sub(1.0), torch.tensor(labels), images


def train(model, batches, steps: int, lr: float = 3e-3) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for step in range(steps):
        loss = batches(step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


@torch.no_grad()
def vq_metrics(model, pixels: torch.Tensor) -> dict[str, float]:
    """The metrics `ImageTask.evaluate` writes, measured on `pixels`."""
    out = model(pixels)
    reconstruction = out.reconstruction.clamp(-1, 1)
    metrics = {
        "eval/mse": float((reconstruction - pixels).square().flatten(1).mean(1).mean()),
        "eval/psnr": float(psnr_per_image(reconstruction, pixels).mean()),
    }
    codes = out.level_codes
    for level, (level_codes, k) in enumerate(zip(codes, model.config.level_num_embeddings)):
        histogram = torch.bincount(level_codes.flatten(), minlength=k).double()
        prefix = "eval/" if len(codes) == 1 else f"eval/level{level}_"
        metrics[prefix + "perplexity"] = codebook_perplexity(histogram)
        metrics[prefix + "codebook_used"] = codebook_fraction_used(histogram)
    return metrics


@torch.no_grad()
def prior_metrics(prior, codes, condition=None, labels=None) -> dict[str, float]:
    """The metrics `PriorTask.evaluate` writes."""
    nll = float(prior(codes, condition=condition, class_labels=labels, labels=codes).loss)
    return {
        "eval/nll_nats_per_code": nll,
        "eval/bits_per_code": nll / math.log(2),
        "eval/bits_per_dim": nll * codes[0].numel() / (3 * SIZE * SIZE * math.log(2)),
    }


def write_run(folder: Path, model, metrics: dict, train_args: dict, picture: Image.Image | None, **extra) -> Path:
    """A folder as scripts/train.py leaves it: final model (+ processor), metrics.json, train_args.json, images/."""
    model.save_pretrained(folder)
    if hasattr(model.config, "image_size"):
        VQVAEImageProcessor.for_model_size(SIZE, 3).save_pretrained(folder)
    (folder / "metrics.json").write_text(json.dumps({**metrics, "train/steps": train_args["max_train_steps"]}))
    (folder / "train_args.json").write_text(json.dumps(train_args))
    if picture is not None:
        (folder / "images").mkdir()
        picture.save(folder / "images" / f"{train_args['model']}-step{train_args['max_train_steps']:06d}.png")
    for name, content in extra.items():
        (folder / f"{name}.json").write_text(json.dumps(content))
    return folder


def train_args(model: str, dataset: Path, steps: int, **fields) -> dict:
    return {
        "model": model, "dataset": str(dataset), "eval_split": "test", "per_device_train_batch_size": 16,
        "learning_rate": 3e-3, "lr_warmup_steps": 0, "max_train_steps": steps, "mixed_precision": "no", "seed": 0,
        "eval_samples": 24, **fields,
    }  # fmt: skip


def build_parts(root: Path) -> SimpleNamespace:
    """Trained parts written as training runs under `root`, the repos built from them, and an offline Hub cache
    holding them."""
    torch.manual_seed(0)
    train_pixels, train_labels, _ = photo_crops(32, seed=0)
    test_pixels, test_labels, test_images = photo_crops(8, seed=100)

    # The held-out crops as a dataset folder, as scripts/prepare_data.py writes one (parquet shards + info).
    data = root / "data"
    features = Features({"id": Value("int64"), "image": ImageFeature(), "label": ClassLabel(names=list(PHOTOS))})
    rows = {"id": list(range(len(test_images))), "image": test_images, "label": test_labels.tolist()}
    write_parquet_shards(Dataset.from_dict(rows, features=features), data, "test", 1)
    (data / "dataset_info.json").write_text(json.dumps({"source": "photos"}))
    processor = VQVAEImageProcessor.for_model_size(SIZE, 3)

    def batch(step: int, size: int = 16) -> slice:
        start = (step * size) % (len(train_pixels) - size)
        return slice(start, start + size)

    # VQ-VAE and a class-conditional prior over its 4x4 codes.
    vq = VQVAEModel(VQVAEConfig(image_size=SIZE, hidden_channels=16, residual_channels=8, num_embeddings=32,
                                embedding_dim=8))  # fmt: skip
    train(vq, lambda step: vq(train_pixels[batch(step)]).loss, steps=40)
    grid = root / "grid.png"
    save_reconstruction_grid(processor.postprocess(test_pixels[:8]), processor.postprocess(vq(test_pixels[:8])
                             .reconstruction.detach().clamp(-1, 1)), grid)  # fmt: skip
    vq_dir = write_run(
        root / "vqvae", vq, vq_metrics(vq, test_pixels), train_args("vqvae", data, 40), Image.open(grid)
    )

    prior_config = PixelSNAILConfig(num_embeddings=32, latent_height=4, latent_width=4, hidden_channels=16,
                                    num_stages=1, num_residual_blocks=1, num_attention_heads=2, kernel_size=3,
                                    num_classes=len(PHOTOS))  # fmt: skip
    prior = PixelSNAILModel(prior_config)
    train_codes, test_codes = vq.encode(train_pixels), vq.encode(test_pixels)
    train(prior, lambda s: prior(train_codes[batch(s)], class_labels=train_labels[batch(s)],
                                 labels=train_codes[batch(s)]).loss, steps=30)  # fmt: skip
    # The record scripts/extract_codes.py writes for these codes, with the prior's columns as train.py saves it.
    codes_info = CodesInfo.for_vq_model(vq.config, vq_model=str(vq_dir), source_dataset=str(data))
    codes_info.label_column, codes_info.num_classes = "label", len(PHOTOS)
    codes_info = codes_info.for_prior("codes").to_dict()
    # As PriorTask.evaluate pictures it: prior samples for the eval labels, decoded by the VQ-VAE.
    samples = prior.generate(6, class_labels=test_labels[::4][:6], generator=torch.Generator().manual_seed(0))
    save_sample_grid(processor.postprocess(vq.decode(samples).clamp(-1, 1)), root / "samples.png", columns=6)
    prior_dir = write_run(
        root / "prior", prior, prior_metrics(prior, test_codes, labels=test_labels),
        train_args("pixelsnail", root / "codes", 30, class_conditional=True, code_column="codes"),
        Image.open(root / "samples.png"), codes_info=codes_info,
    )  # fmt: skip

    # VQ-VAE-2 (top 4x4, bottom 8x8) and its two priors, the bottom one conditioned on the top codes.
    vq2 = VQVAE2Model(VQVAE2Config(image_size=SIZE, hidden_channels=16, residual_channels=8,
                                   downsample_factors=[4, 2], num_embeddings=16, embedding_dim=8))  # fmt: skip
    train(vq2, lambda step: vq2(train_pixels[batch(step)]).loss, steps=30)
    vq2_dir = write_run(root / "vqvae2", vq2, vq_metrics(vq2, test_pixels), train_args("vqvae2", data, 30), None)
    top_codes, bottom_codes = vq2.encode(train_pixels)
    small = {"hidden_channels": 16, "num_stages": 1, "num_residual_blocks": 1, "kernel_size": 3, "num_embeddings": 16}
    top = PixelSNAILModel(PixelSNAILConfig(latent_height=4, latent_width=4, num_attention_heads=2, **small))
    bottom = PixelSNAILModel(
        PixelSNAILConfig(latent_height=8, latent_width=8, attention=False, condition_num_embeddings=16,
                         condition_height=4, condition_width=4, num_condition_blocks=1, **small)
    )  # fmt: skip
    train(top, lambda s: top(top_codes[batch(s)], labels=top_codes[batch(s)]).loss, steps=20)
    train(bottom, lambda s: bottom(bottom_codes[batch(s)], condition=top_codes[batch(s)],
                                   labels=bottom_codes[batch(s)]).loss, steps=20)  # fmt: skip
    test_top, test_bottom = vq2.encode(test_pixels)
    info2 = CodesInfo.for_vq_model(vq2.config, vq_model=str(vq2_dir), source_dataset=str(data))
    top_dir = write_run(root / "top", top, prior_metrics(top, test_top), train_args("pixelsnail", data, 20),
                        None, codes_info=info2.for_prior("codes_0").to_dict())  # fmt: skip
    bottom_dir = write_run(root / "bottom", bottom, prior_metrics(bottom, test_bottom, condition=test_top),
                           train_args("pixelsnail", data, 20, condition_column="codes_0"), None,
                           codes_info=info2.for_prior("codes_1", "codes_0").to_dict())  # fmt: skip

    repos = root / "repos"
    built = {
        "org/vqvae-photos": build_model_repo(vq_dir, repos / "vqvae", "org/vqvae-photos"),
        "org/vqvae2-photos": build_model_repo(vq2_dir, repos / "vqvae2", "org/vqvae2-photos"),
        "org/prior-photos": build_model_repo(prior_dir, repos / "prior", "org/prior-photos"),
        "org/generation-photos": build_generation_repo(
            vq_dir, [prior_dir], repos / "generation", "org/generation-photos", num_samples=6, seed=3
        ),
        "org/generation2-photos": build_generation_repo(
            vq2_dir, [top_dir, bottom_dir], repos / "generation2", "org/generation2-photos", num_samples=4
        ),
    }
    hf_home = root / "hf_home"
    for repo_id, folder in built.items():
        place_in_hub_cache(folder, repo_id, hf_home)
    env = {"HF_HOME": str(hf_home), "HF_HUB_CACHE": str(hf_home / "hub"), "HF_MODULES_CACHE": str(hf_home / "modules")}
    env.update(SINGLE_THREAD)

    # Real photos as files, the inputs users pass.
    inputs = root / "inputs"
    inputs.mkdir()
    for name, photo in zip(("chelsea", "coffee", "rocket"), skimage_photos(("chelsea", "coffee", "rocket"))):
        photo.save(inputs / f"{name}.png")
    return SimpleNamespace(
        root=root, vq=vq, prior=prior, vq2=vq2, top=top, bottom=bottom, vq_dir=vq_dir, prior_dir=prior_dir,
        vq2_dir=vq2_dir, top_dir=top_dir, bottom_dir=bottom_dir, repos=built, env=env, inputs=inputs,
        processor=processor, data=data, test_pixels=test_pixels,
    )  # fmt: skip
