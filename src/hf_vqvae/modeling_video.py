"""Action-conditioned video generation in latent space (van den Oord et al. 2017, section 4.4), as ONE
`PreTrainedModel`: a VQ-VAE over frames and a dynamics prior that predicts each next frame's code map.

The dynamics prior is the package's [`PixelSNAILModel`], composed, not re-written: with N = `context_frames` it
models p(codes_{t+1} | codes_{t-N+1..t}, a_t) = prod_p p(code_p | codes before p, codes_{t-N+1..t}, a_t) in raster
order, reading the last N frames' code maps through its conditioning stack (non-causal residual blocks: each
position sees a neighbourhood of the previous frames around it, before and after it in raster order, wide enough
for the few codes a view shifts per step; the causal attention adds what earlier positions saw) and the action as
its class label (an embedding added everywhere, like a class). The N maps are embedded by one condition embedding
and stacked along channels, oldest first (`PixelSNAILConfig.num_condition_maps`), so the stack's first convolution
has weights of its own per frame and can read motion (what changed between the frames), not only the last view.
Training is teacher forcing on real episodes: every (N frames, the action after the last, the next frame) window of
a clip is one example. A rollout samples frame after frame, each with PixelSNAIL's cached sampling (one position of
work per step within a frame), sliding its own samples into the window of the next condition; only the VQ-VAE
decoder touches pixels.

With N = 1 (the default) the model is first-order in frames: the next frame depends on the last frame and the
action. A rollout starts from the last N of the given context frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_video import VQVideoConfig
from .modeling_pixelsnail import PixelSNAILModel
from .modeling_utils import ComposedPreTrainedMixin
from .modeling_vqvae import VQVAEModel


@dataclass
class VQVideoOutput(ModelOutput):
    """
    Output of [`VQVideoModel.forward`] (teacher forcing over clips).

    Args:
        loss (`torch.FloatTensor` of shape `()`): mean negative log-likelihood of the next frames' codes, in nats per
            code.
        logits (`torch.FloatTensor` of shape `(B, T + 1 - N, K, h, w)`): the dynamics prior's logits for frames
            N..T of each clip (N = `context_frames`) given the N frames before each and the action.
        bits_per_code (`torch.FloatTensor` of shape `()`): `loss / ln 2`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    bits_per_code: torch.FloatTensor | None = None


class VQVideoPreTrainedModel(ComposedPreTrainedMixin, PreTrainedModel):
    config_class = VQVideoConfig
    base_model_prefix = "vq_video"


