"""Offline sources of real images (scikit-image photos, Debian wallpapers, Fashion-MNIST) and the streaming input
pipeline shared by every training and extraction script."""

from .fashion_mnist import FASHION_MNIST_LABELS, load_fashion_mnist
from .photos import photo_crop_tensor, random_crops, skimage_photos, wallpaper_photos
from .streaming import (
    BadImageError,
    CodeCollator,
    ImageCollator,
    SkipLog,
    TooManyBadExamplesError,
    decode_image,
    endless_batches,
    load_stream,
    write_parquet_shards,
)

__all__ = [
    "FASHION_MNIST_LABELS",
    "BadImageError",
    "CodeCollator",
    "ImageCollator",
    "SkipLog",
    "TooManyBadExamplesError",
    "decode_image",
    "endless_batches",
    "load_fashion_mnist",
    "load_stream",
    "photo_crop_tensor",
    "random_crops",
    "skimage_photos",
    "wallpaper_photos",
    "write_parquet_shards",
]
