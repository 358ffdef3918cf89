"""What the Hub packaging reads: a folder written by `scripts/train.py`."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..codes_info import CodesInfo
from ..evaluation.datasets import DatasetInfo, class_names_of, describe_dataset, local_dir
from ..evaluation.results import EVAL_RESULTS_FILE, weights_fingerprint

logger = logging.getLogger(__name__)

# Where a training run keeps its pictures, and where a repo folder shows them.
IMAGES_DIR = "images"


@dataclass
class TrainingRun:
    """A folder written by `scripts/train.py`: the final model, `metrics.json`, `train_args.json`, `images/`,
    `codes_info.json` for a prior, and `eval_results.json` if `scripts/evaluate.py --output` measured the final
    weights (kept in `evaluation`)."""

    folder: Path
    metrics: dict[str, Any]
    train_args: dict[str, Any]
    codes_info: CodesInfo | None = None
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
            codes_info=CodesInfo.read_if_present(folder),
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
        codes were extracted from (`codes_info.json`'s `source_dataset`). Class names are those train.py recorded
        (class subfolders, a `ClassLabel` column), else those of the dataset's parquet metadata or known source."""
        source = self.train_args.get("dataset") or ""
        image_column = self.train_args.get("image_column") or "image"
        class_names = self.train_args.get("class_names")
        if self.codes_info is not None:
            class_names = class_names or class_names_of(local_dir(source), "label")
            source = self.codes_info.source_dataset or source
        split, held_out_percentage = self.evaluated_split()
        return describe_dataset(
            source,
            split=split,
            image_column=image_column,
            class_names=class_names,
            held_out_percentage=held_out_percentage,
            train_split=self.train_args.get("train_split") or "train",
        )

    def evaluated_split(self) -> tuple[str, float | None]:
        """`(split, held-out percentage or None)` of the card's figures: what scripts/evaluate.py read if its
        results are the card's, else the run's own evaluation data. A percentage means the share of that (train)
        split held out of training, for a dataset without an evaluation split of its own."""
        if self.evaluation:
            evaluated = self.evaluation.get("evaluation") or {}
            return evaluated.get("split") or "test", evaluated.get("held_out_percentage") or None
        eval_split = self.train_args.get("eval_split") or "test"
        if eval_split != self.train_args.get("train_split"):
            return eval_split, None
        return eval_split, self.train_args.get("validation_split_percentage") or None


__all__ = ["IMAGES_DIR", "TrainingRun"]
