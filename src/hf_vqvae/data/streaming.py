"""Streaming input pipeline: `datasets` streams split across processes, decoded and transformed in DataLoader
workers, with bad images skipped and counted rather than crashing an epoch.

The layout of a local dataset folder is the Hub's: `data/{split}-00000-of-00008.parquet` (what
`scripts/prepare_data.py` and `scripts/extract_codes.py` write) or an imagefolder; `load_dataset` reads the same
names from a Hub dataset id.
"""

from __future__ import annotations

import io
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset, IterableDataset, load_dataset
from datasets import Image as ImageFeature
from datasets.distributed import split_dataset_by_node
from PIL import Image

# Larger images are refused as decompression bombs (a small PNG can claim gigapixels and exhaust memory).
MAX_IMAGE_PIXELS = 64_000_000


def write_parquet_shards(dataset: Dataset, folder: str | Path, split: str, num_shards: int) -> list[Path]:
    """Writes `dataset` as `folder/data/{split}-0000i-of-0000n.parquet`, the Hub's layout, so that
    `load_dataset(folder, streaming=True)` finds the split and DataLoader workers (and ranks) each read whole
    shards."""
    num_shards = max(1, min(num_shards, len(dataset)))
    data_dir = Path(folder) / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(num_shards):
        path = data_dir / f"{split}-{index:05d}-of-{num_shards:05d}.parquet"
        dataset.shard(num_shards=num_shards, index=index, contiguous=True).to_parquet(str(path))
        paths.append(path)
    return paths


def load_stream(
    dataset: str,
    split: str,
    *,
    seed: int = 0,
    shuffle_buffer: int = 0,
    rank: int = 0,
    world_size: int = 1,
    image_column: str | None = None,
) -> IterableDataset:
    """A streamed split of a Hub dataset id or local folder, shuffled through a buffer (when `shuffle_buffer > 0`)
    and split across `world_size` processes. The image column, if named, stays undecoded (`{"bytes", "path"}`)
    so that decoding happens in DataLoader workers, where a bad file is skipped instead of raising."""
    stream = load_dataset(dataset, split=split, streaming=True)
    if image_column is not None:
        if image_column not in (stream.features or {}):
            raise ValueError(f"dataset {dataset!r} split {split!r} has no column {image_column!r}: {stream.features}")
        stream = stream.cast_column(image_column, ImageFeature(decode=False))
    if shuffle_buffer > 0:
        # The same seed on every rank: split_dataset_by_node then assigns each rank disjoint shards of one order.
        stream = stream.shuffle(seed=seed, buffer_size=shuffle_buffer)
    if world_size > 1:
        stream = split_dataset_by_node(stream, rank=rank, world_size=world_size)
    return stream


class TooManyBadExamplesError(RuntimeError):
    """More of the input was unusable than `--max_skipped_fraction` allows."""


class BadImageError(ValueError):
    """An example whose image cannot be used; `reason` is the counter key it is logged under."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def decode_image(value: Any, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Decodes an image column value (`{"bytes", "path"}`, raw bytes, a path or a PIL image) fully, so that a
    truncated file fails here and not later. Raises `BadImageError` with one of the reasons `empty`, `not_an_image`,
    `truncated`, `decompression_bomb`, `unreadable`."""
    if isinstance(value, Image.Image):
        return value
    data, path = (value.get("bytes"), value.get("path")) if isinstance(value, dict) else (value, None)
    if data is None and path is not None:
        data = Path(path).read_bytes()
    if isinstance(data, str):
        data = Path(data).read_bytes()
    if not data:
        raise BadImageError("empty", "zero bytes")
    with warnings.catch_warnings():
        # PIL only warns between MAX_IMAGE_PIXELS and twice that; treat both as bombs.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > max_pixels:
                raise BadImageError("decompression_bomb", f"{image.width}x{image.height} exceeds {max_pixels} pixels")
            image.load()
        except BadImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise BadImageError("decompression_bomb", str(error)) from error
        except Image.UnidentifiedImageError as error:
            raise BadImageError("not_an_image", "not a recognised image format") from error
        except (OSError, SyntaxError, ValueError) as error:
            reason = "truncated" if "truncated" in str(error) or "broken data stream" in str(error) else "unreadable"
            raise BadImageError(reason, str(error)) from error
    return image


@dataclass
class SkipLog:
    """Counts of skipped examples per cause, with a few examples of each for the error message."""

    counts: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    seen: int = 0

    def update(self, batch: dict[str, Any]) -> None:
        self.seen += int(batch.get("num_examples", 0))
        self.counts.update(batch.get("skipped", {}))
        self.examples.extend(batch.get("bad_examples", [])[: max(0, 10 - len(self.examples))])

    @property
    def skipped(self) -> int:
        return sum(self.counts.values())

    def check(self, max_fraction: float, min_seen: int = 100) -> None:
        """Raises once more than `max_fraction` of at least `min_seen` examples were unusable (the floor keeps one
        bad file among the very first examples from ending a run)."""
        if self.seen >= min_seen and self.skipped > max_fraction * self.seen:
            raise TooManyBadExamplesError(
                f"{self.skipped} of {self.seen} examples were unusable ({dict(self.counts)}), more than "
                f"--max_skipped_fraction={max_fraction}. Examples: " + "; ".join(self.examples)
            )

    def state_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "examples": self.examples, "seen": self.seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.counts, self.examples, self.seen = Counter(state["counts"]), list(state["examples"]), state["seen"]


