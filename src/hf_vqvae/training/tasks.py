"""What differs between training a VQ model on images and a prior on codes; `scripts/train.py` holds the one
training loop and asks a task for the model, the data, the loss, the evaluation and the pictures.

* `ImageTask` (`--model vqvae` or `vqvae2`): images from a streamed dataset, decoded by `VQVAEImageProcessor` in
  DataLoader workers; evaluation reports MSE, PSNR and codebook usage over the held-out split.
* `PriorTask` (`--model pixelsnail`): code maps from a dataset written by `scripts/extract_codes.py`; evaluation
  reports bits per code and bits per image dimension; pictures are prior samples decoded by the VQ model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import hf_hub_download
from torch.utils.data import DataLoader
from transformers import AutoModel

from ..configuration_pixelsnail import PixelSNAILConfig
from ..configuration_vqvae import VQVAEConfig
from ..configuration_vqvae2 import VQVAE2Config
from ..data import CodeCollator, DataPlan, DatasetError, ImageCollator, SkipLog, open_dataset, training_loaders
from ..evaluation import PriorNLLStats, ReconstructionStats, level_sizes
from ..image_processing_vqvae import VQVAEImageProcessor
from ..modeling_pixelsnail import PixelSNAILModel
from ..modeling_vqvae import VQVAEModel
from ..modeling_vqvae2 import VQVAE2Model
from ..sampling import decode_codes
from .images import save_reconstruction_grid, save_sample_grid

CODES_INFO = "codes_info.json"


def open_training_data(args, **options) -> DataPlan:
    """`--dataset` resolved with the run's split, column and held-out flags (`hf_vqvae.data.open_dataset`)."""
    return open_dataset(
        args.dataset,
        train_split=args.train_split,
        eval_split=args.eval_split,
        validation_split_percentage=args.validation_split_percentage,
        **options,
    )


def make_loaders(args, collate, rank: int, world_size: int, data: DataPlan) -> tuple[DataLoader, DataLoader, SkipLog]:
    """This rank's training and evaluation loaders, and the log of unusable evaluation examples
    (`hf_vqvae.data.training_loaders`)."""
    return training_loaders(
        data, collate, rank=rank, world_size=world_size, batch_size=args.per_device_train_batch_size,
        eval_batch_size=args.per_device_eval_batch_size, seed=args.seed, shuffle_buffer=args.shuffle_buffer,
        num_workers=args.num_workers, eval_samples=args.eval_samples,
    )  # fmt: skip


class ImageTask:
    """VQ-VAE or VQ-VAE-2 on images."""

    config_classes = {"vqvae": (VQVAEConfig, VQVAEModel), "vqvae2": (VQVAE2Config, VQVAE2Model)}

    def __init__(self, args) -> None:
        self.args = args
        # The data first: a dataset that cannot be used fails before a model is built.
        self.data = open_training_data(args, image_column=args.image_column, label_column=args.label_column)
        if args.model_name_or_path:
            self.model = AutoModel.from_pretrained(args.model_name_or_path, **args.model_config)
        else:
            config_class, model_class = self.config_classes[args.model]
            self.model = model_class(config_class(**args.model_config))
        config = self.model.config
        self.processor = VQVAEImageProcessor.for_model_size(config.image_size, num_channels=config.in_channels)
        self.collate = ImageCollator(self.processor, self.data.image_column, self.data.label_column)

    def loaders(self, rank: int, world_size: int) -> tuple[DataLoader, DataLoader, SkipLog]:
        return make_loaders(self.args, self.collate, rank, world_size, self.data)

    @staticmethod
    def batch_size(batch: dict[str, Any]) -> int:
        return len(batch["pixel_values"])

    @staticmethod
    def forward(model, batch: dict[str, Any], device: torch.device):
        return model(pixel_values=batch["pixel_values"].to(device))

    @staticmethod
    def train_logs(output) -> dict[str, float]:
        """Codebook health of the last training batch, per level for VQ-VAE-2 (top first)."""
        perplexity, usage = output.perplexity, output.codebook_usage
        if not isinstance(perplexity, (tuple, list)):
            return {"train/perplexity": perplexity.item(), "train/codebook_usage": usage.item()}
        logs = {}
        for level, (level_perplexity, level_usage) in enumerate(zip(perplexity, usage)):
            logs[f"train/level{level}_perplexity"] = level_perplexity.item()
            logs[f"train/level{level}_codebook_usage"] = level_usage.item()
        return logs

    @torch.no_grad()
    def evaluate(self, model, loader: DataLoader, accelerator, pictures: Path | None) -> dict[str, float]:
        """MSE, PSNR (dB, [-1, 1] images, peak-to-peak 2) and per-level codebook usage over the eval split, summed
        over ranks. SSIM and the likelihood are left to `scripts/evaluate.py`: they would slow every evaluation."""
        model.eval()
        stats = ReconstructionStats(level_sizes(model.config), ssim=False, likelihood=False)
        first = None
        for batch in loader:
            pixels = batch["pixel_values"].to(accelerator.device)
            if len(pixels) == 0:
                continue
            out = model(pixel_values=pixels)
            reconstruction = out.reconstruction.float().clamp(-1, 1)
            stats.update(pixels, reconstruction, out.codes)
            if first is None:
                first = (pixels[:16].cpu(), reconstruction[:16].cpu())
        stats.load_state(accelerator.reduce(stats.state().to(accelerator.device), "sum").cpu())
        model.train()
        if pictures is not None and first is not None and accelerator.is_main_process:
            inputs, reconstructions = (self.processor.postprocess(x) for x in first)
            save_reconstruction_grid(inputs, reconstructions, pictures)
        return {f"eval/{key}": value for key, value in stats.compute().items()}

    def save(self, model, output_dir: Path) -> None:
        model.save_pretrained(output_dir)
        self.processor.save_pretrained(output_dir)


