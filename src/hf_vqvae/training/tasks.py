"""What differs between training a VQ model on images and a prior on codes; `scripts/train.py` holds the one
training loop and asks a task for the model, the data, the loss, the evaluation and the pictures.

* `ImageTask` (`--model vqvae` or `vqvae2`): images from a streamed dataset, decoded by `VQVAEImageProcessor` in
  DataLoader workers; evaluation reports MSE, PSNR and codebook usage over the held-out split.
* `PriorTask` (`--model pixelsnail`): code maps from a dataset written by `scripts/extract_codes.py`; evaluation
  reports bits per code and bits per image dimension; pictures are prior samples decoded by the VQ model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from transformers import AutoModel

from ..codes_info import CODES_INFO_FILE, CodesInfo
from ..configuration_pixelsnail import PixelSNAILConfig
from ..configuration_vqvae import VQVAEConfig
from ..configuration_vqvae2 import VQVAE2Config
from ..data import CodeCollator, DataPlan, DatasetError, ImageCollator, SkipLog, open_dataset, training_loaders
from ..evaluation import evaluate_prior, evaluate_vq_model, level_metric_key
from ..images import save_reconstruction_grid, save_sample_grid
from ..loading import load_processor
from ..modeling_pixelsnail import PixelSNAILModel
from ..modeling_vqvae import VQVAEModel
from ..modeling_vqvae2 import VQVAE2Model
from ..sampling import generate_images
from .audio import AudioTask


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
        # Fine-tuning keeps the processor saved with the model; a new model gets the default one for its size.
        self.processor = load_processor(args.model_name_or_path, config)
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
        """Codebook health of the last training batch, per level of a hierarchy (top first)."""
        num_levels = len(output.level_perplexity)
        logs = {}
        for level, (perplexity, usage) in enumerate(zip(output.level_perplexity, output.level_codebook_usage)):
            logs["train/" + level_metric_key("perplexity", level, num_levels)] = perplexity.item()
            logs["train/" + level_metric_key("codebook_usage", level, num_levels)] = usage.item()
        return logs

    def evaluate(self, model, loader: DataLoader, accelerator, pictures: Path | None) -> dict[str, float]:
        """MSE, PSNR (dB, [-1, 1] images, peak-to-peak 2) and per-level codebook usage over the eval split, summed
        over ranks (`evaluation.evaluate_vq_model`, the loop of `scripts/evaluate.py`). SSIM and the likelihood are
        left to `scripts/evaluate.py`: they would slow every evaluation."""
        first: list[tuple[torch.Tensor, torch.Tensor]] = []

        def keep_first(pixels: torch.Tensor, reconstruction: torch.Tensor) -> None:
            if not first:
                first.append((pixels[:16].cpu(), reconstruction[:16].cpu()))

        metrics = evaluate_vq_model(
            model, loader, accelerator=accelerator, progress=False, max_skipped_fraction=None, ssim=False,
            likelihood=False, on_batch=keep_first,
        )  # fmt: skip
        if pictures is not None and first and accelerator.is_main_process:
            inputs, reconstructions = (self.processor.postprocess(x) for x in first[0])
            save_reconstruction_grid(inputs, reconstructions, pictures)
        return {f"eval/{key}": value for key, value in metrics.items()}

    def save(self, model, output_dir: Path) -> None:
        model.save_pretrained(output_dir)
        self.processor.save_pretrained(output_dir)


def _shape_fields(shape: tuple[int, ...], prefix: str) -> dict[str, int | None]:
    """`PixelSNAILConfig` fields of a code shape: `latent_length` (with `spatial_dims=1`) for a sequence,
    `latent_height`/`latent_width` for a map (`prefix` "condition" for the conditioning level's)."""
    if len(shape) == 1:
        return {f"{prefix}_length": shape[0], **({"spatial_dims": 1} if prefix == "latent" else {})}
    return {f"{prefix}_height": shape[0], f"{prefix}_width": shape[1]}


class PriorTask:
    """A PixelSNAIL prior over one level of codes, optionally conditioned on the level above and on class labels."""

    def __init__(self, args) -> None:
        self.args = args
        try:
            self.info = CodesInfo.read(args.dataset)
        except (OSError, ValueError) as error:  # a missing or unreadable file, a Hub miss, bad JSON
            raise DatasetError(
                f"--model pixelsnail trains on a code dataset written by scripts/extract_codes.py, and --dataset "
                f"{args.dataset} has no readable {CODES_INFO_FILE} ({type(error).__name__}: {error})"
            ) from None
        levels = {level.column: level for level in self.info.levels}
        if args.code_column not in levels:
            raise DatasetError(f"--code_column {args.code_column!r} is not in the code dataset ({sorted(levels)})")
        target = levels[args.code_column]
        condition = levels.get(args.condition_column) if args.condition_column else None
        if args.condition_column and condition is None:
            raise DatasetError(
                f"--condition_column {args.condition_column!r} is not in the dataset ({sorted(levels)})"
            )
        num_classes = self.info.num_classes if args.class_conditional else None
        if args.class_conditional and not num_classes:
            raise DatasetError(
                f"--class_conditional needs labels, and the code dataset {args.dataset} has none: extract the codes "
                "from an image dataset with labels (one subfolder per class, or a label column; extract_codes.py "
                "finds it, or pass --label_column NAME), or train without --class_conditional"
            )
        self.label_column = self.info.label_column if args.class_conditional else None
        columns = tuple(c for c in (args.code_column, args.condition_column, self.label_column) if c)
        self.data = open_training_data(
            args, kind="codes", label_column=self.label_column or "none", required_columns=columns,
        )  # fmt: skip
        # --class_dropout (classifier-free guidance) overrides the config's share, of a new or a pretrained prior.
        dropout = {} if getattr(args, "class_dropout", None) is None else {"class_dropout": args.class_dropout}
        if args.model_name_or_path:
            self.model = PixelSNAILModel.from_pretrained(args.model_name_or_path, **dropout)
        else:
            config = {
                "num_embeddings": target.num_embeddings,
                **_shape_fields(target.shape, "latent"),
                "num_classes": num_classes,
                **(
                    {
                        "condition_num_embeddings": condition.num_embeddings,
                        **_shape_fields(condition.shape, "condition"),
                    }
                    if condition
                    else {}
                ),
                **args.model_config,
                **dropout,
            }
            self.model = PixelSNAILModel(PixelSNAILConfig(**config))
        # Rows that do not fit the model (another shape, codes outside the codebook, no label) are skipped; the
        # shape's length says whether rows are sequences (an audio model's) or maps.
        self.collate = CodeCollator(
            args.code_column, args.condition_column, self.label_column,
            code_shape=target.shape, num_embeddings=target.num_embeddings,
            condition_shape=condition.shape if condition else None,
            condition_num_embeddings=condition.num_embeddings if condition else None,
        )  # fmt: skip
        self.image_dims = self.info.image_dims

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

    def evaluate(self, model, loader: DataLoader, accelerator, pictures: Path | None) -> dict[str, float]:
        """Bits per code, and bits per image dimension (this level's codes only) over the eval split, summed over
        ranks (`evaluation.evaluate_prior`, the loop of `scripts/evaluate.py`)."""
        first: list[dict[str, Any]] = []
        metrics = evaluate_prior(
            model, loader, self.image_dims, accelerator=accelerator, progress=False,
            on_batch=lambda batch: first.append(batch) if not first else None,
        )  # fmt: skip
        if pictures is not None and first and accelerator.is_main_process:
            self.save_samples(accelerator.unwrap_model(model), first[0], pictures)
        return {f"eval/{key}": value for key, value in metrics.items()}

    @torch.no_grad()
    def save_samples(self, prior, batch: dict[str, Any], path: Path, count: int = 16) -> Path | None:
        """Samples `count` code maps (conditioned on the eval batch's codes of the level above and its labels where
        the prior takes them) and decodes them with the VQ model the codes came from, if it can be loaded."""
        if self.info.is_audio:  # sampling the WaveNet would take longer than the evaluation (as AudioTask says)
            return None
        vq_source = self.info.vq_model
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
        # A lower prior is shown on the real codes of the level above from the eval batch: what it adds, on its own.
        pixels = generate_images(
            [prior], vq_model, count, class_labels=labels, generator=generator, condition=condition,
            first_level=self.info.level_index(self.args.code_column),
        )  # fmt: skip
        processor = load_processor(vq_source, vq_model.config)
        return save_sample_grid(processor.postprocess(pixels), path, columns=min(8, count))

    def save(self, model, output_dir: Path) -> None:
        model.save_pretrained(output_dir)
        # Which VQ model and code level this prior belongs to, for sampling and decoding later.
        self.info.for_prior(self.args.code_column, self.args.condition_column).write(output_dir)


TASKS = {"vqvae": ImageTask, "vqvae2": ImageTask, "pixelsnail": PriorTask, "audio_vqvae": AudioTask}