class ImageCollator:
    """Turns a list of undecoded examples into a batch, in the DataLoader worker: decodes each image (skipping and
    recording bad ones), runs the image processor once on the good ones.

    Returns `{"pixel_values": (B, C, H, W), "labels": (B,) or None, "ids": (B,) or None, "num_examples": int,
    "skipped": {reason: count}, "bad_examples": [str]}`.
    """

    def __init__(self, processor, image_column: str = "image", label_column: str | None = "label") -> None:
        self.processor = processor
        self.image_column = image_column
        self.label_column = label_column

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        images, kept, skipped, bad = [], [], Counter(), []
        for position, example in enumerate(examples):
            try:
                images.append(decode_image(example[self.image_column]))
                kept.append(example)
            except BadImageError as error:
                skipped[error.reason] += 1
                bad.append(f"{self._name(example, position)}: {error.reason} ({error})")
        pixels = self._process(images, kept, skipped, bad)
        # Datasets without labels simply have none: the column is optional.
        has_labels = self.label_column and kept and all(self.label_column in e for e in kept)
        labels = [int(e[self.label_column]) for e in kept] if has_labels else []
        ids = [int(e["id"]) for e in kept if "id" in e]
        return {
            "pixel_values": pixels,
            "labels": torch.tensor(labels) if labels and len(labels) == len(pixels) else None,
            "ids": torch.tensor(ids) if ids and len(ids) == len(pixels) else None,
            "num_examples": len(examples),
            "skipped": dict(skipped),
            "bad_examples": bad,
        }

    def _process(self, images: list, kept: list, skipped: Counter, bad: list[str]) -> torch.Tensor:
        """One processor call for the batch; only if it fails, image by image to find and drop the culprit."""
        if images:
            try:
                return self.processor(images, return_tensors="pt").pixel_values
            except Exception:  # noqa: BLE001 - isolated below
                pass
        good = []
        for position in reversed(range(len(images))):
            try:
                good.append(self.processor(images[position], return_tensors="pt").pixel_values)
            except Exception as error:  # noqa: BLE001 - one odd image must not end the epoch
                skipped["unprocessable"] += 1
                bad.append(f"{self._name(kept[position], position)}: unprocessable ({type(error).__name__}: {error})")
                del kept[position]
        if good:
            return torch.cat(good[::-1])
        size = self.processor.crop_size["height"]
        return torch.empty(0, self.processor.num_channels, size, size)

    def _name(self, example: dict[str, Any], position: int) -> str:
        """How an example is named in logs: its id, else its file path, else its position in the batch."""
        if "id" in example:
            return f"id {example['id']}"
        value = example.get(self.image_column)
        if isinstance(value, dict) and value.get("path"):
            return str(value["path"])
        return f"example {position} of its batch"


class CodeCollator:
    """Batches examples of a code dataset (`scripts/extract_codes.py`): `codes` `(B, h, w)`, optional `condition`
    `(B, h', w')` (the level above, for a bottom prior) and `labels` `(B,)`."""

    def __init__(self, code_column: str, condition_column: str | None = None, label_column: str | None = None):
        self.code_column = code_column
        self.condition_column = condition_column
        self.label_column = label_column

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        def stack(column: str) -> torch.Tensor:
            return torch.stack([torch.as_tensor(example[column], dtype=torch.long) for example in examples])

        return {
            "codes": stack(self.code_column),
            "condition": stack(self.condition_column) if self.condition_column else None,
            "labels": torch.tensor([int(e[self.label_column]) for e in examples]) if self.label_column else None,
            "ids": torch.tensor([int(e["id"]) for e in examples]) if "id" in examples[0] else None,
            "num_examples": len(examples),
        }


def endless_batches(
    loader: torch.utils.data.DataLoader, start_epoch: int = 0, skip_batches: int = 0
) -> Iterator[tuple[int, dict]]:
    """`(epoch, batch)` pairs of `loader`, epoch after epoch, forever, with `set_epoch` before each epoch (it
    reshuffles the shard order and the buffer). Training runs by steps, so ranks whose shards hold different numbers
    of examples never wait on each other at an epoch boundary.

    `skip_batches` drops the first batches of `start_epoch`: resuming a run replays the same shuffled order up to
    where its checkpoint was taken, which is what makes a resumed run equal an uninterrupted one."""
    epoch = start_epoch
    while True:
        if hasattr(loader.dataset, "set_epoch"):
            loader.dataset.set_epoch(epoch)
        for index, batch in enumerate(loader):
            if epoch == start_epoch and index < skip_batches:
                continue
            yield epoch, batch
        epoch += 1