class VQVideoModel(VQVideoPreTrainedModel):
    """A frame VQ-VAE (`vq_model`) and the action-conditioned dynamics prior over its code maps (`dynamics`).

    Example:

    ```python
    >>> import torch
    >>> from hf_vqvae import PixelSNAILConfig, VQVAEConfig, VQVideoConfig, VQVideoModel
    >>> vq = VQVAEConfig(image_size=16, hidden_channels=16, residual_channels=8, num_embeddings=32)
    >>> dynamics = PixelSNAILConfig(num_embeddings=32, latent_height=4, latent_width=4, hidden_channels=16,
    ...                             condition_num_embeddings=32, condition_height=4, condition_width=4, num_classes=3)
    >>> model = VQVideoModel(VQVideoConfig(vq_config=vq, dynamics_config=dynamics))
    >>> frames = torch.rand(2, 1, 3, 16, 16) * 2 - 1  # (B, N context frames, C, H, W)
    >>> model.generate(frames, actions=torch.tensor([[0, 1, 2], [2, 2, 2]])).shape  # 3 new frames each
    torch.Size([2, 3, 3, 16, 16])
    ```
    """

    def __init__(self, config: VQVideoConfig) -> None:
        super().__init__(config)
        self.vq_model = VQVAEModel(config.vq_config)
        self.dynamics = PixelSNAILModel(config.dynamics_config)
        self.post_init()

    @classmethod
    def from_parts(
        cls,
        vq_model: VQVAEModel,
        dynamics: PixelSNAILModel,
        action_names: Sequence[str] | None = None,
        teacher_forcing_noise: float = 0.0,
        guidance_scale: float | None = None,
    ) -> VQVideoModel:
        """Bundles a frame VQ-VAE and dynamics prior (copies of their weights and buffers, bitwise)."""
        id2label = dict(enumerate(action_names)) if action_names is not None else None
        config = VQVideoConfig(
            vq_config=vq_model.config.to_dict(),
            dynamics_config=dynamics.config.to_dict(),
            teacher_forcing_noise=teacher_forcing_noise,
            guidance_scale=guidance_scale,
            id2label=id2label,
            label2id={name: index for index, name in id2label.items()} if id2label else None,
        )
        model = cls(config).to(device=vq_model.device, dtype=vq_model.dtype)
        model.vq_model.load_state_dict(vq_model.state_dict())
        model.dynamics.load_state_dict(dynamics.state_dict())
        return model.eval()

    # ------------------------------------------------------------------------------------------------ checks
    def _check_actions(self, actions, batch: int, steps: int | None = None) -> torch.LongTensor:
        """`actions` as a `(B, T)` LongTensor on the model's device; names are mapped through `label2id`."""
        if isinstance(actions, (list, tuple)):
            actions = [
                [self._action_id(a) for a in row] if isinstance(row, (list, tuple)) else self._action_id(row)
                for row in actions
            ]
        actions = torch.as_tensor(actions, device=self.device)
        if actions.dtype.is_floating_point or actions.dtype == torch.bool:
            raise ValueError(f"`actions` must be integer action ids (or action names), got a {actions.dtype} tensor")
        if actions.dim() == 1:
            actions = actions.unsqueeze(0).expand(batch, -1)
        if actions.dim() != 2 or actions.shape[0] != batch or (steps is not None and actions.shape[1] != steps):
            want = f"({batch}, {'T' if steps is None else steps})"
            raise ValueError(
                f"`actions` must have shape {want} (one action per clip and step), got {tuple(actions.shape)}"
            )
        num_actions = self.config.num_actions
        if actions.numel() and (int(actions.min()) < 0 or int(actions.max()) >= num_actions):
            raise ValueError(
                f"`actions` must lie in [0, {num_actions}) ({self._action_names()}), got values in "
                f"[{int(actions.min())}, {int(actions.max())}]"
            )
        return actions.long()

    def _action_names(self) -> str:
        names = [self.config.id2label.get(i, str(i)) for i in range(self.config.num_actions)]
        return ", ".join(f"{i}={name}" for i, name in enumerate(names))

    def _action_id(self, action) -> int:
        if isinstance(action, str):
            if action not in self.config.label2id:
                raise ValueError(f"unknown action {action!r}; this model knows {self._action_names()}")
            return int(self.config.label2id[action])
        return action

    def _check_context_length(self, given: int) -> None:
        needed = self.config.context_frames
        if given < needed:
            raise ValueError(
                f"this model predicts from the last {needed} frames (config.context_frames); got {given} context "
                f"frame(s): give at least {needed}, oldest first"
            )

    def _check_codes(self, codes: torch.Tensor, name: str) -> None:
        shape = tuple(self.config.latent_shape)
        if not isinstance(codes, torch.Tensor) or codes.dtype.is_floating_point or codes.dim() < 3:
            got = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
            raise ValueError(
                f"`{name}` must be a LongTensor of frame code maps (B, T, {shape[0]}, {shape[1]}), got {got}"
            )
        if tuple(codes.shape[-2:]) != shape:
            raise ValueError(f"`{name}` must hold {shape[0]}x{shape[1]} code maps, got {tuple(codes.shape)}")

    # ------------------------------------------------------------------------------------------ frames <-> codes
    @torch.no_grad()
    def encode(self, pixel_values: torch.FloatTensor) -> torch.LongTensor:
        """Code maps of frames `(..., C, H, W)` in [-1, 1] -> `(..., h, w)` (any leading axes, e.g. `(B, T)`)."""
        leading = pixel_values.shape[:-3]
        codes = self.vq_model.encode(pixel_values.reshape(-1, *pixel_values.shape[-3:]).to(self.device))
        return codes.view(*leading, *codes.shape[1:])

    @torch.no_grad()
    def decode(self, codes: torch.LongTensor) -> torch.FloatTensor:
        """Frames in [-1, 1] (clamped) from code maps `(..., h, w)` -> `(..., C, H, W)`."""
        leading = codes.shape[:-2]
        pixels = self.vq_model.decode(codes.reshape(-1, *codes.shape[-2:]).to(self.device)).clamp(-1, 1)
        return pixels.view(*leading, *pixels.shape[1:])

    # ------------------------------------------------------------------------------------------ teacher forcing
    def forward(
        self, codes: torch.LongTensor, actions: torch.LongTensor, return_dict: bool | None = None
    ) -> VQVideoOutput | tuple:
        """Teacher forcing over clips of real frames.

        Args:
            codes (`torch.LongTensor` of shape `(B, T + 1, h, w)`): the code maps of T + 1 consecutive frames,
                T + 1 > N = `config.context_frames`.
            actions (`torch.LongTensor` of shape `(B, T)` or longer): `actions[:, t]` leads from frame t to frame
                t + 1 (a clip's last action, if given, is not used; nor are the first N - 1, which lead to frames
                that are only read).

        Returns:
            [`VQVideoOutput`]: the NLL of frames N..T given the N frames before each and the action after them.
        """
        self._check_codes(codes, "codes")
        context = self.config.context_frames
        if codes.dim() != 4 or codes.shape[1] <= context:
            raise ValueError(
                f"`codes` must be (B, T + 1, h, w) with T + 1 > {context} (clips of {context + 1} frames or more: "
                f"{context} context frame(s) and one to predict), got {tuple(codes.shape)}"
            )
        batch, steps = codes.shape[0], codes.shape[1] - context
        actions = self._check_actions(actions, batch)
        if actions.shape[1] < codes.shape[1] - 1:
            raise ValueError(
                f"`actions` must hold at least {codes.shape[1] - 1} actions per clip (T), got {actions.shape[1]}"
            )
        if context == 1:
            previous = codes[:, :-1].reshape(-1, *codes.shape[2:])
        else:  # the window of N frames before each target, (B * steps, N, h, w), oldest first
            previous = codes[:, :-1].unfold(1, context, 1).movedim(-1, 2).reshape(-1, context, *codes.shape[2:])
        target = codes[:, context:].reshape(-1, *codes.shape[2:])
        labels = actions[:, context - 1 : codes.shape[1] - 1].reshape(-1)
        inputs = self._corrupt(target) if self.training and self.config.teacher_forcing_noise > 0 else target
        output = self.dynamics(inputs, condition=previous, class_labels=labels, labels=target)
        logits = output.logits.reshape(batch, steps, *output.logits.shape[1:]).contiguous()
        result = VQVideoOutput(loss=output.loss, logits=logits, bits_per_code=output.bits_per_code)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return result if return_dict else result.to_tuple()

    def _corrupt(self, codes: torch.LongTensor) -> torch.LongTensor:
        """`codes` with a `teacher_forcing_noise` share replaced by uniform codes (see the config)."""
        replace = torch.rand(codes.shape, device=codes.device) < self.config.teacher_forcing_noise
        noise = torch.randint_like(codes, self.config.dynamics_config.num_embeddings)
        return torch.where(replace, noise, codes)

    # -------------------------------------------------------------------------------------------------- rollout
    @torch.no_grad()
    def predict_codes(
        self,
        context_codes: torch.LongTensor,
        actions: torch.LongTensor,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
        guidance_scale: float | None = None,
    ) -> torch.LongTensor:
        """Rolls the dynamics out in latent space. A model trained with `teacher_forcing_noise=1` never read the
        codes of the frame it predicts, so each frame is predicted in one forward, every position at once
        (`PixelSNAILModel.generate(parallel=True)`), as it was trained; any other samples position by position.

        Args:
            context_codes (`torch.LongTensor` of shape `(B, M, h, w)` or `(B, h, w)`): code maps of the given
                frames, oldest first, at least `config.context_frames` (N) of them; the rollout continues from the
                last N.
            actions (`torch.LongTensor` of shape `(B, T)`, or `(T,)` for every clip): the action after the last
                context frame, then after each generated frame.
            temperature, top_k, generator, use_cache: as in [`PixelSNAILModel.generate`]; `top_k=1` is greedy.
            guidance_scale (`float`, *optional*): classifier-free guidance on the action (see
                [`VQVideoConfig`]); None takes `config.guidance_scale`, and `1.0` is plain conditional sampling.

        Returns:
            `torch.LongTensor` of shape `(B, T, h, w)`: the code maps of the T generated frames.
        """
        if isinstance(context_codes, torch.Tensor) and context_codes.dim() == 3:
            context_codes = context_codes.unsqueeze(1)
        self._check_codes(context_codes, "context_codes")
        self._check_context_length(context_codes.shape[1])
        batch = context_codes.shape[0]
        actions = self._check_actions(actions, batch)
        window = context_codes[:, -self.config.context_frames :].to(self.device)
        if guidance_scale is None:
            guidance_scale = self.config.guidance_scale
        if guidance_scale == 1.0:  # plain conditional sampling, which needs no null class
            guidance_scale = None
        frames = []
        for step in range(actions.shape[1]):
            current = self.dynamics.generate(
                batch,
                condition=window[:, 0] if window.shape[1] == 1 else window,
                class_labels=actions[:, step].contiguous(),
                temperature=temperature,
                top_k=top_k,
                generator=generator,
                use_cache=use_cache,
                guidance_scale=guidance_scale,
                parallel=self.config.teacher_forcing_noise == 1.0,
            )
            frames.append(current)
            window = torch.cat([window[:, 1:], current.unsqueeze(1)], dim=1)
        return torch.stack(frames, dim=1)

    @torch.no_grad()
    def generate(
        self,
        pixel_values: torch.FloatTensor,
        actions,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
        return_codes: bool = False,
        guidance_scale: float | None = None,
    ) -> torch.FloatTensor | tuple[torch.FloatTensor, torch.LongTensor]:
        """Frames in, frames out: encodes the context frames, rolls the codes out under `actions`, decodes.

        Args:
            pixel_values (`torch.FloatTensor` of shape `(B, M, C, H, W)` or `(B, C, H, W)`): context frames in
                [-1, 1], oldest first, at least `config.context_frames` (N); the rollout continues from the last N.
            actions: `(B, T)` or `(T,)` action ids, or lists of action names (`config.id2label`).
            temperature, top_k, generator, use_cache, guidance_scale: as in [`~VQVideoModel.predict_codes`].

        Returns:
            frames `(B, T, C, H, W)` in [-1, 1], or `(frames, codes)` with `return_codes=True`.
        """
        if not isinstance(pixel_values, torch.Tensor) or pixel_values.dim() not in (4, 5):
            got = tuple(pixel_values.shape) if isinstance(pixel_values, torch.Tensor) else type(pixel_values).__name__
            raise ValueError(f"`pixel_values` must be context frames (B, N, C, H, W) or (B, C, H, W), got {got}")
        if pixel_values.dim() == 4:
            pixel_values = pixel_values.unsqueeze(1)
        self._check_context_length(pixel_values.shape[1])
        context = self.encode(pixel_values[:, -self.config.context_frames :])
        codes = self.predict_codes(
            context, actions, temperature, top_k, generator, use_cache=use_cache, guidance_scale=guidance_scale
        )
        frames = self.decode(codes)
        return (frames, codes) if return_codes else frames


__all__ = ["VQVideoModel", "VQVideoOutput", "VQVideoPreTrainedModel"]
