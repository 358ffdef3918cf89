"""Builds a local `datasets` folder of parquet shards (several per split) from the real images that work offline.

Sources (SPEC section 3):
  * fashion-mnist: Debian's `dataset-fashion-mnist` (60,000 train + 10,000 test 28x28 greyscale images, 10 labels);
  * photos: random square crops of scikit-image's sample photos and Debian's `lomiri-wallpapers-16.04` photos;
    the test split is cropped from photos the train split never sees.

    python scripts/prepare_data.py --source fashion-mnist --output_dir outputs/data/fashion-mnist
    python scripts/prepare_data.py --source photos --image_size 64 --output_dir outputs/data/photos64
    python scripts/prepare_data.py --source vizdoom --output_dir outputs/data/vizdoom  # see hf_vqvae.data.vizdoom
    python scripts/prepare_data.py --source speech --output_dir outputs/data/speech  # see hf_vqvae.data.speech

The result loads with `load_dataset("outputs/data/fashion-mnist", streaming=True)`, as a Hub dataset would.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from datasets import ClassLabel, Dataset, Features, Value
from datasets import Image as ImageFeature
from PIL import Image
from tqdm.auto import tqdm

from hf_vqvae.data import (
    FASHION_MNIST_LABELS,
    load_fashion_mnist,
    random_crops,
    skimage_photos,
    wallpaper_photos,
    write_parquet_shards,
)
from hf_vqvae.data.speech import add_speech_arguments, prepare_speech_from_args
from hf_vqvae.data.vizdoom import add_vizdoom_arguments, prepare_vizdoom_from_args


def fashion_mnist_split(split: str, limit: int | None) -> Dataset:
    images, labels = load_fashion_mnist(split)
    count = len(images) if limit is None else min(limit, len(images))
    features = Features(
        {"id": Value("int64"), "image": ImageFeature(), "label": ClassLabel(names=list(FASHION_MNIST_LABELS))}
    )

    def rows():
        for index in tqdm(range(count), desc=f"fashion-mnist {split}", unit="img"):
            yield {"id": index, "image": Image.fromarray(images[index]), "label": int(labels[index])}

    return Dataset.from_generator(rows, features=features)


def photo_split(photos: list[Image.Image], size: int, count: int, seed: int, split: str) -> Dataset:
    features = Features({"id": Value("int64"), "image": ImageFeature()})

    def rows():
        crops = random_crops(photos, size, count, seed=seed)
        for index, crop in enumerate(tqdm(crops, total=count, desc=f"photo crops {split}", unit="img")):
            yield {"id": index, "image": crop}

    return Dataset.from_generator(rows, features=features)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", choices=["fashion-mnist", "photos", "speech", "vizdoom"], required=True)
    parser.add_argument("--output_dir", type=Path, required=True)
    parser.add_argument("--num_shards", type=int, default=8, help="parquet shards per split (>= processes x workers)")
    parser.add_argument("--image_size", type=int, default=64, help="photos: side of the square crops")
    parser.add_argument("--train_size", type=int, default=None, help="examples in the train split (default: all)")
    parser.add_argument("--test_size", type=int, default=None, help="examples in the test split (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    add_speech_arguments(parser)
    add_vizdoom_arguments(parser)
    args = parser.parse_args()

    if args.source == "vizdoom":
        # First-person frames and actions from ViZDoom episodes, held-out episodes as the test split.
        info = prepare_vizdoom_from_args(args)
        print(f"wrote {info['splits']} frames ({info['episodes']} episodes) to {args.output_dir}")
        return

    if args.source == "speech":
        # Real multi-speaker speech (hf_vqvae.data.speech): decoded, 16 kHz mono, held-out utterances per speaker.
        info = prepare_speech_from_args(args)
        print(f"wrote {info['splits']} ({info['train_hours']} + {info['test_hours']} hours) to {args.output_dir}")
        return

    if args.source == "fashion-mnist":
        splits = {
            "train": fashion_mnist_split("train", args.train_size),
            "test": fashion_mnist_split("test", args.test_size),
        }
    else:
        photos = skimage_photos() + wallpaper_photos()
        if len(photos) < 4:
            raise SystemExit(
                "need at least 4 source photos (pip install scikit-image; apt-get install lomiri-wallpapers-16.04)"
            )
        # Every fifth photo is held out, so test crops come from pictures training never saw.
        held_out = [photo for i, photo in enumerate(photos) if i % 5 == 4]
        seen = [photo for i, photo in enumerate(photos) if i % 5 != 4]
        splits = {
            "train": photo_split(seen, args.image_size, args.train_size or 20_000, args.seed, "train"),
            "test": photo_split(held_out, args.image_size, args.test_size or 2_000, args.seed + 1, "test"),
        }

    args.output_dir.mkdir(parents=True, exist_ok=True)
    for split, dataset in splits.items():
        write_parquet_shards(dataset, args.output_dir, split, args.num_shards)
    info = {"source": args.source, "splits": {split: len(ds) for split, ds in splits.items()}}
    (args.output_dir / "dataset_info.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"wrote {info['splits']} to {args.output_dir}")


if __name__ == "__main__":
    np.seterr(all="raise")
    main()
