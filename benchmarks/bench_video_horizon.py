"""Does the action-conditioned video model beat copying the last frame one and two steps ahead, at a test-sized
budget? Real ViZDoom episodes played here (train and held-out episodes by seed), one small frame VQ-VAE, then
dynamics priors trained side by side in one process with the same steps, batch and seed, differing only in the
context frames they read (`context_frames`) and in `teacher_forcing_noise`.

    python benchmarks/bench_video_horizon.py                    # about 4 minutes on 2 idle cores
    python benchmarks/bench_video_horizon.py --dynamics_steps 2000 --output_name video_horizon-long

Per variant and step (1, 2), on every window of the held-out episodes: the share of 21x21 codes predicted right by a
greedy rollout (`top_k=1`) against the share unchanged since the last context frame (copying its codes), and the
PSNR of the decoded prediction against copying the last real frame, copying its codes through the decoder, and
stage 1's reconstruction of the real frame (the ceiling of any prediction through this decoder). Also the
teacher-forced argmax accuracy of step 1 (the true codes of the frame fed in: not a prediction, it shows how much
the prior leans on the codes already in the frame).

Writes benchmarks/results/<output_name>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from hf_vqvae import PixelSNAILConfig, PixelSNAILModel, VQVAEConfig, VQVAEModel, VQVideoModel
from hf_vqvae.data.vizdoom import frames_to_tensor, play_episodes
from hf_vqvae.env.metrics import encode_episodes, stage1_metrics
from hf_vqvae.env.training import clip_batches, fit, frame_batches, stack_frames
from hf_vqvae.metrics.functional import psnr_per_image

RESULTS = Path(__file__).parent / "results"
K, STEPS_AHEAD = 64, 2
VARIANTS = "1:0,2:0,1:0.85,1:1"  # context_frames:teacher_forcing_noise, comma-separated


def windows(episodes, codes, context: int) -> dict[str, torch.Tensor]:
    """Every held-out window: `context` frames' codes, the next STEPS_AHEAD actions, codes and real frames."""
    rows = {"context": [], "actions": [], "codes": [], "frames": [], "last_frame": []}
    for episode, episode_codes in zip(episodes, codes):
        actions = torch.from_numpy(episode.actions)
        for last in range(context - 1, len(episode_codes) - STEPS_AHEAD):
            rows["context"].append(episode_codes[last - context + 1 : last + 1])
            rows["actions"].append(actions[last : last + STEPS_AHEAD])
            rows["codes"].append(episode_codes[last + 1 : last + 1 + STEPS_AHEAD])
            rows["frames"].append(frames_to_tensor(episode.frames[last + 1 : last + 1 + STEPS_AHEAD]))
            rows["last_frame"].append(frames_to_tensor(episode.frames[last : last + 1]))
    return {key: torch.stack(value) for key, value in rows.items()}


def per_step_psnr(prediction: torch.Tensor, target: torch.Tensor) -> list[float]:
    flat = (-1, *target.shape[2:])
    values = psnr_per_image(prediction.expand_as(target).reshape(flat), target.reshape(flat))
    return [round(float(v), 3) for v in values.view(target.shape[:2]).mean(0)]


@torch.no_grad()
def measure(video: VQVideoModel, held_out: dict[str, torch.Tensor]) -> dict:
    context, target = held_out["context"], held_out["codes"]
    predicted = video.predict_codes(context, held_out["actions"], top_k=1)
    last = context[:, -1:]
    single = context[:, -1] if context.shape[1] == 1 else context
    logits = video.dynamics(target[:, 0], condition=single, class_labels=held_out["actions"][:, 0]).logits
    frames = held_out["frames"]
    return {
        "code_accuracy_per_step": [round(float(v), 4) for v in (predicted == target).float().mean((0, 2, 3))],
        "copy_codes_accuracy_per_step": [round(float(v), 4) for v in (last == target).float().mean((0, 2, 3))],
        "teacher_forced_argmax_accuracy_step1": round(float((logits.argmax(1) == target[:, 0]).float().mean()), 4),
        "psnr_per_step": per_step_psnr(video.decode(predicted), frames),
        "copy_last_psnr_per_step": per_step_psnr(held_out["last_frame"], frames),
        "copy_last_codes_psnr_per_step": per_step_psnr(video.decode(last), frames),
        "reconstruction_psnr_per_step": per_step_psnr(video.decode(target), frames),
        "num_windows": len(target),
    }


