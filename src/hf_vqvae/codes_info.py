"""`codes_info.json`: what a dataset of code maps holds, and which codes a prior was trained on.

`scripts/extract_codes.py` writes it beside a code dataset (which VQ model made the codes, the column and size of
each level, the images they encode, the labels); `scripts/train.py` copies it beside a trained prior with the prior's
own columns added (`prior`). Training, `scripts/evaluate.py`, `scripts/sample.py` and the Hub cards read it. This
module is the one reader and writer of the file:

```python
info = CodesInfo.for_vq_model(vq_model.config, vq_model="outputs/vqvae2", source_dataset="outputs/data")
info.write("outputs/codes")
info = CodesInfo.read("outputs/codes")  # a local folder, or a Hub id (`repo_type="model"` for a prior's repo)
info.level("codes_1").num_embeddings, info.level_index("codes_1"), info.image_dims
```

For an audio VQ-VAE the one level is `codes`, a sequence of `segment_samples / downsample_factor` codes per fixed
crop of each utterance; `image_shape` is `[1, segment_samples]`, `extra` holds `sampling_rate` and `segment_samples`
(and `crop`, how crops were taken), and the labels are the speakers (`label_column` "speaker_id").
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

CODES_INFO_FILE = "codes_info.json"
# The model type of the audio VQ-VAE (`AudioVQVAEConfig.model_type`), whose codes are 1-D sequences of waveform crops.
AUDIO_MODEL_TYPE = "audio_vqvae"


def level_columns(num_levels: int) -> list[str]:
    """Column name of each level's codes in a code dataset, top first: `codes` for one level, else `codes_0` (top),
    `codes_1`, ..."""
    return ["codes"] if num_levels == 1 else [f"codes_{level}" for level in range(num_levels)]


@dataclass(frozen=True)
class CodeLevel:
    """One level's code maps in a code dataset: its column, codebook size and map shape (without the batch)."""

    column: str
    num_embeddings: int
    shape: tuple[int, ...]

    @property
    def height(self) -> int:
        return self.shape[-2] if len(self.shape) >= 2 else 1

    @property
    def width(self) -> int:
        return self.shape[-1]

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"column": self.column, "num_embeddings": self.num_embeddings}
        if len(self.shape) == 2:  # the 2-D fields that files of release 0.1.0 carry (and the only ones they carry)
            entry.update(height=self.shape[0], width=self.shape[1])
        entry["shape"] = list(self.shape)
        return entry

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> CodeLevel:
        shape = entry.get("shape") or (entry["height"], entry["width"])
        return cls(column=entry["column"], num_embeddings=int(entry["num_embeddings"]), shape=tuple(shape))


@dataclass(frozen=True)
class PriorColumns:
    """The code dataset columns a prior was trained on: its own level, and the level above it conditions on."""

    code_column: str
    condition_column: str | None = None


