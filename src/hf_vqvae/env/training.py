"""Training the environment models on in-memory episodes: the frame VQ-VAE (stage 1), the code-map VQ-VAE
(stage 2), the prior over stage-2 codes and the action-conditioned dynamics prior (teacher forcing on real clips).

The episodes of a ViZDoom run fit in memory (7,000 frames of 84x84x3 are 150 MB as uint8), so batches are drawn
from tensors with a seeded generator instead of streaming: every stage is `fit(model, batches, steps)` with a batch
function of its own.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.vizdoom import Episode, frames_to_tensor

logger = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]


def fit(
    model: torch.nn.Module,
    batches: Callable[[torch.Generator], Batch],
    steps: int,
    learning_rate: float = 1e-3,
    seed: int = 0,
    desc: str = "train",
    log_every: int = 50,
    max_grad_norm: float | None = 1.0,
) -> dict[str, float]:
    """`steps` Adam steps of `model(**batches(generator)).loss`, with a cosine learning-rate decay to a tenth and
    gradient clipping; shows a progress bar. Returns the first and last loss (means over `log_every` steps) and the
    seconds taken."""
    if steps <= 0:
        return {"steps": 0}
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(step / steps, 1.0)))
    )
    model.train()
    losses: list[float] = []
    start = time.perf_counter()
    with tqdm(range(steps), desc=desc, unit="step", mininterval=5) as progress:
        for step in progress:
            batch = batches(generator)
            loss = model(**batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
            if (step + 1) % log_every == 0 or step + 1 == steps:
                recent = float(np.mean(losses[-log_every:]))
                progress.set_postfix(loss=f"{recent:.4f}")
                logger.info("%s step %d/%d loss %.4f", desc, step + 1, steps, recent)
    model.eval()
    window = max(1, min(log_every, len(losses) // 4))
    return {
        "steps": steps,
        "first_loss": float(np.mean(losses[:window])),
        "last_loss": float(np.mean(losses[-window:])),
        "seconds": round(time.perf_counter() - start, 1),
    }


# ------------------------------------------------------------------------------------------------ batch makers
def stack_frames(episodes: Sequence[Episode]) -> np.ndarray:
    """All frames of `episodes`, `(N, 84, 84, 3)` uint8."""
    return np.concatenate([episode.frames for episode in episodes])


def frame_batches(frames: np.ndarray, batch_size: int) -> Callable[[torch.Generator], Batch]:
    """Random frames `(B, 3, 84, 84)` in [-1, 1] for the frame VQ-VAE, with random horizontal flips (a mirrored
    Doom view is still a Doom view)."""

    def batches(generator: torch.Generator) -> Batch:
        index = torch.randint(0, len(frames), (batch_size,), generator=generator).numpy()
        pixels = frames_to_tensor(frames[index])
        flip = torch.rand(batch_size, generator=generator) < 0.5
        pixels[flip] = pixels[flip].flip(-1)
        return {"pixel_values": pixels}

    return batches


def code_batches(codes: torch.LongTensor, batch_size: int) -> Callable[[torch.Generator], Batch]:
    """Random code maps `(B, h, w)` as the input of a code-map VQ-VAE (stage 2)."""

    def batches(generator: torch.Generator) -> Batch:
        return {"pixel_values": codes[torch.randint(0, len(codes), (batch_size,), generator=generator)]}

    return batches


def prior_batches(codes: torch.LongTensor, batch_size: int) -> Callable[[torch.Generator], Batch]:
    """Random code maps as the input and the labels of an unconditional PixelSNAIL prior."""

    def batches(generator: torch.Generator) -> Batch:
        sample = codes[torch.randint(0, len(codes), (batch_size,), generator=generator)]
        return {"codes": sample, "labels": sample}

    return batches


def clip_batches(
    episode_codes: Sequence[torch.LongTensor],
    episode_actions: Sequence[torch.LongTensor],
    batch_size: int,
    clip_length: int = 2,
) -> Callable[[torch.Generator], Batch]:
    """Random clips of `clip_length` consecutive frames of one episode, for teacher forcing: `codes`
    `(B, clip_length, h, w)` and `actions` `(B, clip_length - 1)`, where `actions[:, t]` leads from frame t to t + 1.
    Every clip start is equally likely."""
    starts = [
        (episode, start)
        for episode, codes in enumerate(episode_codes)
        for start in range(len(codes) - clip_length + 1)
    ]
    if not starts:
        raise ValueError(f"no episode has {clip_length} frames; cannot draw clips")

    def batches(generator: torch.Generator) -> Batch:
        picks = torch.randint(0, len(starts), (batch_size,), generator=generator).tolist()
        codes = torch.stack([episode_codes[starts[i][0]][starts[i][1] : starts[i][1] + clip_length] for i in picks])
        actions = torch.stack(
            [episode_actions[starts[i][0]][starts[i][1] : starts[i][1] + clip_length - 1] for i in picks]
        )
        return {"codes": codes, "actions": actions}

    return batches


@torch.no_grad()
def encode_in_batches(encode: Callable[[torch.Tensor], torch.Tensor], inputs, batch_size: int = 64) -> torch.Tensor:
    """`encode` over `inputs` in batches (uint8 frames `(N, H, W, 3)` are converted to [-1, 1] first)."""
    outputs = []
    for start in range(0, len(inputs), batch_size):
        chunk = inputs[start : start + batch_size]
        if isinstance(chunk, np.ndarray):
            chunk = frames_to_tensor(chunk)
        outputs.append(encode(chunk))
    return torch.cat(outputs)


__all__ = [
    "clip_batches",
    "code_batches",
    "encode_in_batches",
    "fit",
    "frame_batches",
    "prior_batches",
    "stack_frames",
]
