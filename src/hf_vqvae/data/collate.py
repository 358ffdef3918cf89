"""Collators that turn undecoded examples into batches in DataLoader workers, skipping and counting what cannot be
used (a corrupt image, a malformed code map, a missing label where one is required) instead of crashing an epoch.

Every batch carries its own accounting, which `SkipLog.update` reads: `num_examples` (read, held-out ones excluded),
`skipped` (`{cause: count}`), `bad_examples` (a few `"<name>: <cause> (<detail>)"` strings), `held_out` (examples set
aside for evaluation by the `held_out` rule, never trained on) and `positions` (where in the input list each kept
example was).
"""

from __future__ import annotations

import io
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

# Larger images are refused as decompression bombs (a small PNG can claim gigapixels and exhaust memory).
MAX_IMAGE_PIXELS = 64_000_000


class BadImageError(ValueError):
    """An example whose image cannot be used; `reason` is the counter key it is logged under."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def read_bytes(path: str) -> bytes:
    """A local file, or a remote one (`hf://`, `https://`, as streamed Hub image folders give them)."""
    if "://" in path:
        from datasets.utils.file_utils import xopen

        with xopen(path, "rb") as handle:
            return handle.read()
    return Path(path).read_bytes()


def decode_image(value: Any, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Decodes an image column value (`{"bytes", "path"}`, raw bytes, a path or a PIL image) fully, so that a
    truncated file fails here and not later. Raises `BadImageError` with one of the reasons `empty`, `not_an_image`,
    `truncated`, `decompression_bomb`, `unreadable`."""
    if isinstance(value, Image.Image):
        return value
    if value is None:
        raise BadImageError("empty", "no image")
    data, path = (value.get("bytes"), value.get("path")) if isinstance(value, dict) else (value, None)
    try:
        if data is None and path is not None:
            data = read_bytes(path)
        if isinstance(data, str):
            data = read_bytes(data)
    except OSError as error:
        raise BadImageError("unreadable", str(error)) from error
    if not data:
        raise BadImageError("empty", "zero bytes")
    with warnings.catch_warnings():
        # PIL only warns between MAX_IMAGE_PIXELS and twice that; treat both as bombs.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > max_pixels:
                raise BadImageError("decompression_bomb", f"{image.width}x{image.height} exceeds {max_pixels} pixels")
            image.load()
        except BadImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise BadImageError("decompression_bomb", str(error)) from error
        except Image.UnidentifiedImageError as error:
            raise BadImageError("not_an_image", "not a recognised image format") from error
        except (OSError, SyntaxError, ValueError) as error:
            text = str(error).lower()  # "image file is truncated", "Truncated File Read", "broken data stream"
            reason = "truncated" if "truncated" in text or "broken data stream" in text else "unreadable"
            raise BadImageError(reason, str(error)) from error
    return image


def example_name(example: dict[str, Any], position: int, column: str | None) -> str:
    """How an example is named in logs: its id, else its file name, else its position in the batch."""
    if example.get("id") is not None:
        return f"id {example['id']}"
    value = example.get(column) if column else None
    if isinstance(value, dict) and value.get("path"):
        return str(value["path"])
    return f"example {position} of its batch"


def _label(value: Any) -> int | None:
    """An integer class label, or None where the dataset has none for this example (None, NaN, -1, not a number)."""
    try:
        label = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return label if label >= 0 else None


def _accounting(examples, kept, skipped: Counter, bad: list[str], held_out: int) -> dict[str, Any]:
    ids = [example.get("id") for _, example in kept]
    return {
        "ids": torch.tensor(ids) if kept and all(isinstance(i, (int, np.integer)) for i in ids) else None,
        "num_examples": len(examples) - held_out,
        "skipped": dict(skipped),
        "bad_examples": bad,
        "held_out": held_out,
        "positions": [position for position, _ in kept],
    }


def _labels(kept: list[tuple[int, dict]], column: str | None) -> torch.Tensor | None:
    """The batch's labels, or None unless every kept example has one (labels are optional; half a batch of them is
    not something a model can use)."""
    if not column or not kept:
        return None
    labels = [_label(example.get(column)) for _, example in kept]
    return None if any(label is None for label in labels) else torch.tensor(labels)