@dataclass
class CodesInfo:
    """The record of `codes_info.json` (see the module docstring).

    Args:
        vq_model: the VQ model the codes come from (an absolute local path, or a Hub id).
        vq_model_type: its `model_type`.
        levels: one entry per level, top first.
        image_shape: `(C, *spatial)` of the signals the codes encode (`(1, segment_samples)` for audio crops).
        source_dataset: the image dataset the codes were extracted from.
        label_column: the column of class labels, if the dataset has labels.
        num_classes: how many classes those labels take.
        splits: per split, `{"examples": N, "skipped": M}`.
        prior: for a prior's copy, the columns it was trained on.
        extra: any other key of the file, kept so that reading and writing loses nothing.
    """

    vq_model: str
    vq_model_type: str
    levels: list[CodeLevel]
    image_shape: list[int]
    source_dataset: str | None = None
    label_column: str | None = None
    num_classes: int | None = None
    splits: dict[str, dict[str, int]] = field(default_factory=dict)
    prior: PriorColumns | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------------------------------------- building
    @classmethod
    def for_vq_model(
        cls, config, vq_model: str, source_dataset: str | None = None, segment_samples: int | None = None
    ) -> CodesInfo:
        """The record of a code dataset of `config`'s model (a VQ-VAE or VQ-VAE-2 config: its level list; or an audio
        VQ-VAE's, whose code sequences encode crops of `segment_samples` samples, default its `segment_samples`),
        before any split is written."""
        if config.model_type == AUDIO_MODEL_TYPE:
            return cls._for_audio_model(config, vq_model, source_dataset, segment_samples or config.segment_samples)
        levels = [
            CodeLevel(column=column, num_embeddings=num_embeddings, shape=tuple(shape))
            for column, num_embeddings, shape in zip(
                level_columns(config.num_levels), config.level_num_embeddings, config.level_latent_shapes
            )
        ]
        return cls(
            vq_model=vq_model,
            vq_model_type=config.model_type,
            levels=levels,
            image_shape=[config.in_channels, *(config.image_size,) * config.spatial_dims],
            source_dataset=source_dataset,
        )

    @classmethod
    def _for_audio_model(cls, config, vq_model: str, source_dataset: str | None, segment_samples: int) -> CodesInfo:
        # One level: a sequence of segment_samples / downsample_factor codes per crop. The "image" is the crop
        # (1 channel, segment_samples samples), so bits per dimension are bits per waveform sample.
        factor = config.downsample_factor
        if segment_samples <= 0 or segment_samples % factor:
            raise ValueError(f"segment_samples must be a positive multiple of {factor}, got {segment_samples}")
        return cls(
            vq_model=vq_model,
            vq_model_type=config.model_type,
            levels=[CodeLevel("codes", num_embeddings=config.num_embeddings, shape=(segment_samples // factor,))],
            image_shape=[1, segment_samples],
            source_dataset=source_dataset,
            extra={"sampling_rate": config.sampling_rate, "segment_samples": segment_samples},
        )

    @property
    def is_audio(self) -> bool:
        """Whether the codes encode waveform crops (an audio VQ-VAE's), not images."""
        return self.vq_model_type == AUDIO_MODEL_TYPE

    def for_prior(self, code_column: str, condition_column: str | None = None) -> CodesInfo:
        """This record with the columns of a prior trained on it (what is saved beside the prior)."""
        self.level(code_column)
        if condition_column is not None:
            self.level(condition_column)
        return replace(self, prior=PriorColumns(code_column, condition_column))

    # -------------------------------------------------------------------------------------------------- reading
    def level(self, column: str) -> CodeLevel:
        """The level stored in `column`; a clear error naming the dataset's columns otherwise."""
        for level in self.levels:
            if level.column == column:
                return level
        raise ValueError(f"{column!r} is not a code column of this dataset ({self.columns})")

    def level_index(self, column: str) -> int:
        """The level (0 is the top) stored in `column`."""
        return self.levels.index(self.level(column))

    @property
    def columns(self) -> list[str]:
        return [level.column for level in self.levels]

    @property
    def image_dims(self) -> int:
        """Dimensions of one encoded signal (`C * H * W` for images): the denominator of bits per dimension."""
        return math.prod(self.image_shape)

    # ---------------------------------------------------------------------------------------------- (de)serialising
    def to_dict(self) -> dict[str, Any]:
        record = {
            "vq_model": self.vq_model,
            "vq_model_type": self.vq_model_type,
            "levels": [level.to_dict() for level in self.levels],
            "image_shape": list(self.image_shape),
            "source_dataset": self.source_dataset,
            "label_column": self.label_column,
            "num_classes": self.num_classes,
            "splits": self.splits,
            **self.extra,
        }
        if self.prior is not None:
            record["prior"] = {"code_column": self.prior.code_column, "condition_column": self.prior.condition_column}
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> CodesInfo:
        known = {f.name for f in fields(cls)} - {"extra"}
        missing = [key for key in ("vq_model", "levels", "image_shape") if key not in record]
        if missing:
            raise ValueError(f"{CODES_INFO_FILE} lacks {', '.join(missing)}: it is not a record of a code dataset")
        prior = record.get("prior")
        return cls(
            vq_model=record["vq_model"],
            vq_model_type=record.get("vq_model_type", ""),
            levels=[CodeLevel.from_dict(level) for level in record["levels"]],
            image_shape=list(record["image_shape"]),
            source_dataset=record.get("source_dataset"),
            label_column=record.get("label_column"),
            num_classes=record.get("num_classes"),
            splits=dict(record.get("splits") or {}),
            prior=PriorColumns(prior["code_column"], prior.get("condition_column")) if prior else None,
            extra={key: value for key, value in record.items() if key not in known},
        )

    def write(self, folder: str | Path) -> Path:
        path = Path(folder) / CODES_INFO_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def read(cls, source: str | Path, repo_type: str = "dataset") -> CodesInfo:
        """The record beside a code dataset or a prior: `source` is a local folder, or a Hub id of `repo_type`
        ("dataset" for code datasets, "model" for priors). Raises `FileNotFoundError` when there is none."""
        folder = Path(source)
        if folder.is_dir():
            path = folder / CODES_INFO_FILE
            if not path.is_file():
                raise FileNotFoundError(
                    f"{folder} has no {CODES_INFO_FILE} (scripts/extract_codes.py writes it beside a code dataset, "
                    "scripts/train.py beside a prior)"
                )
        else:
            from huggingface_hub import hf_hub_download
            from huggingface_hub.errors import HFValidationError

            try:
                path = Path(hf_hub_download(str(source), CODES_INFO_FILE, repo_type=repo_type))
            except HFValidationError as error:  # neither a folder here nor a Hub id
                raise FileNotFoundError(f"{source!r} is neither a local folder nor a Hub {repo_type} id") from error
        return cls.from_dict(json.loads(path.read_text()))

    @classmethod
    def read_if_present(cls, folder: str | Path) -> CodesInfo | None:
        """The record in a local folder, or None if the folder has none (a VQ model's training run)."""
        path = Path(folder) / CODES_INFO_FILE
        return cls.from_dict(json.loads(path.read_text())) if path.is_file() else None


__all__ = ["CODES_INFO_FILE", "CodeLevel", "CodesInfo", "PriorColumns", "level_columns"]
