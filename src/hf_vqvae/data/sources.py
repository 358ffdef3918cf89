"""What `--dataset` points at, resolved once for every script that reads data: how to stream it, which split trains
and which evaluates, which column holds the images and which the labels, and one clear error when it cannot be used.

Accepted, with no other flag: a folder of images (flat, with `train/` and `validation/` or `test/` subfolders, or
with one subfolder per class), a folder of parquet or arrow shards (any file names, any splits), a folder written by
`Dataset.save_to_disk`, and a Hub dataset id.

Held-out data: the dataset's own `validation` (or `test`) split when it has one; otherwise `HeldOut`, a percentage of
the train split chosen by a hash of each example's content. The choice depends on nothing but the example, so a
stream, any number of ranks, a resumed run and `scripts/extract_codes.py` all hold out the same examples.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from datasets import ClassLabel, IterableDataset, load_dataset, load_from_disk
from datasets import Image as ImageFeature
from datasets.distributed import split_dataset_by_node

from .collate import read_bytes

logger = logging.getLogger(__name__)

# Split names taken as held-out data, in order of preference.
EVAL_SPLITS = ("validation", "valid", "val", "dev", "test", "eval", "evaluation")
# Folder names that `datasets` reads as split names; an image folder's "labels" made of them are not classes.
SPLIT_WORDS = {"train", "training", *EVAL_SPLITS, "testing"}
TABLE_SUFFIXES = {".parquet", ".arrow"}
# The held-out share of a train split when a dataset has no evaluation split and nothing else is said.
DEFAULT_VALIDATION_PERCENTAGE = 5.0
# Shards a `save_to_disk` split is streamed in, so that DataLoader workers and ranks share it out.
SAVED_DATASET_SHARDS = 8
EXPECTED = (
    "expected image files (.jpg, .png, ...) directly, in train/ and validation/ or test/ subfolders, or in one "
    "subfolder per class; or parquet/arrow shards; or a Hub dataset id"
)


class DatasetError(ValueError):
    """`--dataset` (or a column or split named with it) cannot be used as given; the message says what was found
    and what was expected."""


def image_suffixes() -> set[str]:
    from datasets.packaged_modules.imagefolder.imagefolder import ImageFolder

    return {suffix.lower() for suffix in ImageFolder.EXTENSIONS}


# --------------------------------------------------------------------------------------------------------------------
# Held-out examples


def _content(value: Any) -> bytes:
    """The bytes an example is identified by: an image's file content (its path where it cannot be read), a code
    map's values."""
    if isinstance(value, dict) and ("bytes" in value or "path" in value):
        if value.get("bytes"):
            return bytes(value["bytes"])
        path = value.get("path") or ""
        try:
            return read_bytes(path)
        except OSError:
            return path.encode()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    try:
        return np.asarray(value, dtype=np.int64).tobytes()
    except (TypeError, ValueError):
        return repr(value).encode()


@dataclass(frozen=True)
class HeldOut:
    """`percentage` % of a split, set aside for evaluation: an example is held out when a hash of its `column`'s
    content falls in the first `percentage` % of the hash range. Duplicated files land on the same side."""

    percentage: float
    column: str

    def __call__(self, example: dict[str, Any]) -> bool:
        digest = hashlib.blake2b(_content(example.get(self.column)), digest_size=8).digest()
        return int.from_bytes(digest, "big") % 10_000 < self.percentage * 100


# --------------------------------------------------------------------------------------------------------------------
# Opening a dataset


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or len(Path(name).parts) > 2 or "\\" in name


def _listing(files: list[Path], root: Path, count: int = 5) -> str:
    shown = ", ".join(str(f.relative_to(root)) for f in files[:count])
    return shown + (", ..." if len(files) > count else "")


