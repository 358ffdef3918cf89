"""Streaming input pipeline: `datasets` streams split across processes, decoded and transformed in DataLoader
workers, with bad examples skipped and counted rather than crashing an epoch.

The layout of a local dataset folder is the Hub's: `data/{split}-00000-of-00008.parquet` (what
`scripts/prepare_data.py` and `scripts/extract_codes.py` write) or any other layout `sources.open_dataset` accepts;
`load_dataset` reads the same names from a Hub dataset id.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from torch.utils.data import DataLoader

from .quality import SkipLog
from .sources import DataPlan, DatasetError

# The split name of held-out examples written out as their own split (codes of a train-only image dataset).
HELD_OUT_SPLIT = "validation"


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


def private_generator(seed: int) -> torch.Generator:
    # Every DataLoader iterator draws a worker seed; from the global RNG that draw would shift every later random
    # number (dead-code restarts, dropout) between an uninterrupted run and a resumed one.
    return torch.Generator().manual_seed(seed)


def validated_examples(examples: list[dict[str, Any]], collate, chunk: int = 64) -> tuple[list[dict], SkipLog]:
    """The examples `collate` can use (in order), and the log of those it cannot: a held-out set checked once, so
    that every evaluation runs over usable examples only and an all-bad set is known before training starts."""
    good, log = [], SkipLog()
    for start in range(0, len(examples), chunk):
        part = examples[start : start + chunk]
        batch = collate(part)
        log.update(batch)
        good.extend(part[position] for position in batch["positions"])
    return good, log


def training_loaders(
    plan: DataPlan,
    collate,
    *,
    rank: int,
    world_size: int,
    batch_size: int,
    eval_batch_size: int,
    seed: int,
    shuffle_buffer: int,
    num_workers: int,
    eval_samples: int | None,
) -> tuple[DataLoader, DataLoader, SkipLog]:
    """This rank's training and evaluation loaders, and the log of unusable evaluation examples.

    Training: the shuffled stream of the train split, this rank's shards only, batched by a copy of `collate` that
    sets the held-out examples aside (and counts them), in DataLoader workers. Evaluation: this rank's share of
    `eval_samples` evaluation examples (`plan.eval_stream`), read once, checked, and kept in memory undecoded: every
    evaluation then sees the same examples and does not reopen the stream, whose closing waits for Arrow's threads.
    """
    train = plan.stream(plan.train_split, seed=seed, shuffle_buffer=shuffle_buffer, rank=rank, world_size=world_size)
    train_collate = copy.copy(collate)
    train_collate.held_out = plan.held_out
    # A stream has no length to sample from: batches come in stream order, shuffled upstream by its buffer.
    train_loader = DataLoader(
        train,
        batch_size=batch_size,
        collate_fn=train_collate,
        num_workers=min(num_workers, getattr(train, "num_shards", 1) or 1),
        generator=private_generator(seed),
    )
    held_out = plan.eval_stream(rank=rank, world_size=world_size)
    if held_out is not None and eval_samples is not None:
        held_out = held_out.take(math.ceil(eval_samples / world_size))
    examples, log = validated_examples(list(held_out) if held_out is not None else [], collate, eval_batch_size)
    eval_loader = DataLoader(examples, batch_size=eval_batch_size, collate_fn=collate, generator=private_generator(0))
    return train_loader, eval_loader, log


def extraction_splits(plan: DataPlan, requested: list[str] | None = None) -> list[tuple[str, str, str]]:
    """What `scripts/extract_codes.py` writes, as `(output split, split read, part of it)` triples (`part` as in
    `DataPlan.stream`): every split of the dataset, and for a dataset whose evaluation examples are held out of its
    train split, that split as two: `train` without them and `validation` with only them. The codes' splits are
    then the image splits training used, and a prior trains and evaluates on the codes of the same examples.
    `requested` keeps only the output splits named (each must exist)."""
    parts = []
    for split in plan.splits:
        if split == plan.train_split and plan.evaluates_held_out:
            parts += [(split, split, "train"), (HELD_OUT_SPLIT, split, "held_out")]
        else:
            parts.append((split, split, "all"))
    if requested:
        known = [output for output, _, _ in parts]
        missing = [name for name in requested if name not in known]
        if missing:
            raise DatasetError(f"--splits {missing}: --dataset {plan.dataset} has {known} (with the held-out part)")
        parts = [part for part in parts if part[0] in requested]
    return parts