def markdown(payload: dict) -> str:
    lines = [
        f"Video prediction vs copying the last frame, {payload['num_train_episodes']} train / "
        f"{payload['num_test_episodes']} held-out ViZDoom episodes of {payload['steps_per_episode']} steps; stage 1 "
        f"{payload['stage1_steps']} steps (held-out PSNR {payload['stage1']['psnr']:.2f} dB), dynamics "
        f"{payload['dynamics_steps']} steps each, greedy rollouts.",
        "",
        "| Context frames | Teacher-forcing noise | Code acc. step 1 / 2 | Copy codes step 1 / 2 | TF argmax step 1 "
        "| PSNR step 1 / 2 (dB) | Copy frame | Copy codes (decoded) | Reconstruction | Train s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in payload["variants"]:

        def pair(values: list[float], digits: int = 3) -> str:
            return " / ".join(f"{v:.{digits}f}" for v in values)

        lines.append(
            f"| {row['context_frames']} | {row['teacher_forcing_noise']} | {pair(row['code_accuracy_per_step'])} | "
            f"{pair(row['copy_codes_accuracy_per_step'])} | {row['teacher_forced_argmax_accuracy_step1']:.3f} | "
            f"{pair(row['psnr_per_step'], 2)} | {pair(row['copy_last_psnr_per_step'], 2)} | "
            f"{pair(row['copy_last_codes_psnr_per_step'], 2)} | {pair(row['reconstruction_psnr_per_step'], 2)} | "
            f"{row['training']['seconds']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_episodes", type=int, default=24)
    parser.add_argument("--test_episodes", type=int, default=6)
    parser.add_argument("--steps_per_episode", type=int, default=32)
    parser.add_argument("--stage1_steps", type=int, default=60)
    parser.add_argument("--dynamics_steps", type=int, default=800)
    parser.add_argument("--variants", default=VARIANTS, help="context_frames:teacher_forcing_noise, ...")
    parser.add_argument("--output_name", default="video_horizon")
    args = parser.parse_args()
    start = time.perf_counter()
    episodes = list(
        play_episodes(
            num_episodes=args.train_episodes + args.test_episodes, steps_per_episode=args.steps_per_episode, seed=0
        )
    )
    train, test = episodes[: args.train_episodes], episodes[args.train_episodes :]
    torch.manual_seed(0)
    stage1 = VQVAEModel(
        VQVAEConfig(image_size=84, num_embeddings=K, embedding_dim=8, hidden_channels=16, residual_channels=8)
    )
    fit(stage1, frame_batches(stack_frames(train), 8), steps=args.stage1_steps, learning_rate=3e-3, desc="stage 1")
    train_codes, test_codes = encode_episodes(stage1, train), encode_episodes(stage1, test)
    actions = [torch.from_numpy(episode.actions) for episode in train]
    variants = []
    for variant in args.variants.split(","):
        context, noise = int(variant.split(":")[0]), float(variant.split(":")[1])
        torch.manual_seed(0)
        dynamics = PixelSNAILModel(
            PixelSNAILConfig(
                num_embeddings=K, latent_height=21, latent_width=21, hidden_channels=32, num_stages=1,
                num_residual_blocks=1, attention=False, kernel_size=3, dropout=0.0, condition_num_embeddings=K,
                condition_height=21, condition_width=21, num_classes=5, num_condition_maps=context,
            )
        )  # fmt: skip
        video = VQVideoModel.from_parts(stage1, dynamics, teacher_forcing_noise=noise)
        batches = clip_batches(train_codes, actions, batch_size=8, clip_length=context + 1)
        log = fit(video, batches, steps=args.dynamics_steps, learning_rate=3e-3, desc=f"dynamics N={context}")
        row = {"context_frames": context, "teacher_forcing_noise": noise, "training": log}
        row.update(measure(video.eval(), windows(test, test_codes, context)))
        variants.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "training"}))
    payload = {
        "num_train_episodes": len(train),
        "num_test_episodes": len(test),
        "steps_per_episode": args.steps_per_episode,
        "stage1_steps": args.stage1_steps,
        "dynamics_steps": args.dynamics_steps,
        "stage1": stage1_metrics(stage1, stack_frames(test)),
        "variants": variants,
        "seconds": round(time.perf_counter() - start, 1),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.output_name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    table = markdown(payload)
    (RESULTS / f"{args.output_name}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
