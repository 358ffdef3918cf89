"""Held-out measurements of the environment models (issue 15), each a plain function of models and real episodes:

* stage 1: PSNR and SSIM of reconstructed frames;
* stage 2: code accuracy (the share of 21x21 codes recovered through the 3x3 / 2x2 bottleneck) and the PSNR of
  frames decoded through both decoders;
* the two-stage bits per frame: the uniform bound (top codes x log2 K) and the prior's held-out NLL per frame;
* prediction PSNR per step over a horizon, against copying the last context frame;
* action consistency: an inverse-dynamics classifier trained on real pairs, evaluated on generated pairs.

PSNR and SSIM are the package's own (`hf_vqvae.metrics.functional`), on [-1, 1] frames (data range 2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..data.vizdoom import Episode, frames_to_tensor
from ..metrics.functional import psnr_per_image, ssim_per_image
from .inverse_dynamics import InverseDynamicsClassifier, chance_accuracy, predict_actions
from .training import encode_in_batches


def _mean(values: torch.Tensor) -> float:
    return float(values.float().mean())


@torch.no_grad()
def stage1_metrics(stage1, frames: np.ndarray, batch_size: int = 64) -> dict[str, float]:
    """PSNR and SSIM of stage-1 reconstructions of `frames` `(N, 84, 84, 3)` uint8."""
    psnrs, ssims = [], []
    for start in range(0, len(frames), batch_size):
        pixels = frames_to_tensor(frames[start : start + batch_size])
        reconstruction = stage1.decode(stage1.encode(pixels)).clamp(-1, 1)
        psnrs.append(psnr_per_image(reconstruction, pixels))
        ssims.append(ssim_per_image(reconstruction, pixels))
    return {"psnr": _mean(torch.cat(psnrs)), "ssim": _mean(torch.cat(ssims)), "num_frames": len(frames)}


@torch.no_grad()
def stage2_metrics(stage1, stage2, frames: np.ndarray, batch_size: int = 64) -> dict[str, float]:
    """Code accuracy of stage 2 on stage 1's codes of `frames`, and PSNR of frames decoded through both decoders
    (against the real frames, and against stage 1's own reconstruction, which is the best stage 2 can reach). A
    frame whose codes all come back decodes to exactly stage 1's reconstruction: it is counted
    (`frames_exactly_recovered`) and left out of that PSNR's mean, where its infinite PSNR would swamp the rest."""
    correct = total = 0
    psnr_real, psnr_stage1 = [], []
    for start in range(0, len(frames), batch_size):
        pixels = frames_to_tensor(frames[start : start + batch_size])
        codes = stage1.encode(pixels)
        recovered = stage2.decode(stage2.encode(codes)).argmax(1)
        correct += int((recovered == codes).sum())
        total += codes.numel()
        two_stage = stage1.decode(recovered).clamp(-1, 1)
        psnr_real.append(psnr_per_image(two_stage, pixels))
        psnr_stage1.append(psnr_per_image(two_stage, stage1.decode(codes).clamp(-1, 1)))
    top_shape = tuple(stage2.encode(codes[:1]).shape[1:])
    psnr_stage1 = torch.cat(psnr_stage1)
    exact = torch.isinf(psnr_stage1)
    return {
        "code_accuracy": correct / total,
        "psnr": _mean(torch.cat(psnr_real)),
        "psnr_vs_stage1_reconstruction": _mean(psnr_stage1[~exact]) if not exact.all() else float("inf"),
        "frames_exactly_recovered": int(exact.sum()),
        "top_shape": list(top_shape),
        "num_frames": len(frames),
    }


@torch.no_grad()
def two_stage_bits(stage2, prior, top_codes: torch.LongTensor) -> dict[str, float]:
    """Bits per frame of the two-stage code: the uniform bound `n log2 K` over the `n` top codes, and the prior's
    mean NLL of held-out top codes `(N, h, w)` summed over a frame's positions."""
    positions = math.prod(top_codes.shape[1:])
    bound = positions * math.log2(stage2.config.num_embeddings)
    nll = []
    for chunk in top_codes.split(256):
        logits = prior(chunk).logits
        nll.append(F.cross_entropy(logits.float(), chunk, reduction="none").flatten(1).sum(1))
    return {
        "uniform_bits_per_frame": bound,
        "prior_bits_per_frame": _mean(torch.cat(nll)) / math.log(2),
        "codes_per_frame": positions,
    }


def rollout_starts(episodes: Sequence[Episode], horizon: int, per_episode: int = 1) -> list[tuple[int, int]]:
    """`(episode index, start)` pairs with `horizon` real frames after the start: evenly spread over each episode
    that is long enough."""
    starts = []
    for index, episode in enumerate(episodes):
        last = len(episode) - 1 - horizon
        if last < 0:
            continue
        for k in range(per_episode):
            starts.append((index, last * k // max(per_episode - 1, 1) if per_episode > 1 else 0))
    return starts


@torch.no_grad()
def prediction_metrics(
    video_model,
    episodes: Sequence[Episode],
    horizon: int = 16,
    per_episode: int = 1,
    top_k: int | None = 1,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 16,
    inverse_dynamics: InverseDynamicsClassifier | None = None,
    guidance_scale: float | None = None,
) -> dict:
    """Rolls the video model out from real frames of held-out `episodes` under their real actions and compares the
    decoded frames with the real ones. Each rollout starts from `video_model.config.context_frames` (N) real frames;
    step 1 is the frame after the last of them.

    Returns per-step mean PSNR (step 1 = the first predicted frame) of: the prediction (`psnr_per_step`); copying
    the last context frame (`copy_last_psnr_per_step`); copying its codes (`copy_last_codes_psnr_per_step`, the same
    baseline through the decoder, at the generated frames' own decoder quality); stage 1's reconstruction of the
    real frames (the ceiling, `reconstruction_psnr_per_step`). Windows whose real frame at a step repeats the last
    context frame exactly are left out of those means at that step and counted (`exact_copy_windows_per_step`).
    Also the share of windows where the prediction beats copying the last frame (`beats_copy_share_per_step`): a
    mean PSNR can be carried by a few nearly still windows where copying real pixels scores far above any decoded
    frame, and the share is not. With an `inverse_dynamics` classifier, also its
    accuracy against the commanded actions on the generated pairs (decoded context frame -> frame 1 -> frame 2 ...)
    and on the real pairs of the same windows, over the horizon, at step 1 alone (`*_step1_accuracy`) and at each
    step (`*_accuracy_per_step`), and the most-frequent-action rate (`chance`). How much the view moves from each
    frame to the next, as the mean absolute pixel change in units of the pixel range, in the generated frames
    (`generated_change_per_step`, step 1 from the decoded context frame) and the real ones (`real_change_per_step`):
    a rollout that stops moving shows there long before its PSNR falls below copying's. Also returns the rollouts
    (`rollouts`, `(R, 2, T, 3, H, W)`: real, generated) for GIFs.
    """
    context = getattr(video_model.config, "context_frames", 1)
    starts = rollout_starts(episodes, horizon + context - 1, per_episode)
    if not starts:
        raise ValueError(
            f"no held-out episode has {horizon + context} frames for a {horizon}-step rollout from {context} frame(s)"
        )
    generator = torch.Generator(device=video_model.device).manual_seed(seed)
    predicted_psnr, copy_psnr, copy_codes_psnr, ceiling_psnr = [], [], [], []
    generated_change, real_change = [], []
    generated_pairs, real_pairs, commanded = [], [], []
    rollouts = []
    for offset in range(0, len(starts), batch_size):
        chunk = starts[offset : offset + batch_size]
        clips = torch.stack(
            [frames_to_tensor(episodes[e].frames[s : s + horizon + context]) for e, s in chunk]
        )  # (B, context + horizon, 3, H, W)
        # From here on `real` is the last context frame and the horizon after it, as with one context frame.
        real = clips[:, context - 1 :]
        first_action = context - 1
        actions = torch.stack(
            [torch.from_numpy(episodes[e].actions[s + first_action : s + first_action + horizon]) for e, s in chunk]
        )
        predicted = video_model.generate(
            clips[:, :context],
            actions,
            temperature=temperature,
            top_k=top_k,
            generator=generator,
            guidance_scale=guidance_scale,
        ).cpu()  # (B, horizon, 3, H, W)
        target = real[:, 1:]
        flat = (-1, *target.shape[2:])
        predicted_psnr.append(psnr_per_image(predicted.reshape(flat), target.reshape(flat)).view(len(chunk), horizon))
        copy = real[:, :1].expand_as(target)
        copy_psnr.append(psnr_per_image(copy.reshape(flat), target.reshape(flat)).view(len(chunk), horizon))
        # Copying the last frame's codes: the same baseline at the decoder's own quality.
        last_decoded = video_model.decode(video_model.encode(real[:, :1])).cpu()
        copy_codes = last_decoded.expand_as(target)
        copy_codes_psnr.append(
            psnr_per_image(copy_codes.reshape(flat), target.reshape(flat)).view(len(chunk), horizon)
        )
        ceiling = video_model.decode(video_model.encode(target)).cpu()
        ceiling_psnr.append(psnr_per_image(ceiling.reshape(flat), target.reshape(flat)).view(len(chunk), horizon))
        # The first generated pair starts from the decoded last context frame, so that both of its frames are
        # drawn by the decoder (a sharp real frame next to a decoded one would read as motion of its own).
        generated = torch.cat([last_decoded, predicted], dim=1)
        generated_change.append(_frame_change(generated))
        real_change.append(_frame_change(real))
        generated_pairs.append((generated[:, :-1].reshape(flat), generated[:, 1:].reshape(flat)))
        real_pairs.append((real[:, :-1].reshape(flat), real[:, 1:].reshape(flat)))
        commanded.append(actions.reshape(-1))
        rollouts.append(torch.stack([real[:, 1:], predicted], dim=1))  # (B, 2, horizon, 3, H, W)

    predicted_psnr, copy_psnr, copy_codes_psnr, ceiling_psnr = (
        torch.cat(values) for values in (predicted_psnr, copy_psnr, copy_codes_psnr, ceiling_psnr)
    )  # each (R, horizon)
    # Where the agent stood still, the real frame repeats the last context frame exactly: copying it has infinite
    # PSNR, which would swamp that step's mean. Such windows are left out of every PSNR mean at that step, and
    # counted (`exact_copy_windows_per_step`); `beats_copy_share_per_step` keeps them (copying wins there).
    kept = ~torch.isinf(copy_psnr)

    def psnr_per_step(values: torch.Tensor) -> list[float]:
        means = torch.where(kept, values, 0.0).sum(0) / kept.sum(0)  # NaN where every window is an exact copy
        return [round(float(v), 3) for v in means]

    def mean_per_step(values: torch.Tensor, digits: int = 3) -> list[float]:
        return [round(float(v), digits) for v in values.double().view(-1, horizon).mean(0)]

    result = {
        "horizon": horizon,
        "num_rollouts": len(starts),
        "sampling": {
            "top_k": top_k,
            "temperature": temperature,
            "guidance_scale": video_model.config.guidance_scale if guidance_scale is None else guidance_scale,
        },
        "psnr_per_step": psnr_per_step(predicted_psnr),
        "copy_last_psnr_per_step": psnr_per_step(copy_psnr),
        "copy_last_codes_psnr_per_step": psnr_per_step(copy_codes_psnr),
        "reconstruction_psnr_per_step": psnr_per_step(ceiling_psnr),
        "beats_copy_share_per_step": mean_per_step(predicted_psnr > copy_psnr),
        "exact_copy_windows_per_step": [int(v) for v in (~kept).sum(0)],
        # How much the view moves: a rollout that freezes still scores near copying in PSNR, and this shows it.
        "generated_change_per_step": mean_per_step(torch.cat(generated_change), digits=4),
        "real_change_per_step": mean_per_step(torch.cat(real_change), digits=4),
    }
    if inverse_dynamics is not None:
        actions = torch.cat(commanded)
        before, after = (torch.cat([p[i] for p in generated_pairs]) for i in (0, 1))
        real_before, real_after = (torch.cat([p[i] for p in real_pairs]) for i in (0, 1))
        num_actions = inverse_dynamics.head.out_features
        first = torch.arange(len(actions)) % horizon == 0  # the pairs of step 1, from the context frame
        generated_hits = (predict_actions(inverse_dynamics, before, after).cpu() == actions).float()
        real_hits = (predict_actions(inverse_dynamics, real_before, real_after).cpu() == actions).float()
        result["action_consistency"] = {
            "generated_pairs_accuracy": float(generated_hits.mean()),
            # Over every window: a still window is a real pair like any other for the classifier.
            "generated_accuracy_per_step": mean_per_step(generated_hits),
            "real_accuracy_per_step": mean_per_step(real_hits),
            "generated_step1_accuracy": float(generated_hits[first].mean()),
            "real_pairs_accuracy": float(real_hits.mean()),
            "real_step1_accuracy": float(real_hits[first].mean()),
            "chance": chance_accuracy(actions.numpy(), num_actions),
            "uniform_chance": 1.0 / num_actions,
            "num_pairs": len(actions),
        }
    result["rollouts"] = torch.cat(rollouts)
    return result


def guidance_sweep(
    video_model,
    episodes: Sequence[Episode],
    scales: Sequence[float],
    inverse_dynamics: InverseDynamicsClassifier,
    horizon: int = 16,
    per_episode: int = 1,
    short: int = 4,
) -> list[dict]:
    """Greedy rollouts of `prediction_metrics` (the same windows) at each classifier-free guidance scale on the
    action, each summarised by `sweep_row`. Guidance trades one for the other: the view follows the actions more,
    and pixel-exact agreement drops."""
    rows = []
    for scale in scales:
        result = prediction_metrics(
            video_model, episodes, horizon, per_episode, top_k=1, inverse_dynamics=inverse_dynamics,
            guidance_scale=scale,
        )  # fmt: skip
        rows.append(sweep_row(result, short))
    return rows


def sweep_row(result: dict, short: int = 4) -> dict:
    """One guidance scale's `prediction_metrics` (with an inverse-dynamics classifier) summarised: PSNR and
    copying's over the first `short` steps, the share of windows beating copying at step 1, the inverse-dynamics
    accuracy on generated pairs at step 1, over the first `short` steps and over the whole horizon, and the mean
    view change per step (generated; the real windows' as `real_change`)."""
    accuracy = result["action_consistency"]["generated_accuracy_per_step"]
    return {
        "guidance_scale": result["sampling"]["guidance_scale"] or 1.0,
        "psnr_short": round(float(np.mean(result["psnr_per_step"][:short])), 3),
        "copy_psnr_short": round(float(np.mean(result["copy_last_psnr_per_step"][:short])), 3),
        "beats_copy_step1": result["beats_copy_share_per_step"][0],
        "action_step1": accuracy[0],
        "action_short": round(float(np.mean(accuracy[:short])), 3),
        "action_all": round(result["action_consistency"]["generated_pairs_accuracy"], 3),
        "change_step1": result["generated_change_per_step"][0],
        "change_last": result["generated_change_per_step"][-1],
        "change_mean": round(float(np.mean(result["generated_change_per_step"])), 4),
        "real_change": round(float(np.mean(result["real_change_per_step"])), 4),
        "real_action_all": round(result["action_consistency"]["real_pairs_accuracy"], 3),
        "chance": result["action_consistency"]["chance"],
    }


def _frame_change(frames: torch.Tensor) -> torch.Tensor:
    """`(B, T + 1, C, H, W)` frames in [-1, 1] -> `(B * T,)` mean absolute change from each frame to the next, in
    [0, 1] units of the pixel range (half the mean absolute difference in [-1, 1])."""
    return ((frames[:, 1:] - frames[:, :-1]).abs().mean(dim=(2, 3, 4)) / 2).reshape(-1)


def encode_episodes(stage1, episodes: Sequence[Episode], batch_size: int = 64) -> list[torch.LongTensor]:
    """Stage-1 code maps of every frame of each episode, `(T, h, w)` per episode."""
    return [encode_in_batches(stage1.encode, episode.frames, batch_size) for episode in episodes]


__all__ = [
    "encode_episodes",
    "guidance_sweep",
    "sweep_row",
    "prediction_metrics",
    "rollout_starts",
    "stage1_metrics",
    "stage2_metrics",
    "two_stage_bits",
]
