"""Encodes an image dataset with a trained VQ-VAE or VQ-VAE-2 into a `datasets` dataset of code maps, the training
data of the priors. Runs under Accelerate: each process encodes its own part of the stream and writes its own
parquet shards.

    accelerate launch scripts/extract_codes.py --model_name_or_path outputs/vqvae \\
        --dataset outputs/data/fashion-mnist --output_dir outputs/codes

Output: `data/{split}-*.parquet` with columns `id`, the codes (`codes` for a VQ-VAE; `codes_0` (top), `codes_1`, ...
for a VQ-VAE-2) and the labels when the dataset has them, plus `codes_info.json` describing the levels and the model.
`--model_name_or_path` and `--dataset` take Hub ids as well as local folders; `--dataset` takes every layout
`scripts/train.py` does. The codes keep the image dataset's splits; a dataset without an evaluation split gets the
examples training held out (`--validation_split_percentage`, by a hash of each example) as its `validation` split,
so that a prior trains and evaluates on the codes of the images the VQ model trained and evaluated on.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from datasets import Array2D, Array3D, ClassLabel, Dataset, Features, List, Value
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import AutoModel

from hf_vqvae.codes_info import CodesInfo
from hf_vqvae.data import (
    DataPlan,
    DatasetError,
    ImageCollator,
    SkipLog,
    TooManyBadExamplesError,
    extraction_splits,
    open_dataset,
    write_parquet_shards,
)
from hf_vqvae.loading import load_processor, recorded_validation_percentage


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", required=True, help="a trained VQ-VAE / VQ-VAE-2 (folder or Hub id)")
    parser.add_argument("--dataset", required=True, help="image dataset: Hub id or local folder")
    parser.add_argument("--output_dir", type=Path, required=True)
    parser.add_argument("--splits", nargs="+", default=None, help="default: every split (see above)")
    parser.add_argument("--image_column", default=None, help="default: the dataset's Image column")
    parser.add_argument(
        "--label_column", default=None, help="carried into the code dataset; default: its ClassLabel column; 'none'"
    )
    parser.add_argument(
        "--validation_split_percentage",
        type=float,
        default=None,
        help="as in scripts/train.py; default: the VQ model's own run's share (its train_args.json), else 5, so that "
        "the codes' validation split holds exactly the images that run never trained on",
    )
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--num_workers", type=int, default=2)
    parser.add_argument("--shards_per_process", type=int, default=4)
    parser.add_argument("--max_skipped_fraction", type=float, default=0.01)
    return parser.parse_args()


@torch.no_grad()
def code_feature(shape: tuple[int, ...]):
    """The `datasets` feature of one level's code maps of `shape` (without the batch), int32."""
    if len(shape) == 1:
        return List(Value("int32"), length=shape[0])
    return {2: Array2D, 3: Array3D}[len(shape)](shape=shape, dtype="int32")


def encode_split(
    args, plan: DataPlan, split: str, part: str, model, processor, columns_of_levels: list[str], accelerator
) -> tuple[dict[str, list], SkipLog, Any]:
    """This process's part of `split` (`part` of it, as `DataPlan.stream` reads it): the code columns (plus `id`,
    `label`), its skip log, the label feature."""
    stream = plan.stream(split, part=part, rank=accelerator.process_index, world_size=accelerator.num_processes)
    collate = ImageCollator(processor, plan.image_column, plan.label_column)
    workers = min(args.num_workers, stream.num_shards)
    loader = DataLoader(stream, batch_size=args.batch_size, collate_fn=collate, num_workers=workers)
    columns: dict[str, list] = {}
    skips = SkipLog()
    progress = tqdm(desc=f"encode {split}", unit="img", disable=not accelerator.is_local_main_process)
    for batch in loader:
        skips.update(batch)
        if accelerator.num_processes == 1:  # several processes decide together, at the end of the split
            skips.check(args.max_skipped_fraction)
        if len(batch["pixel_values"]) == 0:
            continue
        levels = model.encode_levels(batch["pixel_values"].to(accelerator.device))
        for name, level in zip(columns_of_levels, levels):
            columns.setdefault(name, []).extend(level.to(torch.int32).cpu().numpy())
        if batch["ids"] is not None:
            columns.setdefault("id", []).extend(batch["ids"].tolist())
        if batch["label_values"] is not None:  # None where an example has no label
            columns.setdefault("label", []).extend(batch["label_values"])
        progress.update(len(batch["pixel_values"]))
    progress.close()
    # The rule without its 100-example floor, over every process's examples: a split of bad images fails.
    message = SkipLog.merged(gather_object([skips])).verdict(args.max_skipped_fraction, min_seen=0, what="images")
    if message:
        raise TooManyBadExamplesError(f"split {split!r} of {args.dataset}: {message}")
    return columns, skips, plan.features.get(plan.label_column) if plan.label_column else None


