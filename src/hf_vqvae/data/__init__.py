"""Offline sources of real images (scikit-image photos, Debian wallpapers, Fashion-MNIST), what a `--dataset`
resolves to (`open_dataset`), and the streaming input pipeline with its bad-data rules, shared by every training,
extraction and evaluation script."""

from .collate import BadImageError, CodeCollator, ImageCollator, decode_image
from .fashion_mnist import FASHION_MNIST_LABELS, load_fashion_mnist
from .feed import TrainingFeed, endless_batches
from .photos import photo_crop_tensor, random_crops, skimage_photos, wallpaper_photos
from .quality import SkipLog, TooManyBadExamplesError, counted, under_rules
from .sources import DataPlan, DatasetError, HeldOut, load_stream, open_dataset, resolve_columns, resolve_split
from .streaming import (
    extraction_splits,
    private_generator,
    training_loaders,
    validated_examples,
    write_parquet_shards,
)

__all__ = [
    "FASHION_MNIST_LABELS",
    "BadImageError",
    "CodeCollator",
    "DataPlan",
    "DatasetError",
    "HeldOut",
    "ImageCollator",
    "SkipLog",
    "TooManyBadExamplesError",
    "TrainingFeed",
    "counted",
    "decode_image",
    "endless_batches",
    "extraction_splits",
    "load_fashion_mnist",
    "load_stream",
    "open_dataset",
    "photo_crop_tensor",
    "private_generator",
    "random_crops",
    "resolve_columns",
    "resolve_split",
    "skimage_photos",
    "training_loaders",
    "under_rules",
    "validated_examples",
    "wallpaper_photos",
    "write_parquet_shards",
]
