"""Fashion-MNIST (Xiao et al. 2017) from Debian's `dataset-fashion-mnist` package: 60,000 + 10,000 real 28x28
greyscale images in 10 classes, read from its IDX files, offline."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_LABELS = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_FILES = {"train": "train", "test": "t10k"}


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format): magic (2 zero bytes, dtype code 0x08 = uint8, number of dimensions),
    big-endian uint32 sizes, then the data."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path} is not an uint8 IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist(split: str = "train", directory: Path = FASHION_MNIST_DIR) -> tuple[np.ndarray, np.ndarray]:
    """Images `(N, 28, 28)` uint8 and labels `(N,)` of the "train" (60,000) or "test" (10,000) split."""
    if split not in _FILES:
        raise ValueError(f"split must be one of {sorted(_FILES)}, got {split!r}")
    prefix = _FILES[split]
    images_path = directory / f"{prefix}-images-idx3-ubyte.gz"
    if not images_path.exists():
        raise FileNotFoundError(
            f"{images_path} not found: install Debian's Fashion-MNIST package (apt-get install dataset-fashion-mnist)"
        )
    images = _read_idx(images_path)
    labels = _read_idx(directory / f"{prefix}-labels-idx1-ubyte.gz")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels in {directory}")
    return images, labels
