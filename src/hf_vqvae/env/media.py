"""What people look at: rollouts as animated GIFs (real frames beside generated ones) and frame grids."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from ..data.vizdoom import tensor_to_frames


def to_pil_frames(pixels: torch.Tensor, scale: int = 1) -> list[Image.Image]:
    """Frames `(T, C, H, W)` in [-1, 1] -> `T` RGB PIL images, each enlarged `scale` times (nearest neighbour)."""
    images = [Image.fromarray(frame) for frame in tensor_to_frames(pixels)]
    if scale != 1:
        images = [
            image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST) for image in images
        ]
    return images


def gif_bytes(frames: list[Image.Image], duration_ms: int = 200) -> bytes:
    """An animated GIF, looping forever, of PIL `frames`."""
    if not frames:
        raise ValueError("an animated GIF needs at least one frame")
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=duration_ms, loop=0)
    return buffer.getvalue()


def rollout_gif(
    real: torch.Tensor,
    predicted: torch.Tensor,
    path: str | Path,
    action_names: list[str] | None = None,
    actions: torch.Tensor | None = None,
    scale: int = 2,
    duration_ms: int = 250,
) -> Path:
    """Writes an animated GIF of rollouts: for each step, one column per rollout with the real frame above the
    generated one (and the action taken before the step written under them).

    Args:
        real, predicted: `(R, T, C, H, W)` in [-1, 1].
        actions: `(R, T)` ids (the action leading to each frame), named through `action_names`.
    """
    rollouts, steps = real.shape[:2]
    height, width = real.shape[-2] * scale, real.shape[-1] * scale
    caption = 12 if actions is not None else 0
    frames = []
    for step in range(steps):
        canvas = Image.new("RGB", (rollouts * (width + 4), 2 * height + 4 + caption), "black")
        draw = ImageDraw.Draw(canvas)
        for r in range(rollouts):
            top, bottom = to_pil_frames(torch.stack([real[r, step], predicted[r, step]]), scale)
            canvas.paste(top, (r * (width + 4), 0))
            canvas.paste(bottom, (r * (width + 4), height + 4))
            if actions is not None:
                action = int(actions[r, step])
                name = action_names[action] if action_names else str(action)
                draw.text((r * (width + 4) + 2, 2 * height + 4), f"{step + 1}: {name}", fill="white")
        frames.append(canvas)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gif_bytes(frames, duration_ms))
    return path


def frame_grid(pixels: torch.Tensor, path: str | Path, columns: int = 8, scale: int = 1) -> Path:
    """A PNG grid of frames `(N, C, H, W)` in [-1, 1]."""
    images = to_pil_frames(pixels, scale)
    rows = -(-len(images) // columns)
    width, height = images[0].size
    grid = Image.new("RGB", (columns * width, rows * height), "black")
    for index, image in enumerate(images):
        grid.paste(image, ((index % columns) * width, (index // columns) * height))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
    return path


def gif_frame_count(data: bytes) -> int:
    """How many frames an animated GIF holds (for checks)."""
    with Image.open(io.BytesIO(data)) as image:
        return getattr(image, "n_frames", 1)


__all__ = ["frame_grid", "gif_bytes", "gif_frame_count", "rollout_gif", "to_pil_frames"]
