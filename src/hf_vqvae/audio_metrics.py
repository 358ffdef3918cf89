"""Metrics of the audio VQ-VAE, all offline: the likelihood against the mu-law unigram baseline, a multi-resolution
STFT distance and STOI (pystoi) for reconstructions, and bits per second of the codes.

* The **unigram baseline** is the cross-entropy of the mu-law classes under their own empirical histogram: what the
  best model that ignores context (and the codes) achieves on that very data. A WaveNet below it has learned
  something from the past samples and the latents.
* The **multi-resolution STFT distance** (Yamamoto et al. 2020) averages, over FFT sizes 512, 1024 and 2048 (hop a
  quarter, Hann window), the spectral convergence `||S - S'||_F / ||S||_F` and the mean absolute difference of log
  magnitudes. It ignores phase, so it suits the paper's observation that reconstructions keep the content, not the
  exact waveform. 0 for identical signals.
* **STOI** (Taal et al. 2011) estimates intelligibility in [0, 1] (about 0.4 or below for noise) from 1/3-octave band
  envelopes at 10 kHz; pystoi resamples.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from .wavenet import MU_LAW_CHANNELS, mu_law_encode


def mu_law_histogram(
    waveforms: torch.Tensor, attention_mask: torch.Tensor | None = None, channels: int = MU_LAW_CHANNELS
) -> torch.Tensor:
    """Counts `(channels,)` of the mu-law classes of `waveforms` `(B, T)`, padded samples excluded."""
    classes = mu_law_encode(waveforms, channels).flatten()
    if attention_mask is not None:
        classes = classes[attention_mask.flatten().bool()]
    return torch.bincount(classes, minlength=channels).double()


def unigram_nll(counts: torch.Tensor) -> float:
    """Nats per sample of the best context-free model of the data `counts` describes: its entropy."""
    total = counts.sum()
    probabilities = counts[counts > 0] / total
    return float(-(probabilities * probabilities.log()).sum())


def _log_magnitudes(signal: torch.Tensor, fft_size: int) -> torch.Tensor:
    window = torch.hann_window(fft_size, device=signal.device)
    spectrum = torch.stft(signal, fft_size, hop_length=fft_size // 4, window=window, return_complex=True)
    return spectrum.abs().clamp_min(1e-7)


def multi_resolution_stft_distance(
    reference: torch.Tensor, estimate: torch.Tensor, fft_sizes: Sequence[int] = (512, 1024, 2048)
) -> float:
    """Mean over `fft_sizes` of spectral convergence plus mean |log S - log S'|, for `(T,)` or `(B, T)` signals."""
    if reference.shape != estimate.shape:
        raise ValueError(f"signals differ in shape: {tuple(reference.shape)} vs {tuple(estimate.shape)}")
    reference, estimate = (
        reference.float().reshape(-1, reference.shape[-1]),
        estimate.float().reshape(-1, estimate.shape[-1]),
    )
    total = 0.0
    for fft_size in fft_sizes:
        if reference.shape[-1] < fft_size:
            raise ValueError(f"signals of {reference.shape[-1]} samples are shorter than the FFT size {fft_size}")
        a, b = _log_magnitudes(reference, fft_size), _log_magnitudes(estimate, fft_size)
        convergence = torch.linalg.norm(a - b) / torch.linalg.norm(a)
        total += float(convergence) + float((a.log() - b.log()).abs().mean())
    return total / len(fft_sizes)


def stoi(reference: np.ndarray | torch.Tensor, estimate: np.ndarray | torch.Tensor, sampling_rate: int) -> float:
    """Short-time objective intelligibility of `estimate` against `reference` (1-D), or NaN with a warning when
    the reference has too little speech for pystoi's 30 frames (about 0.4 s)."""
    from pystoi import stoi as pystoi_stoi

    reference = np.asarray(reference.cpu() if isinstance(reference, torch.Tensor) else reference, dtype=np.float64)
    estimate = np.asarray(estimate.cpu() if isinstance(estimate, torch.Tensor) else estimate, dtype=np.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(pystoi_stoi(reference, estimate, sampling_rate, extended=False))
    if any("Not enough STFT frames" in str(w.message) for w in caught) or value != value:
        warnings.warn("STOI needs at least ~0.4 s of speech in the reference: not computed", stacklevel=2)
        return float("nan")
    return value


def code_bits_per_second(num_embeddings: int, latent_rate: float) -> float:
    """Bit rate of the codes stored as fixed-length indices: `log2(K)` bits per latent frame."""
    return math.log2(num_embeddings) * latent_rate


__all__ = ["code_bits_per_second", "mu_law_histogram", "multi_resolution_stft_distance", "stoi", "unigram_nll"]
