"""What an evaluation reads: batches of a streamed image or code split, cut to a number of examples."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..data import CodeCollator, ImageCollator, SkipLog, load_stream


def _loader(stream, batch_size: int, collate, num_workers: int) -> DataLoader:
    # Streams have no length: batches come in stream order (no shuffling), the same order on every call when
    # num_workers is 0; with workers, shards are dealt to workers and their batches interleaved, still
    # deterministically.
    workers = min(num_workers, getattr(stream, "num_shards", 1) or 1)
    return DataLoader(stream, batch_size=batch_size, collate_fn=collate, num_workers=workers)


def image_loader(
    dataset: str,
    split: str,
    processor,
    batch_size: int = 64,
    num_workers: int = 0,
    image_column: str = "image",
    label_column: str | None = "label",
) -> DataLoader:
    """Batches of a streamed image split (a Hub dataset id or a local folder), decoded and processed by
    `ImageCollator`: dicts with `pixel_values` `(B, C, H, W)` in [-1, 1], `labels`, `ids` and the skip counts."""
    stream = load_stream(dataset, split, image_column=image_column)
    has_labels = label_column is not None and label_column in (stream.features or {})
    collate = ImageCollator(processor, image_column=image_column, label_column=label_column if has_labels else None)
    return _loader(stream, batch_size, collate, num_workers)


def code_loader(
    dataset: str,
    split: str,
    code_column: str = "codes",
    condition_column: str | None = None,
    label_column: str | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
) -> DataLoader:
    """Batches of a code dataset written by `scripts/extract_codes.py`: dicts with `codes`, `condition`, `labels`."""
    stream = load_stream(dataset, split)
    return _loader(stream, batch_size, CodeCollator(code_column, condition_column, label_column), num_workers)


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


__all__ = ["code_loader", "image_loader", "limited_batches"]
