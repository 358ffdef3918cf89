"""`video-prediction`: frames and actions in, generated frames out, from an action-conditioned latent video model
([`VQVideoModel`]). Written to be copied into Hub repos and loaded with
`pipeline("video-prediction", model=repo_id, trust_remote_code=True)` where hf_vqvae is not installed: this file
imports only transformers, torch, numpy and PIL (no `hf_vqvae`, no relative imports) and reads the model by duck
typing (`generate`, `config.image_size`, `config.id2label`; the model reads its own `config.context_frames`).
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import Pipeline
from transformers.image_utils import load_image

OUTPUT_TYPES = ("pil", "gif", "np", "pt")


class VQVideoPipeline(Pipeline):
    """Continues a first-person video under given actions, generating entirely in latent space.

    Example:

    ```python
    >>> from transformers import pipeline
    >>> predict = pipeline("video-prediction", model="org/vizdoom-video", trust_remote_code=True)
    >>> frames = predict("first_frame.png", actions=["TURN_LEFT"] * 8, seed=0)  # doctest: +SKIP
    >>> gif = predict("first_frame.png", actions=[2, 2, 2, 0], output_type="gif")  # doctest: +SKIP
    ```

    Call args:
        frames: the context frames, oldest first: a PIL image, path, URL, uint8 array `(H, W, 3)`, or a list of
            them. The rollout continues from the last N, N being the model's `config.context_frames` (1 for a
            first-order model), so give at least N. Frames of another size are resized to the model's.
        actions (list of `int` or `str`): one action per frame to generate, ids or names from the config's
            `id2label`.
        seed (`int`, *optional*): seeds the sampler; the same seed gives the same frames.
        temperature (`float`, defaults to 1.0) and top_k (`int`, *optional*): as in the model's `generate`;
            `top_k=1` is greedy decoding.
        guidance_scale (`float`, *optional*): classifier-free guidance on the action, as in the model's `generate`:
            above 1 the view follows the actions more strongly; `1.0` turns it off. Defaults to the model's
            `config.guidance_scale`.
        output_type (`str`, defaults to `"pil"`): `"pil"` (a list of PIL images), `"gif"` (the bytes of an
            animated GIF, the last context frame first), `"np"` (uint8 `(T, H, W, 3)`) or `"pt"` (`(T, 3, H, W)` in
            [-1, 1]).
        duration_ms (`int`, defaults to 200): time per GIF frame.
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __call__(self, frames, actions=None, **kwargs):
        if actions is None:
            raise ValueError("video-prediction needs `actions`: one action (id or name) per frame to generate")
        # One video per call: the frames are the context of that one video, not a batch of inputs.
        return super().__call__({"frames": frames, "actions": actions}, **kwargs)

    def _sanitize_parameters(
        self,
        seed: int | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        guidance_scale: float | None = None,
        output_type: str | None = None,
        duration_ms: int | None = None,
        **kwargs,
    ):
        given = (("temperature", temperature), ("top_k", top_k), ("guidance_scale", guidance_scale))
        forward = {key: value for key, value in given if value is not None}
        postprocess = {}
        if output_type is not None:
            if output_type not in OUTPUT_TYPES:
                raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
            postprocess["output_type"] = output_type
        if duration_ms is not None:
            postprocess["duration_ms"] = int(duration_ms)
        return {"seed": seed}, forward, postprocess

    def _frame_tensor(self, frame: Any) -> torch.Tensor:
        if isinstance(frame, os.PathLike):
            frame = os.fspath(frame)
        if isinstance(frame, str):
            frame = load_image(frame)
        if isinstance(frame, np.ndarray):
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
                raise ValueError(f"array frames must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
            frame = Image.fromarray(frame)
        if not isinstance(frame, Image.Image):
            raise ValueError(
                f"each frame must be a PIL image, a path, a URL or a uint8 (H, W, 3) array, got {type(frame).__name__}"
            )
        size = self.model.config.image_size
        frame = frame.convert("RGB")
        if frame.size != (size, size):
            # As the training frames were made: the whole view squeezed to a square (no crop).
            frame = frame.resize((size, size), Image.Resampling.BILINEAR)
        array = torch.from_numpy(np.asarray(frame).copy()).permute(2, 0, 1).float()
        return array.div(127.5).sub(1.0)

    def preprocess(self, inputs: dict[str, Any], seed: int | None = None) -> dict[str, Any]:
        frames = inputs["frames"]
        frames = list(frames) if isinstance(frames, (list, tuple)) else [frames]
        if not frames:
            raise ValueError("video-prediction needs at least one context frame")
        actions = inputs["actions"]
        actions = list(actions) if isinstance(actions, (list, tuple, np.ndarray, torch.Tensor)) else [actions]
        if not actions:
            raise ValueError("`actions` is empty: give one action per frame to generate")
        generator = torch.Generator(device=self.device)
        if seed is not None:
            generator.manual_seed(int(seed))
        else:
            generator.seed()
        context = torch.stack([self._frame_tensor(frame) for frame in frames]).unsqueeze(0)
        actions = [a if isinstance(a, str) else int(a) for a in actions]
        return {"pixel_values": context, "actions": [actions], "generator": generator}

    def _forward(
        self,
        model_inputs: dict[str, Any],
        temperature: float = 1.0,
        top_k: int | None = None,
        guidance_scale: float | None = None,
    ):
        pixel_values = model_inputs["pixel_values"].to(self.device, self.model.dtype)
        frames = self.model.generate(
            pixel_values,
            model_inputs["actions"],
            temperature=temperature,
            top_k=top_k,
            generator=model_inputs["generator"],
            guidance_scale=guidance_scale,
        )
        return {"frames": frames[0], "context": pixel_values[0, -1]}

    def postprocess(self, model_outputs: dict[str, Any], output_type: str = "pil", duration_ms: int = 200):
        frames = model_outputs["frames"].float().clamp(-1, 1).cpu()
        if output_type == "pt":
            return frames
        arrays = frames.add(1).mul(127.5).round().byte().permute(0, 2, 3, 1).numpy()
        if output_type == "np":
            return arrays
        images = [Image.fromarray(array) for array in arrays]
        if output_type == "pil":
            return images
        context = model_outputs["context"].float().clamp(-1, 1).cpu().add(1).mul(127.5).round().byte()
        gif_frames = [Image.fromarray(context.permute(1, 2, 0).numpy()), *images]
        buffer = io.BytesIO()
        gif_frames[0].save(
            buffer, format="GIF", save_all=True, append_images=gif_frames[1:], duration=duration_ms, loop=0
        )
        return buffer.getvalue()


__all__ = ["VQVideoPipeline"]
