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
* **Speaker identity** of converted speech: `SpeakerClassifier`, a multinomial logistic regression on the mean and
  standard deviation over time of 40 log-mel bands, trained on real recordings only (never on model outputs);
  `conversion_scores` reads its answers on reconstructions and on conversions to every other speaker. Decoded audio
  has a channel of its own (the WaveNet's noise floor and spectral tilt), which shifts every clip's features the
  same way and can push them all into one class; `predict_proba(..., standardize_on_inputs=True)` removes that
  shift by standardising the features with the statistics of the (unlabelled) set being classified, the way
  speaker recognition normalises each recording channel.
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


def mel_filterbank(num_bands: int, fft_size: int, sampling_rate: int) -> torch.Tensor:
    """`(num_bands, fft_size // 2 + 1)` triangular filters evenly spaced on the mel scale
    (`mel = 2595 log10(1 + f / 700)`) from 0 Hz to Nyquist, each peaking at 1."""
    to_mel = lambda hz: 2595.0 * math.log10(1.0 + hz / 700.0)  # noqa: E731
    edges_mel = torch.linspace(0.0, to_mel(sampling_rate / 2), num_bands + 2, dtype=torch.float64)
    edges = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
    bins = torch.linspace(0.0, sampling_rate / 2, fft_size // 2 + 1, dtype=torch.float64)
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising, falling = (bins - low) / (centre - low), (high - bins) / (high - centre)
    return torch.minimum(rising, falling).clamp_min(0.0).float()


def log_mel_spectrogram(
    waveform: torch.Tensor, sampling_rate: int = 16000, num_bands: int = 40, fft_size: int = 512
) -> torch.Tensor:
    """`(T,)` or `(B, T)` -> `(..., num_bands, frames)` natural-log mel energies (25 ms-ish windows, hop a quarter)."""
    window = torch.hann_window(fft_size, device=waveform.device)
    power = torch.stft(waveform.float(), fft_size, fft_size // 4, window=window, return_complex=True).abs() ** 2
    bank = mel_filterbank(num_bands, fft_size, sampling_rate).to(waveform.device)
    return torch.log(torch.einsum("mf,...ft->...mt", bank, power) + 1e-8)


class SpeakerClassifier:
    """Who speaks in a clip: multinomial logistic regression over per-clip statistics of log-mel spectra.

    Deliberately simple (no neural embedding to overfit on a few minutes of audio) and trained on real recordings
    only, so that in converted audio it measures whether the target voice's spectral envelope came through. The
    loss weighs each speaker by the inverse of its share of the clips, so that the speaker with the most audio does
    not become the answer for everything unfamiliar.
    """

    def __init__(self, num_speakers: int, sampling_rate: int = 16000) -> None:
        self.num_speakers, self.sampling_rate = num_speakers, sampling_rate
        self.linear = torch.nn.Linear(80, num_speakers)
        self.mean = self.std = None

    def features(self, clips: Sequence[torch.Tensor]) -> torch.Tensor:
        """`(N, 80)`: each clip's mean and standard deviation over time of 40 log-mel bands."""
        rows = []
        for clip in clips:
            mel = log_mel_spectrogram(torch.as_tensor(clip).float().flatten(), self.sampling_rate)
            rows.append(torch.cat([mel.mean(-1), mel.std(-1)]))
        return torch.stack(rows)

    def fit(self, clips: Sequence[torch.Tensor], labels: Sequence[int], steps: int = 300) -> SpeakerClassifier:
        features = self.features(clips)
        self.mean, self.std = _statistics(features)
        inputs, targets = (features - self.mean) / self.std, torch.as_tensor(list(labels), dtype=torch.long)
        weights = balanced_class_weights(targets, self.num_speakers)
        optimizer = torch.optim.Adam(self.linear.parameters(), lr=0.05, weight_decay=1e-3)
        with torch.enable_grad():
            for _ in range(steps):
                loss = torch.nn.functional.cross_entropy(self.linear(inputs), targets, weight=weights)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return self

    @torch.no_grad()
    def predict_proba(self, clips: Sequence[torch.Tensor], standardize_on_inputs: bool = False) -> torch.Tensor:
        """`(N, num_speakers)` speaker probabilities of `clips`.

        `standardize_on_inputs=True` standardises the features with the mean and standard deviation of these clips
        instead of the real training clips': a channel normalisation for audio from another source (decoded
        speech). Use it on a set that holds every speaker about equally (e.g. each source decoded as every
        speaker), since the set's own mean stands in for the real clips' mean; it uses no labels.
        """
        if self.mean is None:
            raise RuntimeError("SpeakerClassifier.fit first")
        features = self.features(clips)
        if standardize_on_inputs:
            if len(features) < 2:
                raise ValueError("standardize_on_inputs needs at least 2 clips to take statistics from")
            mean, std = _statistics(features)
        else:
            mean, std = self.mean, self.std
        return torch.softmax(self.linear((features - mean) / std), dim=-1)

    def predict(self, clips: Sequence[torch.Tensor], standardize_on_inputs: bool = False) -> torch.Tensor:
        return self.predict_proba(clips, standardize_on_inputs).argmax(-1)


def balanced_class_weights(labels: torch.LongTensor, num_classes: int) -> torch.Tensor:
    """`(num_classes,)` loss weights that give every class present the same total weight: `N / (C n_c)` for the
    `n_c` examples of class c among `N`, with `C` the classes present; 0 for an absent class."""
    counts = torch.bincount(labels, minlength=num_classes).float()
    present = counts > 0
    return torch.where(present, counts.sum() / (counts.clamp_min(1) * present.sum()), 0.0)


def _statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return features.mean(0), features.std(0).clamp_min(1e-6)


def conversion_scores(probabilities: torch.Tensor, source_speakers: torch.Tensor) -> dict[str, float]:
    """How a speaker classifier hears reconstructions and voice conversions.

    Args:
        probabilities (`torch.Tensor` of shape `(S, N, S)`): the classifier's speaker probabilities for source
            clip n decoded with speaker id s, for every one of the S speakers; `s == source_speakers[n]` is the
            reconstruction, every other s a conversion to s.
        source_speakers (`torch.LongTensor` of shape `(N,)`): who speaks in each source clip.

    Returns:
        `reconstruction_accuracy` (the classifier names the source's speaker in its reconstruction),
        `conversion_target_accuracy` (it names the target in a conversion), `conversion_target_probability` (its
        mean probability of the target there), and `conversion_target_shift` with `conversion_target_shift_se`:
        the mean, over conversions, of p(target | conversion) - p(target | reconstruction of the same clip), and
        its standard error. The shift is what swapping the speaker id alone does: above 0, conversion moves the
        classifier's answer toward the target even while it cannot name the target outright.
    """
    speakers, clips = probabilities.shape[0], probabilities.shape[1]
    if probabilities.shape != (speakers, clips, speakers) or source_speakers.shape != (clips,):
        raise ValueError(
            f"probabilities must be (S, N, S) and source_speakers (N,), got {tuple(probabilities.shape)} and "
            f"{tuple(source_speakers.shape)}"
        )
    clip = torch.arange(clips)
    reconstruction = probabilities[source_speakers, clip]  # (N, S)
    hits, shifts, target_probabilities = [], [], []
    for target in range(speakers):
        converted = source_speakers != target
        chosen = probabilities[target, converted]  # (M, S): the clips of other speakers, decoded as `target`
        hits.append(chosen.argmax(-1) == target)
        target_probabilities.append(chosen[:, target])
        shifts.append(chosen[:, target] - reconstruction[converted, target])
    shift = torch.cat(shifts).double()
    return {
        "reconstruction_accuracy": float((reconstruction.argmax(-1) == source_speakers).double().mean()),
        "conversion_target_accuracy": float(torch.cat(hits).double().mean()),
        "conversion_target_probability": float(torch.cat(target_probabilities).double().mean()),
        "conversion_target_shift": float(shift.mean()),
        "conversion_target_shift_se": float(shift.std() / math.sqrt(len(shift))) if len(shift) > 1 else float("nan"),
    }


def code_bits_per_second(num_embeddings: int, latent_rate: float) -> float:
    """Bit rate of the codes stored as fixed-length indices: `log2(K)` bits per latent frame."""
    return math.log2(num_embeddings) * latent_rate


__all__ = [
    "SpeakerClassifier",
    "code_bits_per_second",
    "conversion_scores",
    "log_mel_spectrogram",
    "mel_filterbank",
    "mu_law_histogram",
    "multi_resolution_stft_distance",
    "stoi",
    "unigram_nll",
]