def _open_local(path: Path) -> dict[str, IterableDataset]:
    if path.is_file():
        if path.suffix.lower() not in TABLE_SUFFIXES:
            kind = "an image" if path.suffix.lower() in image_suffixes() else "a file"
            raise DatasetError(f"--dataset {path} is {kind}, not a dataset: pass its folder ({EXPECTED})")
        return dict(load_dataset(path.suffix[1:].lower(), data_files={"train": str(path)}, streaming=True))
    if (path / "dataset_dict.json").exists() or (path / "state.json").exists():  # Dataset.save_to_disk
        saved = load_from_disk(str(path))
        saved = saved if hasattr(saved, "keys") else {"train": saved}
        return {
            name: split.to_iterable_dataset(num_shards=max(1, min(SAVED_DATASET_SHARDS, len(split))))
            for name, split in saved.items()
        }
    # Hidden files and folders (.cache, .DS_Store, .git) are nobody's data.
    files = sorted(
        f for f in path.rglob("*") if f.is_file() and not any(p.startswith(".") for p in f.relative_to(path).parts)
    )
    if not files:
        raise DatasetError(f"--dataset {path} is an empty folder: {EXPECTED}")
    usable = image_suffixes() | TABLE_SUFFIXES
    if not any(f.suffix.lower() in usable for f in files):
        raise DatasetError(
            f"--dataset {path} holds no images: found {len(files)} file(s) ({_listing(files, path)}), {EXPECTED}"
        )
    splits = dict(load_dataset(str(path), streaming=True))
    if _labels_are_split_names(splits):
        # train/ and test/ subfolders with the images directly inside: `datasets` also reads the folder names as
        # classes, and gives the train split None labels. They are not classes.
        splits = dict(load_dataset(str(path), streaming=True, drop_labels=True))
    return splits


def _labels_are_split_names(splits: dict[str, IterableDataset]) -> bool:
    for split in splits.values():
        for feature in (split.features or {}).values():
            if isinstance(feature, ClassLabel) and set(feature.names) <= SPLIT_WORDS | set(splits):
                return split.info.builder_name == "imagefolder"
    return False


def _open_hub(name: str) -> dict[str, IterableDataset]:
    from datasets.exceptions import DatasetNotFoundError

    try:
        splits = dict(load_dataset(name, streaming=True))
        if _labels_are_split_names(splits):
            splits = dict(load_dataset(name, streaming=True, drop_labels=True))
        return splits
    except DatasetNotFoundError as error:
        raise DatasetError(f"--dataset {name!r} is neither a local folder nor a Hub dataset ({error})") from None
    except ConnectionError as error:
        raise DatasetError(
            f"--dataset {name!r} is not a local folder, and the Hub cannot be reached to look it up ({error}). "
            "Pass a folder's path, or go online (HF_HUB_OFFLINE unset) to stream a Hub dataset"
        ) from None
    except FileNotFoundError as error:
        raise DatasetError(
            f"--dataset {name!r} is not a local folder, and the Hub has no data for it: {error}"
        ) from None


@lru_cache(maxsize=8)
def open_splits(dataset: str) -> dict[str, IterableDataset]:
    """Every split of a local folder or Hub dataset, streamed and undecoded only where columns are cast later.
    Raises `DatasetError` for a path that does not exist, an empty folder, a folder with no images, an unknown id."""
    path = Path(dataset).expanduser()
    if path.exists():
        try:
            splits = _open_local(path)
        except DatasetError:
            raise
        except Exception as error:  # noqa: BLE001 - any reader failure becomes one clear line
            problem = f"{type(error).__name__}: {error}"
            raise DatasetError(f"--dataset {path}: cannot read it ({problem}); {EXPECTED}") from None
    elif _looks_like_path(dataset):
        raise DatasetError(f"--dataset {dataset}: no such file or folder")
    else:
        splits = _open_hub(dataset)
    if not splits:
        raise DatasetError(f"--dataset {dataset}: no split found; {EXPECTED}")
    return splits


def _features(split: IterableDataset) -> dict[str, Any]:
    features = split.features
    if features is None:  # builders that infer features from the data (json, csv): look at the first example
        features = split._resolve_features().features or {}
    return dict(features)


