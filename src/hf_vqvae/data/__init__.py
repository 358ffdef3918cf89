"""Offline sources of real images (scikit-image photos, Debian wallpapers, Fashion-MNIST) and dataset helpers."""

from .photos import photo_crop_tensor, random_crops, skimage_photos, wallpaper_photos

__all__ = ["photo_crop_tensor", "random_crops", "skimage_photos", "wallpaper_photos"]
