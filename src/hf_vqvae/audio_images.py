"""Pictures of audio: log-mel spectrograms as PIL images, and grids of them (rows: original, reconstruction,
conversion, ...), tiled by the package's `images.image_grid`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .audio_metrics import log_mel_spectrogram
from .images import image_grid

# A dark-to-bright ramp (black, purple, orange, pale yellow): quiet is dark, loud is bright.
_RAMP = np.array([[0, 0, 4], [80, 18, 123], [182, 54, 121], [251, 136, 97], [252, 253, 191]], dtype=np.float64)


def _colour(levels: np.ndarray) -> np.ndarray:
    """`levels` in [0, 1] -> RGB uint8 along `_RAMP`."""
    position = np.clip(levels, 0, 1) * (len(_RAMP) - 1)
    low = np.floor(position).astype(int).clip(0, len(_RAMP) - 2)
    fraction = (position - low)[..., None]
    return (_RAMP[low] * (1 - fraction) + _RAMP[low + 1] * fraction).astype(np.uint8)


def spectrogram_image(
    waveform: torch.Tensor | np.ndarray, sampling_rate: int = 16000, num_bands: int = 80, dynamic_range_db: float = 80
) -> Image.Image:
    """A `(T,)` waveform's log-mel spectrogram, low frequencies at the bottom, `dynamic_range_db` below its peak
    shown as black."""
    mel = log_mel_spectrogram(torch.as_tensor(waveform).float().flatten(), sampling_rate, num_bands, fft_size=1024)
    decibels = mel.numpy() * (10 / np.log(10))
    levels = (decibels - (decibels.max() - dynamic_range_db)) / dynamic_range_db
    return Image.fromarray(_colour(levels[::-1]))


def save_spectrogram_grid(
    rows: Sequence[Sequence[torch.Tensor | np.ndarray]], path: str | Path, sampling_rate: int = 16000
) -> Path:
    """One row per sequence of clips of equal length (e.g. originals, reconstructions, conversions), as a PNG."""
    images = [spectrogram_image(clip, sampling_rate) for row in rows for clip in row]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(images, columns=len(rows[0])).save(path)
    return path


__all__ = ["save_spectrogram_grid", "spectrogram_image"]