def load_codes_info(source: str, repo_type: str = "dataset") -> dict[str, Any]:
    """`codes_info.json` of a code dataset or a prior (a local folder, or a Hub id of `repo_type`): which VQ model
    the codes come from, their levels, sizes and labels."""
    local = Path(source) / CODES_INFO
    path = local if local.exists() else Path(hf_hub_download(source, CODES_INFO, repo_type=repo_type))
    return json.loads(path.read_text())


class PriorTask:
    """A PixelSNAIL prior over one level of codes, optionally conditioned on the level above and on class labels."""

    def __init__(self, args) -> None:
        self.args = args
        try:
            self.info = load_codes_info(args.dataset)
        except (OSError, ValueError) as error:  # a missing or unreadable file, a Hub miss, bad JSON
            raise DatasetError(
                f"--model pixelsnail trains on a code dataset written by scripts/extract_codes.py, and --dataset "
                f"{args.dataset} has no readable {CODES_INFO} ({type(error).__name__}: {error})"
            ) from None
        levels = {level["column"]: level for level in self.info["levels"]}
        if args.code_column not in levels:
            raise DatasetError(f"--code_column {args.code_column!r} is not in the code dataset ({sorted(levels)})")
        target = levels[args.code_column]
        condition = levels.get(args.condition_column) if args.condition_column else None
        if args.condition_column and condition is None:
            raise DatasetError(
                f"--condition_column {args.condition_column!r} is not in the dataset ({sorted(levels)})"
            )
        num_classes = self.info.get("num_classes") if args.class_conditional else None
        if args.class_conditional and not num_classes:
            raise DatasetError(
                f"--class_conditional needs labels, and the code dataset {args.dataset} has none: extract the codes "
                "from an image dataset with labels (one subfolder per class, or a label column; extract_codes.py "
                "finds it, or pass --label_column NAME), or train without --class_conditional"
            )
        self.label_column = self.info.get("label_column") if args.class_conditional else None
        columns = tuple(c for c in (args.code_column, args.condition_column, self.label_column) if c)
        self.data = open_training_data(
            args, kind="codes", label_column=self.label_column or "none", key_column=args.code_column,
            required_columns=columns,
        )  # fmt: skip
        if args.model_name_or_path:
            self.model = PixelSNAILModel.from_pretrained(args.model_name_or_path)
        else:
            config = {
                "num_embeddings": target["num_embeddings"],
                "latent_height": target["height"],
                "latent_width": target["width"],
                "num_classes": num_classes,
                **(
                    {
                        "condition_num_embeddings": condition["num_embeddings"],
                        "condition_height": condition["height"],
                        "condition_width": condition["width"],
                    }
                    if condition
                    else {}
                ),
                **args.model_config,
            }
            self.model = PixelSNAILModel(PixelSNAILConfig(**config))
        # Rows that do not fit the model (another shape, codes outside the codebook, no label) are skipped.
        self.collate = CodeCollator(
            args.code_column, args.condition_column, self.label_column,
            code_shape=(target["height"], target["width"]), num_embeddings=target["num_embeddings"],
            condition_shape=(condition["height"], condition["width"]) if condition else None,
            condition_num_embeddings=condition["num_embeddings"] if condition else None,
        )  # fmt: skip
        self.image_dims = math.prod(self.info["image_shape"])

    def loaders(self, rank: int, world_size: int) -> tuple[DataLoader, DataLoader, SkipLog]:
        return make_loaders(self.args, self.collate, rank, world_size, self.data)

    @staticmethod
    def batch_size(batch: dict[str, Any]) -> int:
        return len(batch["codes"])

    @staticmethod
    def _inputs(batch: dict[str, Any], device: torch.device) -> dict[str, torch.Tensor | None]:
        move = lambda x: None if x is None else x.to(device)  # noqa: E731
        return {
            "codes": move(batch["codes"]),
            "condition": move(batch["condition"]),
            "class_labels": move(batch["labels"]),
        }

    def forward(self, model, batch: dict[str, Any], device: torch.device):
        inputs = self._inputs(batch, device)
        return model(**inputs, labels=inputs["codes"])

    @staticmethod
    def train_logs(output) -> dict[str, float]:
        return {"train/bits_per_code": output.bits_per_code.item()}

    @torch.no_grad()
    def evaluate(self, model, loader: DataLoader, accelerator, pictures: Path | None) -> dict[str, float]:
        """Bits per code, and bits per image dimension (this level's codes only) over the eval split, summed over
        ranks."""
        model.eval()
        stats = PriorNLLStats(self.image_dims)
        first = None
        for batch in loader:
            inputs = self._inputs(batch, accelerator.device)
            stats.update(model(**inputs).logits, inputs["codes"])
            first = first or batch
        stats.load_state(accelerator.reduce(stats.state().to(accelerator.device), "sum").cpu())
        model.train()
        if pictures is not None and first is not None and accelerator.is_main_process:
            self.save_samples(accelerator.unwrap_model(model), first, pictures)
        return {f"eval/{key}": value for key, value in stats.compute().items()}

    @torch.no_grad()
    def save_samples(self, prior, batch: dict[str, Any], path: Path, count: int = 16) -> Path | None:
        """Samples `count` code maps (conditioned on the eval batch's top codes and labels where the prior takes
        them) and decodes them with the VQ model the codes came from, if it can be loaded."""
        vq_source = self.info.get("vq_model")
        try:
            vq_model = AutoModel.from_pretrained(vq_source).eval() if vq_source else None
        except OSError:
            vq_model = None
        if vq_model is None:
            return None
        count = min(count, len(batch["codes"]))
        device = next(prior.parameters()).device
        condition = batch["condition"][:count].to(device) if batch["condition"] is not None else None
        labels = batch["labels"][:count].to(device) if batch["labels"] is not None else None
        generator = torch.Generator(device=device).manual_seed(self.args.seed)
        samples = prior.generate(count, condition=condition, class_labels=labels, generator=generator).cpu()
        # A bottom prior is shown on the real top codes of the eval batch: what it adds, on its own.
        pixels = decode_codes(vq_model, [condition.cpu(), samples] if condition is not None else [samples])
        processor = VQVAEImageProcessor.for_model_size(vq_model.config.image_size, vq_model.config.in_channels)
        return save_sample_grid(processor.postprocess(pixels), path, columns=min(8, count))

    def save(self, model, output_dir: Path) -> None:
        model.save_pretrained(output_dir)
        # Which VQ model and code level this prior belongs to, for sampling and decoding later.
        info = {
            **self.info,
            "prior": {"code_column": self.args.code_column, "condition_column": self.args.condition_column},
        }
        (Path(output_dir) / CODES_INFO).write_text(json.dumps(info, indent=2) + "\n")


TASKS = {"vqvae": ImageTask, "vqvae2": ImageTask, "pixelsnail": PriorTask}