def _is_image_feature(feature: Any) -> bool:
    if isinstance(feature, ImageFeature):
        return True
    # {"bytes", "path"} structs written without the `datasets` metadata (pandas, pyarrow, other tools).
    return isinstance(feature, dict) and "bytes" in feature


def find_split(splits: dict[str, Any], name: str, dataset: str, flag: str = "--split") -> str:
    if name not in splits:
        raise DatasetError(f"--dataset {dataset} has no split {name!r} ({flag}); its splits: {sorted(splits)}")
    return name


# --------------------------------------------------------------------------------------------------------------------
# The resolved plan


@dataclass
class DataPlan:
    """What a dataset resolves to: its splits, the train split, where evaluation examples come from, its image and
    label columns and class names. `stream` reads any part of it as `datasets` streams."""

    dataset: str
    splits: dict[str, IterableDataset] = field(repr=False)
    train_split: str
    eval_split: str | None
    held_out: HeldOut | None
    image_column: str | None
    label_column: str | None
    class_names: list[str] | None
    features: dict[str, Any] = field(repr=False)

    @property
    def evaluates_held_out(self) -> bool:
        """Evaluation reads the examples held out of the train split."""
        return self.held_out is not None and self.eval_split == self.train_split

    def eval_source(self) -> str:
        if self.eval_split is None:
            return "no evaluation data"
        if self.evaluates_held_out:
            return f"{self.held_out.percentage:g}% of split {self.train_split!r}, held out by a hash of each example"
        if self.eval_split == self.train_split:
            return f"split {self.train_split!r} itself (--validation_split_percentage 0: training examples)"
        return f"the dataset's own split {self.eval_split!r}"

    def describe(self) -> str:
        labels = "none (unconditional)" if not self.label_column else repr(self.label_column)
        if self.class_names:
            shown = ", ".join(self.class_names[:10]) + (", ..." if len(self.class_names) > 10 else "")
            labels += f", {len(self.class_names)} classes: {shown}"
        image = f"image column {self.image_column!r}, " if self.image_column else ""
        return (
            f"dataset {self.dataset}: splits {sorted(self.splits)}; training on {self.train_split!r}; evaluating on "
            f"{self.eval_source()}; {image}labels {labels}"
        )

    def stream(
        self,
        split: str,
        *,
        part: str = "all",
        seed: int = 0,
        shuffle_buffer: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> IterableDataset:
        """`split` streamed with the image column undecoded (decoding happens in DataLoader workers, where a bad
        file is skipped), shuffled through a buffer when `shuffle_buffer > 0`, split across `world_size` ranks.
        `part`: "all", "train" (without the held-out examples) or "held_out" (only them)."""
        stream = self.splits[find_split(self.splits, split, self.dataset)]
        keep = None
        if part != "all" and self.held_out is not None and split == self.train_split:
            held_out = self.held_out
            keep = held_out if part == "held_out" else lambda example: not held_out(example)
        return _prepare(stream, self.image_column, keep, seed, shuffle_buffer, rank, world_size)

    def eval_stream(self, rank: int = 0, world_size: int = 1) -> IterableDataset | None:
        if self.eval_split is None:
            return None
        return self.stream(self.eval_split, part="held_out", rank=rank, world_size=world_size)

    def record(self) -> dict[str, Any]:
        """The resolved choices, for `train_args.json` (cards, evaluation and code extraction read them back)."""
        return {
            "train_split": self.train_split,
            "eval_split": self.eval_split,
            "validation_split_percentage": self.held_out.percentage if self.held_out else 0,
            "image_column": self.image_column,
            "label_column": self.label_column,
            "class_names": self.class_names,
        }


def _image_column(features: dict[str, Any], requested: str | None, dataset: str) -> str:
    found = [name for name, feature in features.items() if _is_image_feature(feature)]
    if requested is not None:
        if requested not in features:
            hint = f" (its image column is {found[0]!r})" if found else ""
            raise DatasetError(
                f"--image_column {requested!r} is not in --dataset {dataset}: its columns are {sorted(features)}{hint}"
            )
        return requested
    if not found:
        raise DatasetError(
            f"--dataset {dataset} has no image column: its columns are "
            f"{ {name: type(f).__name__ for name, f in features.items()} }; expected a column of images (the "
            "`datasets` Image feature, or {bytes, path} records); name it with --image_column"
        )
    return "image" if "image" in found else found[0]


def _label_column(features: dict[str, Any], requested: str | None, dataset: str) -> str | None:
    if requested in ("none", ""):
        return None
    if requested is not None:
        if requested not in features:
            raise DatasetError(
                f"--label_column {requested!r} is not in --dataset {dataset}: its columns are {sorted(features)} "
                "(--label_column none trains without labels)"
            )
        return requested
    class_labels = [name for name, feature in features.items() if isinstance(feature, ClassLabel)]
    if class_labels:
        return "label" if "label" in class_labels else class_labels[0]
    for name in ("label", "labels"):
        feature = features.get(name)
        if getattr(feature, "dtype", "").startswith(("int", "uint")):
            return name
    return None


def open_dataset(
    dataset: str,
    *,
    train_split: str = "train",
    eval_split: str | None = None,
    validation_split_percentage: float = DEFAULT_VALIDATION_PERCENTAGE,
    image_column: str | None = None,
    label_column: str | None = None,
    kind: str = "images",
    key_column: str | None = None,
    required_columns: tuple[str, ...] = (),
) -> DataPlan:
    """Resolves `dataset` (a Hub id or local path) into a `DataPlan`, or raises `DatasetError` naming the problem.

    Args:
        train_split: the split to train on; a dataset with a single split trains on it whatever its name.
        eval_split: None picks the dataset's `validation` (or `test`, ...) split, else holds out
            `validation_split_percentage` % of the train split. A named split must exist; naming the train split
            evaluates on its held-out part.
        image_column: None finds it from the dataset's `Image` feature (`kind="images"` only).
        label_column: None finds a `ClassLabel` column (else an integer `label` column); "none" means no labels.
        kind: "images", or "codes" for the code datasets of `scripts/extract_codes.py` (no image column).
        key_column: what identifies an example for the held-out hash (default: the image column; for code
            datasets, the first level's codes, shared by the priors of every level).
        required_columns: columns that must exist (code and condition columns of a prior).
    """
    if not 0 <= validation_split_percentage < 100:
        raise DatasetError(f"--validation_split_percentage must be in [0, 100), not {validation_split_percentage}")
    splits = open_splits(dataset)
    if train_split not in splits:
        if len(splits) != 1:
            raise DatasetError(
                f"--dataset {dataset} has no split {train_split!r} (--train_split); its splits: {sorted(splits)}"
            )
        (train_split,) = splits  # a single split, whatever its name, is the training data
    features = _features(splits[train_split])
    for column in required_columns:
        if column not in features:
            raise DatasetError(f"--dataset {dataset} has no column {column!r}: its columns are {sorted(features)}")
    image = _image_column(features, image_column, dataset) if kind == "images" else None
    label = _label_column(features, label_column, dataset)
    class_names = list(features[label].names) if label and isinstance(features[label], ClassLabel) else None
    if eval_split is None:
        eval_split = next((name for name in EVAL_SPLITS if name in splits and name != train_split), train_split)
    else:
        find_split(splits, eval_split, dataset, "--eval_split")
    held_out = None
    if eval_split == train_split and validation_split_percentage > 0:
        held_out = HeldOut(float(validation_split_percentage), key_column or image or code_key(features))
    if image is not None and eval_split != train_split and image not in _features(splits[eval_split]):
        raise DatasetError(f"split {eval_split!r} of --dataset {dataset} has no column {image!r}")
    return DataPlan(
        dataset=dataset,
        splits=splits,
        train_split=train_split,
        eval_split=eval_split,
        held_out=held_out,
        image_column=image,
        label_column=label,
        class_names=class_names,
        features=features,
    )


def code_key(features: dict[str, Any]) -> str:
    """The column that identifies an example of a dataset without images for the held-out hash: the first (top)
    level's codes of a code dataset, else its first column."""
    return next((name for name in ("codes", "codes_0") if name in features), next(iter(features)))


def resolve_split(
    splits: dict[str, Any],
    split: str,
    dataset: str,
    key_column: str,
    validation_split_percentage: float = DEFAULT_VALIDATION_PERCENTAGE,
) -> tuple[str, HeldOut | None]:
    """`(split to read, held-out rule to keep or None)` for a split name. An evaluation split name (`validation`,
    `test`, ...) that the dataset lacks means its evaluation data as training chose it: its own `validation` or
    `test` split, else the held-out share of its train split."""
    if split in splits:
        return split, None
    if split in EVAL_SPLITS:
        own = next((name for name in EVAL_SPLITS if name in splits), None)
        train = "train" if "train" in splits else (next(iter(splits)) if len(splits) == 1 else None)
        if own is not None:
            logger.warning(f"--dataset {dataset} has no split {split!r}: reading its evaluation split {own!r}")
            return own, None
        if train is not None and validation_split_percentage > 0:
            logger.warning(
                f"--dataset {dataset} has no split {split!r}: reading the {validation_split_percentage:g}% of "
                f"{train!r} held out from training"
            )
            return train, HeldOut(float(validation_split_percentage), key_column)
    return find_split(splits, split, dataset), None


def resolve_columns(dataset: str, image_column: str | None, label_column: str | None) -> tuple[str, str | None]:
    """The image and label columns of an image dataset as training finds them (None: found from its features)."""
    splits = open_splits(dataset)
    features = _features(splits["train"] if "train" in splits else next(iter(splits.values())))
    return _image_column(features, image_column, dataset), _label_column(features, label_column, dataset)


def load_stream(
    dataset: str,
    split: str,
    *,
    seed: int = 0,
    shuffle_buffer: int = 0,
    rank: int = 0,
    world_size: int = 1,
    image_column: str | None = None,
    validation_split_percentage: float = DEFAULT_VALIDATION_PERCENTAGE,
) -> IterableDataset:
    """A streamed split of a Hub dataset id or local folder (any layout `open_dataset` accepts), shuffled through a
    buffer (when `shuffle_buffer > 0`) and split across `world_size` processes. The image column, if named, stays
    undecoded (`{"bytes", "path"}`) so that decoding happens in DataLoader workers, where a bad file is skipped
    instead of raising. An evaluation split the dataset lacks is read as `resolve_split` says: the held-out
    examples of a train-only dataset are the ones training held out."""
    splits = open_splits(dataset)
    key = image_column or code_key(_features(next(iter(splits.values()))))
    split, held_out = resolve_split(splits, split, dataset, key, validation_split_percentage)
    stream = splits[split]
    if image_column is not None:
        features = _features(stream)
        if image_column not in features:
            found = [name for name, feature in features.items() if _is_image_feature(feature)]
            hint = f" (its image column is {found[0]!r}: pass --image_column {found[0]})" if found else ""
            raise DatasetError(
                f"split {split!r} of --dataset {dataset} has no column {image_column!r}: its columns are "
                f"{sorted(features)}{hint}"
            )
    return _prepare(stream, image_column, held_out, seed, shuffle_buffer, rank, world_size)


def _prepare(
    stream: IterableDataset, image_column: str | None, keep, seed: int, shuffle_buffer: int, rank: int, world_size: int
) -> IterableDataset:
    if image_column is not None:
        stream = stream.cast_column(image_column, ImageFeature(decode=False))
    if keep is not None:
        stream = stream.filter(keep)
    if shuffle_buffer > 0:
        # The same seed on every rank: split_dataset_by_node then assigns each rank disjoint shards of one order.
        stream = stream.shuffle(seed=seed, buffer_size=shuffle_buffer)
    if world_size > 1:
        stream = split_dataset_by_node(stream, rank=rank, world_size=world_size)
    return stream
