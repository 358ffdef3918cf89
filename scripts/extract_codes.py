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

An audio VQ-VAE (`model_type` "audio_vqvae") on a speech dataset (`prepare_data.py --source speech`) gives 1-D code
sequences instead:

    python scripts/extract_codes.py --model_name_or_path outputs/audio --dataset outputs/data/speech \
        --output_dir outputs/audio_codes

Each utterance becomes ONE fixed-length crop of `--segment_samples` samples (default: the model's training crop,
`segment_samples`), its middle one as evaluation reads it; an utterance shorter than the crop is padded with silence
(what the feature extractor pads with). So every row's `codes` has the same shape `(segment_samples / 64,)`, and a
1-D PixelSNAIL with a fixed `latent_length` trains on them (`scripts/train.py --model pixelsnail`). The speaker
(`speaker_id`, the dataset's `ClassLabel`) is carried as the label: `codes_info.json` names `speaker_id` as its
`label_column`, the speakers as `class_names`, and the crop rule (`crop`, `segment_samples`, `sampling_rate`).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from datasets import Array2D, Array3D, ClassLabel, Dataset, Features, List, Value
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import AutoFeatureExtractor, AutoModel

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
from hf_vqvae.data.audio import AudioCollator, open_audio_dataset
from hf_vqvae.feature_extraction_audio import VQVAEAudioFeatureExtractor
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
    parser.add_argument(
        "--segment_samples",
        type=int,
        default=None,
        help="audio models: the length of the one (middle) crop of each utterance that is encoded; default: the "
        "model's training crop (config.segment_samples)",
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


@dataclass
class Signals:
    """What differs between encoding images and encoding speech: the batches, how they become code levels, where the
    labels are, and what one example is called in logs."""

    collate: Callable[[list[dict[str, Any]]], dict[str, Any]]
    encode: Callable[[dict[str, Any], torch.device], list[torch.Tensor]]
    labels: Callable[[dict[str, Any]], list | None]
    unit: str
    label_column: str | None


def image_signals(plan: DataPlan, model, processor) -> Signals:
    return Signals(
        collate=ImageCollator(processor, plan.image_column, plan.label_column),
        encode=lambda batch, device: model.encode_levels(batch["pixel_values"].to(device)),
        labels=lambda batch: batch["label_values"],
        unit="images",
        label_column="label",
    )


def audio_signals(plan: DataPlan, audio_column: str, model, feature_extractor, segment_samples: int) -> Signals:
    """One middle crop of `segment_samples` per utterance (shorter ones padded with silence), through the collator
    training evaluates with, so the codes are those of the crops the model was evaluated on."""
    speaker_column = plan.label_column
    return Signals(
        collate=AudioCollator(
            feature_extractor, audio_column, speaker_column, segment_samples=segment_samples, random_crop=False
        ),
        encode=lambda batch, device: [model.encode(batch["input_values"].to(device))],
        labels=lambda batch: None if batch["speaker_ids"] is None else batch["speaker_ids"].tolist(),
        unit="utterances",
        label_column=speaker_column,
    )


def encode_split(
    args, plan: DataPlan, split: str, part: str, model, signals: Signals, columns_of_levels: list[str], accelerator
) -> tuple[dict[str, list], SkipLog, Any]:
    """This process's part of `split` (`part` of it, as `DataPlan.stream` reads it): the code columns (plus `id` and
    the labels), its skip log, the label feature."""
    stream = plan.stream(split, part=part, rank=accelerator.process_index, world_size=accelerator.num_processes)
    workers = min(args.num_workers, stream.num_shards)
    loader = DataLoader(stream, batch_size=args.batch_size, collate_fn=signals.collate, num_workers=workers)
    columns: dict[str, list] = {}
    skips = SkipLog()
    what = {"train": f"{split} without its held-out part", "held_out": f"held-out part of {split}"}.get(part, split)
    progress = tqdm(desc=f"encode {what}", unit=signals.unit[:-1], disable=not accelerator.is_local_main_process)
    for batch in loader:
        skips.update(batch)
        if accelerator.num_processes == 1:  # several processes decide together, at the end of the split
            skips.check(args.max_skipped_fraction)
        if not batch["positions"]:
            continue
        levels = signals.encode(batch, accelerator.device)
        for name, level in zip(columns_of_levels, levels):
            columns.setdefault(name, []).extend(level.to(torch.int32).cpu().numpy())
        if batch["ids"] is not None:
            columns.setdefault("id", []).extend(batch["ids"].tolist())
        labels = signals.labels(batch)
        if labels is not None:  # None where an example has no label
            columns.setdefault(signals.label_column, []).extend(labels)
        progress.update(len(batch["positions"]))
    progress.close()
    # The rule without its 100-example floor, over every process's examples: a split of bad examples fails.
    message = SkipLog.merged(gather_object([skips])).verdict(args.max_skipped_fraction, min_seen=0, what=signals.unit)
    if message:
        raise TooManyBadExamplesError(f"split {split!r} of {args.dataset}: {message}")
    return columns, skips, plan.features.get(plan.label_column) if plan.label_column else None


def audio_feature_extractor(source: str, config) -> VQVAEAudioFeatureExtractor:
    """The feature extractor saved with the model, else the one training used (its rate, padded to whole codes)."""
    try:
        return AutoFeatureExtractor.from_pretrained(source)
    except (OSError, ValueError):  # nothing saved there (a training run saves the model only)
        rate, factor = config.sampling_rate, config.downsample_factor
        return VQVAEAudioFeatureExtractor(sampling_rate=rate, pad_to_multiple_of=factor)


def open_signals(args, model, info: CodesInfo) -> tuple[DataPlan, Signals]:
    """The dataset and its batches, for an image VQ model or an audio VQ-VAE."""
    if info.is_audio:
        label_column = None if args.label_column == "none" else args.label_column
        plan, audio_column = open_audio_dataset(
            args.dataset, label_column=label_column, validation_split_percentage=args.validation_split_percentage,
            what="extracting the codes of an audio VQ-VAE",
        )  # fmt: skip
        if model.config.num_speakers and not plan.label_column:
            raise DatasetError(f"the model is conditioned on speakers but {args.dataset} has no speaker column")
        if not model.config.num_speakers:
            plan = dataclasses.replace(plan, label_column=None)
        feature_extractor = audio_feature_extractor(args.model_name_or_path, model.config)
        info.extra["crop"] = "middle"
        return plan, audio_signals(plan, audio_column, model, feature_extractor, info.extra["segment_samples"])
    plan = open_dataset(
        args.dataset,
        validation_split_percentage=args.validation_split_percentage,
        image_column=args.image_column,
        label_column=args.label_column,
    )
    return plan, image_signals(plan, model, load_processor(args.model_name_or_path, model.config))


def main() -> None:
    args = parse_args()
    if args.validation_split_percentage is None:
        args.validation_split_percentage = recorded_validation_percentage(args.model_name_or_path)
    accelerator = Accelerator()
    model = AutoModel.from_pretrained(args.model_name_or_path).to(accelerator.device).eval()
    source = Path(args.model_name_or_path)
    try:
        info = CodesInfo.for_vq_model(
            model.config,
            vq_model=str(source.resolve()) if source.exists() else args.model_name_or_path,
            source_dataset=args.dataset,
            segment_samples=args.segment_samples,
        )
    except ValueError as error:
        raise DatasetError(f"--segment_samples: {error}") from None
    plan, signals = open_signals(args, model, info)
    for split, source, part in extraction_splits(plan, args.splits):
        columns, skips, label_feature = encode_split(
            args, plan, source, part, model, signals, info.columns, accelerator
        )
        feature_types = {"id": Value("int64")} if "id" in columns else {}
        for level in info.levels:
            feature_types[level.column] = code_feature(level.shape)
        label = signals.label_column
        if label in columns:
            feature_types[label] = label_feature if isinstance(label_feature, ClassLabel) else Value("int64")
            info.label_column = label
            labels_seen = [value for value in gather_object(columns[label]) if value is not None]
            if isinstance(label_feature, ClassLabel):
                info.num_classes = label_feature.num_classes
                info.extra["class_names"] = list(label_feature.names)
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