def main() -> None:
    args = parse_args()
    if args.validation_split_percentage is None:
        args.validation_split_percentage = recorded_validation_percentage(args.model_name_or_path)
    accelerator = Accelerator()
    model = AutoModel.from_pretrained(args.model_name_or_path).to(accelerator.device).eval()
    processor = load_processor(args.model_name_or_path, model.config)
    source = Path(args.model_name_or_path)
    info = CodesInfo.for_vq_model(
        model.config,
        vq_model=str(source.resolve()) if source.exists() else args.model_name_or_path,
        source_dataset=args.dataset,
    )
    plan = open_dataset(
        args.dataset,
        validation_split_percentage=args.validation_split_percentage,
        image_column=args.image_column,
        label_column=args.label_column,
    )
    for split, source, part in extraction_splits(plan, args.splits):
        columns, skips, label_feature = encode_split(
            args, plan, source, part, model, processor, info.columns, accelerator
        )
        feature_types = {"id": Value("int64")} if "id" in columns else {}
        for level in info.levels:
            feature_types[level.column] = code_feature(level.shape)
        if "label" in columns:
            feature_types["label"] = label_feature if isinstance(label_feature, ClassLabel) else Value("int64")
            info.label_column = "label"
            labels_seen = [label for label in gather_object(columns["label"]) if label is not None]
            if isinstance(label_feature, ClassLabel):
                info.num_classes = label_feature.num_classes
            elif labels_seen:
                info.num_classes = int(max(labels_seen)) + 1
        part = Dataset.from_dict(columns, features=Features(feature_types))
        # Each process writes its own shards, numbered after the other processes'.
        folder = args.output_dir / f".part{accelerator.process_index}"
        paths = write_parquet_shards(part, folder, split, args.shards_per_process)
        counts = gather_object([(accelerator.process_index, len(part), len(paths), skips.skipped)])
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            total_shards = sum(c[2] for c in counts)
            offset = 0
            (args.output_dir / "data").mkdir(parents=True, exist_ok=True)
            for process_index, _, num_paths, _ in sorted(counts):
                for i in range(num_paths):
                    source = (
                        args.output_dir
                        / f".part{process_index}"
                        / "data"
                        / f"{split}-{i:05d}-of-{num_paths:05d}.parquet"
                    )
                    source.rename(args.output_dir / "data" / f"{split}-{offset:05d}-of-{total_shards:05d}.parquet")
                    offset += 1
            info.splits[split] = {"examples": sum(c[1] for c in counts), "skipped": sum(c[3] for c in counts)}
            print(f"{split}: {info.splits[split]['examples']} code maps in {total_shards} shards")
        accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        for process_index in range(accelerator.num_processes):
            shutil.rmtree(args.output_dir / f".part{process_index}", ignore_errors=True)
        print(f"wrote {info.write(args.output_dir)}")


def run() -> int:
    """The command line: data that cannot be used is one clear line on stderr and a non-zero exit status."""
    try:
        main()
    except (DatasetError, TooManyBadExamplesError) as error:
        print(f"extract_codes.py: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run())
