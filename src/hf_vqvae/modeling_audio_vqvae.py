"""The VQ-VAE paper's speech model (van den Oord, Vinyals, Kavukcuoglu 2017, section 4.3).

Waveform `(B, T)` at 16 kHz in [-1, 1] -> 6 strided 1-D convolutions (stride 2, window 4) and residual blocks (the
package's shared encoder, `layers.Encoder` with `spatial_dims=1`) -> 1-wide conv to D -> `VectorQuantizer` ->
codes `(B, T / 64)` -> a conditioning stack at latent rate -> a WaveNet (`wavenet.WaveNet`) conditioned on those
features (local) and on a learned speaker embedding (global), predicting each mu-law sample from the previous ones.

The loss is the paper's: `-log p(x | z_q)` (cross-entropy of the mu-law classes, mean nats per sample) plus the
quantizer's commitment (and, without EMA, codebook) loss. Decoding is ancestral sampling from the WaveNet (Fast
WaveNet queues); decoding codes with another speaker's id is voice conversion.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_audio_vqvae import AudioVQVAEConfig
from .layers import Encoder, ResidualStack, conv, init_conv_weights
from .modeling_utils import OneLevelOutput, StrictLoadingMixin
from .quantizer import VectorQuantizer
from .wavenet import WaveNet, mu_law_decode, mu_law_encode


@dataclass
class AudioVQVAEOutput(OneLevelOutput, ModelOutput):
    """
    Output of [`AudioVQVAEModel.forward`].

    Args:
        loss (`torch.FloatTensor` of shape `()`): `nll + commitment_cost * commitment_loss + codebook_loss`.
        nll (`torch.FloatTensor` of shape `()`): negative log-likelihood of the mu-law samples under the WaveNet,
            mean nats per (unmasked) sample.
        commitment_loss (`torch.FloatTensor` of shape `()`): `mean((z_e - sg[e])^2)`, before `commitment_cost`.
        codebook_loss (`torch.FloatTensor` of shape `()`): `mean((sg[z_e] - e)^2)`; zero with an EMA codebook.
        logits (`torch.FloatTensor` of shape `(B, mu_law_channels, T)`): the WaveNet's distribution of each sample
            given the previous ones, the codes and the speaker (teacher forcing).
        codes (`torch.LongTensor` of shape `(B, T / downsample_factor)`): chosen code indices.
        perplexity (`torch.FloatTensor` of shape `()`): perplexity of this batch's code histogram.
        codebook_usage (`torch.FloatTensor` of shape `()`): fraction of codes used over the last `usage_window`
            training steps.
    """

    loss: torch.FloatTensor | None = None
    nll: torch.FloatTensor | None = None
    commitment_loss: torch.FloatTensor | None = None
    codebook_loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    codes: torch.LongTensor | None = None
    perplexity: torch.FloatTensor | None = None
    codebook_usage: torch.FloatTensor | None = None


class AudioVQVAEPreTrainedModel(StrictLoadingMixin, PreTrainedModel):
    config_class = AudioVQVAEConfig
    base_model_prefix = "audio_vqvae"
    main_input_name = "input_values"
    supports_gradient_checkpointing = True
    _no_split_modules = ["ResidualBlock", "WaveNetLayer"]

    def _init_weights(self, module: nn.Module) -> None:
        # PyTorch's conv init (transformers' N(0, 0.02) starves deep conv stacks), unit-variance speaker vectors
        # (they feed a projection initialised for unit-variance inputs) unless a module asks for less (the WaveNet's
        # input table), and the quantizer's own state.
        init_conv_weights(module)
        if isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=getattr(module, "init_std", 1.0))
        if isinstance(module, VectorQuantizer):
            module.reset_parameters()


class AudioVQVAEModel(AudioVQVAEPreTrainedModel):
    """Encoder -> quantizer -> speaker-conditioned WaveNet, over 16 kHz waveforms.

    Example:

    ```python
    >>> import torch
    >>> from hf_vqvae import AudioVQVAEConfig, AudioVQVAEModel
    >>> model = AudioVQVAEModel(AudioVQVAEConfig(wavenet_num_layers=4, wavenet_dilation_cycle=4)).eval()
    >>> waveform = torch.zeros(1, 1024)  # (B, T), T a multiple of 64
    >>> out = model(input_values=waveform, speaker_ids=torch.tensor([0]))
    >>> out.codes.shape, out.logits.shape
    (torch.Size([1, 16]), torch.Size([1, 256, 1024]))
    >>> converted = model.decode(out.codes, speaker_ids=torch.tensor([3]))  # voice conversion: (1, 1024) waveform
    ```
    """

    def __init__(self, config: AudioVQVAEConfig) -> None:
        super().__init__(config)
        self.encoder = Encoder(
            in_channels=1,
            hidden_channels=config.hidden_channels,
            residual_channels=config.residual_channels,
            num_residual_blocks=config.num_residual_blocks,
            downsample_factor=config.downsample_factor,
            spatial_dims=1,
        )
        self.pre_quantization = conv(1, config.hidden_channels, config.embedding_dim, kernel_size=1)
        self.quantizer = VectorQuantizer.from_config(config)
        self.condition = nn.Sequential(
            conv(1, config.embedding_dim, config.condition_channels, kernel_size=3, padding=1),
            ResidualStack(
                config.condition_channels, config.condition_channels // 2, config.condition_residual_blocks, 1
            ),
        )
        self.speaker_embedding = (
            nn.Embedding(config.num_speakers, config.speaker_embedding_dim) if config.num_speakers else None
        )
        self.decoder = WaveNet(
            num_classes=config.mu_law_channels,
            residual_channels=config.wavenet_residual_channels,
            gate_channels=config.wavenet_gate_channels,
            skip_channels=config.wavenet_skip_channels,
            kernel_size=config.wavenet_kernel_size,
            num_layers=config.wavenet_num_layers,
            dilation_cycle=config.wavenet_dilation_cycle,
            local_channels=config.condition_channels,
            global_channels=config.speaker_embedding_dim if config.num_speakers else 0,
            upsample_factor=config.downsample_factor,
        )
        self.post_init()

    # --- input checks ---------------------------------------------------------------------------------------------

    def _waveform(self, input_values: torch.Tensor) -> torch.Tensor:
        if input_values.dim() == 3 and input_values.shape[1] == 1:
            input_values = input_values[:, 0]
        if input_values.dim() != 2:
            raise ValueError(
                f"input_values must be a batch of mono waveforms (B, T), got shape {tuple(input_values.shape)} "
                "(VQVAEAudioFeatureExtractor mixes to mono and batches)"
            )
        if not input_values.is_floating_point():
            raise ValueError(f"input_values must be floats in [-1, 1], got dtype {input_values.dtype}")
        factor = self.config.downsample_factor
        if input_values.shape[-1] == 0 or input_values.shape[-1] % factor:
            raise ValueError(
                f"input_values length {input_values.shape[-1]} must be a positive multiple of downsample_factor "
                f"({factor}); VQVAEAudioFeatureExtractor pads to one"
            )
        return input_values

    def _speakers(self, speaker_ids: torch.Tensor | int | None, batch: int) -> torch.Tensor | None:
        if self.speaker_embedding is None:
            return None
        if speaker_ids is None:
            names = self.config.speaker_names or list(range(self.config.num_speakers))
            raise ValueError(f"this model is speaker-conditioned: pass speaker_ids (B,), one of {names} per example")
        speaker_ids = torch.as_tensor(speaker_ids, device=self.device).long().reshape(-1)
        if speaker_ids.numel() == 1 and batch > 1:
            speaker_ids = speaker_ids.expand(batch)
        if speaker_ids.shape != (batch,):
            raise ValueError(f"speaker_ids must have shape ({batch},), got {tuple(speaker_ids.shape)}")
        if speaker_ids.min() < 0 or speaker_ids.max() >= self.config.num_speakers:
            raise ValueError(f"speaker_ids must lie in [0, {self.config.num_speakers}), got {speaker_ids.tolist()}")
        return self.speaker_embedding(speaker_ids)

    # --- the model ------------------------------------------------------------------------------------------------

    def _latents(self, waveform: torch.Tensor) -> torch.Tensor:
        """`(B, T) -> (B, D, T / f)`: encoder output before quantisation."""
        return self.pre_quantization(self.encoder(waveform.unsqueeze(1)))

    def forward(
        self,
        input_values: torch.Tensor,
        speaker_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> AudioVQVAEOutput | tuple:
        """
        Args:
            input_values (`torch.FloatTensor` of shape `(B, T)`): 16 kHz mono waveforms in [-1, 1], `T` a multiple of
                `downsample_factor` (what [`VQVAEAudioFeatureExtractor`] returns).
            speaker_ids (`torch.LongTensor` of shape `(B,)`): who speaks (the decoder's global conditioning).
            attention_mask (`torch.Tensor` of shape `(B, T)`, *optional*): 1 on real samples; padded samples do not
                count in the likelihood.
        """
        waveform = self._waveform(input_values)
        speaker = self._speakers(speaker_ids, waveform.shape[0])
        quantized = self.quantizer(self._latents(waveform))
        targets = mu_law_encode(waveform, self.config.mu_law_channels)
        logits = self.decoder(targets, self.condition(quantized.quantized), speaker)
        # Over the channels-last layout the WaveNet computes in (the `(B, C, T)` logits are a view of it).
        channels_last = logits.transpose(1, 2).float()
        per_sample = F.cross_entropy(
            channels_last.reshape(-1, channels_last.shape[-1]), targets.reshape(-1), reduction="none"
        )
        per_sample = per_sample.view_as(targets)
        if attention_mask is not None:
            mask = attention_mask.to(per_sample.dtype)
            nll = (per_sample * mask).sum() / mask.sum().clamp_min(1.0)
        else:
            nll = per_sample.mean()
        output = AudioVQVAEOutput(
            loss=nll + quantized.loss,
            nll=nll,
            commitment_loss=quantized.commitment_loss,
            codebook_loss=quantized.codebook_loss,
            logits=logits,
            codes=quantized.codes,
            perplexity=quantized.perplexity,
            codebook_usage=quantized.usage,
        )
        return output if return_dict is not False else output.to_tuple()

    @torch.no_grad()
    def encode(self, input_values: torch.Tensor) -> torch.LongTensor:
        """Codes `(B, T / downsample_factor)` of waveforms `(B, T)`; leaves the codebook untouched."""
        return self.quantizer.encode(self._latents(self._waveform(input_values)))

    @torch.no_grad()
    def decode(
        self,
        codes: torch.LongTensor,
        speaker_ids: torch.LongTensor | int | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
        progress: bool = False,
    ) -> torch.FloatTensor:
        """Waveforms `(B, T)` in [-1, 1] sampled from the WaveNet given codes `(B, T / f)` and speakers `(B,)` (or
        one id for all). `use_cache=False` re-runs the network over the whole past at every sample (slow; the
        reference the Fast WaveNet path equals). Sampling is one sample per step, tens of times slower than real
        time on a CPU thread for the default sizes (benchmarks/bench_wavenet.py); a batch costs about what one clip
        does, so decode clips together."""
        if codes.dim() != 2:
            raise ValueError(
                f"codes must have shape (B, T / {self.config.downsample_factor}), got {tuple(codes.shape)}"
            )
        codes = codes.to(self.device)
        speaker = self._speakers(speaker_ids, codes.shape[0])
        local = self.condition(self.quantizer.embed(codes))
        classes = self.decoder.generate(
            local, speaker, temperature=temperature, generator=generator, use_cache=use_cache, progress=progress
        )
        return mu_law_decode(classes, self.config.mu_law_channels)

    @torch.no_grad()
    def convert_voice(
        self, input_values: torch.Tensor, target_speaker_ids: torch.LongTensor | int, **decode_kwargs
    ) -> torch.FloatTensor:
        """The paper's speaker conversion: encode the source, decode its codes with the target speaker's id."""
        return self.decode(self.encode(input_values), target_speaker_ids, **decode_kwargs)


__all__ = ["AudioVQVAEModel", "AudioVQVAEOutput", "AudioVQVAEPreTrainedModel"]