class ImageCollator:
    """Turns a list of undecoded examples into a batch, in the DataLoader worker: sets aside held-out examples,
    decodes each image (skipping and recording bad ones), runs the image processor once on the good ones.

    Returns `{"pixel_values": (B, C, H, W), "labels": (B,) or None, "label_values": [int | None] or None, "ids":
    (B,) or None}` plus the accounting keys of this module's docstring.
    """

    def __init__(
        self,
        processor,
        image_column: str = "image",
        label_column: str | None = "label",
        held_out: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        self.processor = processor
        self.image_column = image_column
        self.label_column = label_column
        self.held_out = held_out

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        images, kept, skipped, bad, held_out = [], [], Counter(), [], 0
        for position, example in enumerate(examples):
            if self.held_out is not None and self.held_out(example):
                held_out += 1
                continue
            try:
                images.append(decode_image(example.get(self.image_column)))
                kept.append((position, example))
            except BadImageError as error:
                skipped[error.reason] += 1
                bad.append(f"{example_name(example, position, self.image_column)}: {error.reason} ({error})")
        pixels = self._process(images, kept, skipped, bad)
        return {
            "pixel_values": pixels,
            "labels": _labels(kept, self.label_column),
            # Each kept example's label or None, for writers that keep a label column with gaps (extract_codes.py).
            "label_values": [_label(e.get(self.label_column)) for _, e in kept] if self.label_column else None,
            **_accounting(examples, kept, skipped, bad, held_out),
        }

    def _process(self, images: list, kept: list, skipped: Counter, bad: list[str]) -> torch.Tensor:
        """One processor call for the batch; only if it fails, image by image to find and drop the culprit."""
        if images:
            try:
                return self.processor(images, return_tensors="pt").pixel_values
            except Exception:  # noqa: BLE001 - isolated below
                pass
        good = []
        for index in reversed(range(len(images))):
            try:
                good.append(self.processor(images[index], return_tensors="pt").pixel_values)
            except Exception as error:  # noqa: BLE001 - one odd image must not end the epoch
                skipped["unprocessable"] += 1
                position, example = kept[index]
                name = example_name(example, position, self.image_column)
                bad.append(f"{name}: unprocessable ({type(error).__name__}: {error})")
                del kept[index]
        if good:
            return torch.cat(good[::-1])
        size = self.processor.crop_size["height"]
        return torch.empty(0, self.processor.num_channels, size, size)


class CodeCollator:
    """Batches examples of a code dataset (`scripts/extract_codes.py`): `codes` `(B, h, w)` (an image model's maps)
    or `(B, T)` (an audio model's sequences), optional `condition` `(B, h', w')` (the level above, for a bottom
    prior) and `labels` `(B,)`, plus the accounting keys of this module's docstring.

    A row is skipped as `malformed` when its codes are missing, not a 1-D or 2-D integer array, or not of the expected
    shape (`code_shape` / `condition_shape`, whose length says whether rows are sequences or maps; without them, the
    first good row's), as `out_of_range` when a code is outside `[0, num_embeddings)`, and as `no_label` when
    `label_column` is set and the row has no label.
    """

    def __init__(
        self,
        code_column: str,
        condition_column: str | None = None,
        label_column: str | None = None,
        *,
        code_shape: tuple[int, ...] | None = None,
        condition_shape: tuple[int, ...] | None = None,
        num_embeddings: int | None = None,
        condition_num_embeddings: int | None = None,
        held_out: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        self.code_column = code_column
        self.condition_column = condition_column
        self.label_column = label_column
        self.shapes = {code_column: code_shape, condition_column: condition_shape}
        self.sizes = {code_column: num_embeddings, condition_column: condition_num_embeddings}
        self.held_out = held_out

    def _codes(self, example: dict[str, Any], column: str, shape: tuple | None) -> np.ndarray:
        try:
            codes = np.asarray(example.get(column))
        except ValueError as error:  # ragged rows
            raise BadImageError("malformed", f"{column}: {error}") from error
        dims_ok = codes.ndim in (1, 2) if shape is None else codes.ndim == len(shape)
        if not dims_ok or codes.dtype.kind not in "iu" or (shape is not None and codes.shape != tuple(shape)):
            found = f"{codes.dtype} {codes.shape}" if codes.dtype != object else type(example.get(column)).__name__
            expected = f"{tuple(shape)}" if shape is not None else "a 1-D or 2-D integer array"
            raise BadImageError("malformed", f"{column}: {found}, expected {expected}")
        size = self.sizes.get(column)
        if codes.size and (codes.min() < 0 or (size is not None and codes.max() >= size)):
            raise BadImageError("out_of_range", f"{column}: codes in [{codes.min()}, {codes.max()}], not [0, {size})")
        return codes

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        columns = [c for c in (self.code_column, self.condition_column) if c]
        shapes = dict(self.shapes)
        arrays: dict[str, list[np.ndarray]] = {column: [] for column in columns}
        kept, skipped, bad, held_out = [], Counter(), [], 0
        for position, example in enumerate(examples):
            if self.held_out is not None and self.held_out(example):
                held_out += 1
                continue
            try:
                row = {column: self._codes(example, column, shapes.get(column)) for column in columns}
                if self.label_column and _label(example.get(self.label_column)) is None:
                    raise BadImageError("no_label", f"{self.label_column}: {example.get(self.label_column)!r}")
            except BadImageError as error:
                skipped[error.reason] += 1
                bad.append(f"{example_name(example, position, None)}: {error.reason} ({error})")
                continue
            for column in columns:
                shapes[column] = shapes.get(column) or row[column].shape  # the first good row sets the shape
                arrays[column].append(row[column])
            kept.append((position, example))

        def stack(column: str) -> torch.Tensor:
            if not arrays[column]:
                return torch.empty(0, *(shapes.get(column) or (0, 0)), dtype=torch.long)
            return torch.as_tensor(np.stack(arrays[column]), dtype=torch.long)

        return {
            "codes": stack(self.code_column),
            "condition": stack(self.condition_column) if self.condition_column else None,
            "labels": _labels(kept, self.label_column),
            **_accounting(examples, kept, skipped, bad, held_out),
        }
