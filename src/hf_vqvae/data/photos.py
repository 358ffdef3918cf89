"""Real images that work offline: photos shipped inside the scikit-image wheel and Debian's wallpaper package,
and random crops of them (SPEC section 3)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

# The colour photos `skimage.data` ships in its wheel (the other loaders download, which fails offline).
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina", "immunohistochemistry")
WALLPAPER_DIR = Path("/usr/share/backgrounds")


def skimage_photos(names: tuple[str, ...] = SKIMAGE_PHOTOS) -> list[Image.Image]:
    """The scikit-image sample photos as RGB PIL images (needs the `data` extra: scikit-image)."""
    try:
        from skimage import data
    except ImportError as error:  # pragma: no cover - exercised only without the extra
        raise ImportError("photo crops need scikit-image: pip install 'hf_vqvae[data]'") from error
    return [Image.fromarray(getattr(data, name)()).convert("RGB") for name in names]


def wallpaper_photos(directory: Path = WALLPAPER_DIR) -> list[Image.Image]:
    """The large photos of Debian's `lomiri-wallpapers` package, if installed (else an empty list)."""
    paths = sorted(p for p in directory.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return [Image.open(p).convert("RGB") for p in paths]


def random_crops(
    photos: list[Image.Image], size: int, count: int, seed: int = 0, scale_range: tuple[float, float] = (0.25, 1.0)
) -> Iterator[Image.Image]:
    """`count` random square crops of `size` x `size` pixels.

    Each crop takes a square of side `s * min(width, height)` with `s` drawn from `scale_range`, at a random
    position of a random photo, and resizes it to `size`: crops then show whole objects as well as textures.
    """
    if not photos:
        raise ValueError("random_crops needs at least one photo")
    rng = np.random.default_rng(seed)
    for _ in range(count):
        photo = photos[rng.integers(len(photos))]
        width, height = photo.size
        side = max(size // 2, int(rng.uniform(*scale_range) * min(width, height)))
        side = min(side, width, height)
        left = int(rng.integers(0, width - side + 1))
        top = int(rng.integers(0, height - side + 1))
        crop = photo.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        yield crop


def photo_crop_tensor(size: int, count: int, seed: int = 0, photos: list[Image.Image] | None = None):
    """`count` crops as a float tensor `(count, 3, size, size)` in [-1, 1], ready for a model."""
    import torch

    photos = photos if photos is not None else skimage_photos()
    arrays = np.stack([np.asarray(crop) for crop in random_crops(photos, size, count, seed)])
    return torch.from_numpy(arrays).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
