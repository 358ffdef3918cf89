"""Configuration of the audio VQ-VAE (van den Oord et al. 2017, section 4.3): the speech model."""

from __future__ import annotations

from transformers import PreTrainedConfig

from .config_validation import check_positive_int, check_power_of_two, check_quantizer_fields


class AudioVQVAEConfig(PreTrainedConfig):
    r"""
    Configuration of an [`AudioVQVAEModel`]: a 1-D VQ-VAE encoder over 16 kHz waveforms and a speaker-conditioned
    WaveNet decoder. Defaults follow the paper's speech model: 6 strided convolutions (stride 2, window 4) give
    latents 64 times shorter than the waveform (250 codes per second at 16 kHz), K = 512 codes of D = 64; the WaveNet
    has two cycles of dilations 1..512 (a receptive field of 2,047 samples, 128 ms) and models mu-law samples with a
    256-way softmax.

    Args:
        sampling_rate (`int`, defaults to 16000): the rate the model works at; the feature extractor resamples to it.
        hidden_channels (`int`, defaults to 128): width of the encoder.
        residual_channels (`int`, defaults to 64): width inside the encoder's residual blocks (their 3-wide conv).
        num_residual_blocks (`int`, defaults to 2): residual blocks after the encoder's strided convolutions.
        downsample_factor (`int`, defaults to 64): waveform samples per latent frame; a power of two, one stride-2
            convolution of window 4 per halving (64: the paper's 6).
        num_embeddings (`int`, defaults to 512): codebook size K.
        embedding_dim (`int`, defaults to 64): code vector size D.
        commitment_cost (`float`, defaults to 0.25): beta of the commitment loss.
        decay (`float`, defaults to 0.99): EMA decay of the codebook; 0 trains it with the codebook loss.
        epsilon (`float`, defaults to 1e-5): Laplace smoothing of the EMA counts.
        kmeans_init (`bool`, defaults to `True`): k-means initialisation of the codebook on the first batch.
        kmeans_iters (`int`, defaults to 10): Lloyd iterations of that k-means.
        dead_code_threshold (`float`, defaults to 1.0): restart codes whose smoothed count per step falls below
            this; 0 disables restarts.
        usage_window (`int`, defaults to 100): training steps over which codebook usage is reported.
        num_speakers (`int`, defaults to 6): speakers of the global conditioning (the speech dataset's six); 0 for
            a decoder without speaker conditioning.
        speaker_names (`list[str]`, *optional*): name of each speaker id, for cards and pipelines.
        speaker_embedding_dim (`int`, defaults to 64): size of the learned speaker embedding.
        condition_channels (`int`, defaults to 128): width of the conditioning stack that reads the quantised
            latents (at latent rate, non-causal: the decoder sees the whole utterance's codes) before the WaveNet.
        condition_residual_blocks (`int`, defaults to 2): residual blocks in that stack.
        wavenet_residual_channels (`int`, defaults to 64): WaveNet residual width.
        wavenet_gate_channels (`int`, defaults to 64): channels of each gated unit.
        wavenet_skip_channels (`int`, defaults to 128): WaveNet skip width (and the head's).
        wavenet_kernel_size (`int`, defaults to 2): taps of each dilated causal convolution.
        wavenet_num_layers (`int`, defaults to 20): gated residual layers.
        wavenet_dilation_cycle (`int`, defaults to 10): layers per cycle of doubling dilations.
        mu_law_channels (`int`, defaults to 256): mu-law levels of the output distribution (mu = levels - 1).
        segment_samples (`int`, defaults to 16384): length of training crops (1.024 s); a multiple of
            `downsample_factor`. Any multiple works in `forward`.

    Example:

    ```python
    >>> from hf_vqvae import AudioVQVAEConfig, AudioVQVAEModel
    >>> model = AudioVQVAEModel(AudioVQVAEConfig(wavenet_num_layers=10))
    ```
    """

    model_type = "audio_vqvae"

    sampling_rate: int = 16000
    hidden_channels: int = 128
    residual_channels: int = 64
    num_residual_blocks: int = 2
    downsample_factor: int = 64
    num_embeddings: int = 512
    embedding_dim: int = 64
    commitment_cost: float = 0.25
    decay: float = 0.99
    epsilon: float = 1e-5
    kmeans_init: bool = True
    kmeans_iters: int = 10
    dead_code_threshold: float = 1.0
    usage_window: int = 100
    num_speakers: int = 6
    speaker_names: list[str] | None = None
    speaker_embedding_dim: int = 64
    condition_channels: int = 128
    condition_residual_blocks: int = 2
    wavenet_residual_channels: int = 64
    wavenet_gate_channels: int = 64
    wavenet_skip_channels: int = 128
    wavenet_kernel_size: int = 2
    wavenet_num_layers: int = 20
    wavenet_dilation_cycle: int = 10
    mu_law_channels: int = 256
    segment_samples: int = 16384

    def __post_init__(self, **kwargs):
        for name in (
            "sampling_rate", "hidden_channels", "residual_channels", "speaker_embedding_dim", "condition_channels",
            "wavenet_residual_channels", "wavenet_gate_channels", "wavenet_skip_channels", "wavenet_kernel_size",
            "wavenet_num_layers", "wavenet_dilation_cycle", "segment_samples",
        ):  # fmt: skip
            check_positive_int(name, getattr(self, name))
        for name in ("num_residual_blocks", "condition_residual_blocks", "num_speakers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` must be an integer >= 0, got {value!r}")
        check_power_of_two("downsample_factor", self.downsample_factor, minimum=2)
        check_power_of_two("mu_law_channels", self.mu_law_channels, minimum=4)
        if self.segment_samples % self.downsample_factor:
            raise ValueError(
                f"`segment_samples` ({self.segment_samples}) must be a multiple of `downsample_factor` "
                f"({self.downsample_factor})"
            )
        if self.speaker_names is not None:
            self.speaker_names = [str(name) for name in self.speaker_names]
            if len(self.speaker_names) != self.num_speakers:
                raise ValueError(
                    f"`speaker_names` has {len(self.speaker_names)} names for `num_speakers` = {self.num_speakers}"
                )
        check_quantizer_fields(self)
        super().__post_init__(**kwargs)

    @property
    def latent_rate(self) -> float:
        """Latent frames (codes) per second."""
        return self.sampling_rate / self.downsample_factor

    @property
    def receptive_field(self) -> int:
        """Past samples a WaveNet output can depend on (besides the latents)."""
        cycle = [2**i for i in range(self.wavenet_dilation_cycle)]
        dilations = [cycle[i % len(cycle)] for i in range(self.wavenet_num_layers)]
        return (self.wavenet_kernel_size - 1) * sum(dilations) + 1


__all__ = ["AudioVQVAEConfig"]
