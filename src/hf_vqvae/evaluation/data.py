"""What an evaluation reads: batches of a streamed image or code split, cut to a number of examples."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..data import CodeCollator, HeldOut, ImageCollator, SkipLog, load_stream, resolve_split
from ..data.sources import DEFAULT_VALIDATION_PERCENTAGE, _features, code_key, open_splits


@dataclass(frozen=True)
class EvalPart:
    """The examples an evaluation reads: split `split` of `dataset`, all of it, or only the `held_out_percentage` %
    that training held out of it (asked for an evaluation split, `requested`, that the dataset lacks)."""

    dataset: str
    requested: str
    split: str
    held_out: HeldOut | None = None

    @property
    def held_out_percentage(self) -> float | None:
        return self.held_out.percentage if self.held_out is not None else None

    def describe(self) -> str:
        if self.held_out is not None:
            return (
                f"the {self.held_out.percentage:g}% of split {self.split!r} of {self.dataset} held out from training "
                f"by a hash of each example (the dataset has no split {self.requested!r})"
            )
        return f"split {self.split!r} of {self.dataset}"

    def stream(self, image_column: str | None = None):
        stream = load_stream(self.dataset, self.split, image_column=image_column)  # a split it has: read as is
        return stream.filter(self.held_out) if self.held_out is not None else stream


def eval_part(
    dataset: str,
    split: str,
    validation_split_percentage: float = DEFAULT_VALIDATION_PERCENTAGE,
    image_column: str | None = None,
) -> EvalPart:
    """What evaluating `split` of `dataset` reads, as training chose its evaluation data: the split itself where the
    dataset has it; for an evaluation split name it lacks, its own `validation` (or `test`) split, else the
    `validation_split_percentage` % of its train split held out by the same hash of each example (`image_column`'s
    content, or a code dataset's first level's codes) that training used."""
    splits = open_splits(dataset)
    key = image_column or code_key(_features(next(iter(splits.values()))))
    read, held_out = resolve_split(splits, split, dataset, key, validation_split_percentage)
    return EvalPart(dataset, split, read, held_out)


def _loader(part: EvalPart, stream, batch_size: int, collate, num_workers: int) -> DataLoader:
    # Streams have no length: batches come in stream order (no shuffling), the same order on every call when
    # num_workers is 0; with workers, shards are dealt to workers and their batches interleaved, still
    # deterministically.
    workers = min(num_workers, getattr(stream, "num_shards", 1) or 1)
    loader = DataLoader(stream, batch_size=batch_size, collate_fn=collate, num_workers=workers)
    loader.part = part  # which examples it reads, for the evaluation's record
    return loader


def image_loader(
    dataset: str,
    split: str,
    processor,
    batch_size: int = 64,
    num_workers: int = 0,
    image_column: str = "image",
    label_column: str | None = "label",
    validation_split_percentage: float = DEFAULT_VALIDATION_PERCENTAGE,
) -> DataLoader:
    """Batches of a streamed image split (a Hub dataset id or a local folder), decoded and processed by
    `ImageCollator`: dicts with `pixel_values` `(B, C, H, W)` in [-1, 1], `labels`, `ids` and the skip counts. A
    split the dataset lacks is read as `eval_part` says; the loader's `part` names what it reads."""
    part = eval_part(dataset, split, validation_split_percentage, image_column)
    stream = part.stream(image_column)
    has_labels = label_column is not None and label_column in (stream.features or {})
    collate = ImageCollator(processor, image_column=image_column, label_column=label_column if has_labels else None)
    return _loader(part, stream, batch_size, collate, num_workers)


def code_loader(
    dataset: str,
    split: str,
    code_column: str = "codes",
    condition_column: str | None = None,
    label_column: str | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
    validation_split_percentage: float = DEFAULT_VALIDATION_PERCENTAGE,
) -> DataLoader:
    """Batches of a code dataset written by `scripts/extract_codes.py`: dicts with `codes`, `condition`, `labels`.
    A split the dataset lacks is read as `eval_part` says."""
    part = eval_part(dataset, split, validation_split_percentage)
    collate = CodeCollator(code_column, condition_column, label_column)
    return _loader(part, part.stream(), batch_size, collate, num_workers)


def limited_batches(
    loader: Iterable[Any],
    max_samples: int | None,
    size_key: str,
    desc: str,
    progress: bool,
    skips: SkipLog | None = None,
) -> Iterator[dict[str, Any]]:
    """The non-empty batches of `loader` (dicts, or bare tensors for `size_key`), cut to `max_samples` examples in
    all, with a tqdm bar counting examples. Stops reading the stream as soon as the limit is reached. Each batch's
    accounting of unreadable examples goes to `skips`."""
    seen = 0
    total = max_samples if max_samples is not None else _known_length(loader)
    with tqdm(total=total, desc=desc, unit="img", disable=not progress) as bar:
        for batch in loader:
            if not isinstance(batch, Mapping):
                batch = {size_key: batch}
            if skips is not None and "num_examples" in batch:
                skips.update(batch)
            size = len(batch[size_key])
            if max_samples is not None and seen + size > max_samples:
                keep = max_samples - seen
                batch = {k: v[:keep] if isinstance(v, torch.Tensor) and v.ndim and len(v) == size else v
                         for k, v in batch.items()}  # fmt: skip
                size = keep
            if size:
                seen += size
                bar.update(size)
                yield batch
            if max_samples is not None and seen >= max_samples:
                return


def _known_length(loader: Iterable[Any]) -> int | None:
    """Number of examples behind `loader` if it can tell without reading (a map-style dataset), else None."""
    try:
        return len(loader.dataset)  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        return None


__all__ = ["EvalPart", "code_loader", "eval_part", "image_loader", "limited_batches"]
