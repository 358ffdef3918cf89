"""The main job for environments (issue 15; van den Oord et al. 2017, sections 4.2 and 4.4), on CPU:

1. data: ViZDoom episodes played by a random persistent policy (`hf_vqvae.data.vizdoom`), held-out episodes;
2. stage 1: a VQ-VAE on 84x84 frames -> 21x21 codes, K = 512;
3. stage 2: a VQ-VAE on those code maps (`input_num_embeddings=512`) -> 3x3 codes, and a PixelSNAIL prior over them;
4. the action-conditioned video model: a PixelSNAIL over the next frame's 21x21 codes given the last two frames'
   codes and the action, trained by teacher forcing with 15% of the actions dropped, rolled out with classifier-free
   guidance on the action (scale 2);
5. held-out metrics (stage-1 PSNR/SSIM, stage-2 code accuracy and decoded PSNR, bits per frame, prediction PSNR
   per step against copying the last frame, action consistency through an inverse-dynamics classifier trained on
   real pairs), a rollout GIF, two-stage samples, and two Hub-ready folders with cards.

    HF_HUB_OFFLINE=1 python scripts/run_demo_env.py --output_dir outputs/demo-env   # about 18 minutes, 2 cores
    HF_HUB_OFFLINE=1 python scripts/run_demo_env.py --quick                         # a smoke run, minutes

Everything lands in --output_dir: `metrics.json`, `rollout.gif`, `two_stage_samples.png`, `hub/video/`,
`hub/two-stage/` (each `save_pretrained` folder with code, card and images; push with scripts/push_to_hub.py, and
`--space` for the folder's Gradio demo; `cd hub/video && python app.py` runs it locally).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from hf_vqvae import (
    PixelSNAILConfig,
    PixelSNAILModel,
    VQTwoStageModel,
    VQVAEConfig,
    VQVAEImageProcessor,
    VQVAEModel,
    VQVideoModel,
)
from hf_vqvae.data.vizdoom import load_episodes, prepare_vizdoom
from hf_vqvae.env.cards import render_two_stage_card, render_video_card
from hf_vqvae.env.inverse_dynamics import accuracy_by_hold, train_inverse_dynamics
from hf_vqvae.env.media import frame_grid, rollout_gif
from hf_vqvae.env.metrics import (
    encode_episodes,
    guidance_sweep,
    prediction_metrics,
    rollout_starts,
    stage1_metrics,
    stage2_metrics,
    sweep_row,
    two_stage_bits,
)
from hf_vqvae.env.training import clip_batches, code_batches, fit, frame_batches, prior_batches, stack_frames
from hf_vqvae.hub.pipelines import REPO_TASKS, add_pipelines
from hf_vqvae.space import write_app

logger = logging.getLogger("run_demo_env")

# Sizes of the full run (about 18 minutes on 2 cores) and of --quick.
FULL = {
    "train_episodes": 64, "test_episodes": 12, "steps_per_episode": 64,
    "stage1_steps": 500, "stage1_batch": 16, "stage1_hidden": 64,
    "stage2_steps": 250, "stage2_batch": 32, "stage2_hidden": 64,
    "prior_steps": 200, "dynamics_steps": 1500, "dynamics_batch": 16, "dynamics_hidden": 64,
    "inverse_steps": 1000, "horizon": 16, "rollouts": 48,
}  # fmt: skip
QUICK = {
    "train_episodes": 6, "test_episodes": 2, "steps_per_episode": 24,
    "stage1_steps": 20, "stage1_batch": 8, "stage1_hidden": 16,
    "stage2_steps": 10, "stage2_batch": 8, "stage2_hidden": 16,
    "prior_steps": 10, "dynamics_steps": 10, "dynamics_batch": 4, "dynamics_hidden": 16,
    "inverse_steps": 10, "horizon": 4, "rollouts": 2,
}  # fmt: skip


def build_models(
    sizes: dict, num_actions: int, top_factor: int, context_frames: int = 1, action_dropout: float = 0.0
) -> tuple:
    stage1 = VQVAEModel(
        VQVAEConfig(
            image_size=84, downsample_factor=4, num_embeddings=512, embedding_dim=32,
            hidden_channels=sizes["stage1_hidden"], residual_channels=sizes["stage1_hidden"] // 2,
        )
    )  # fmt: skip
    stage2 = VQVAEModel(
        VQVAEConfig(
            image_size=21, downsample_factor=top_factor, input_num_embeddings=512, in_channels=32,
            num_embeddings=512, embedding_dim=32, hidden_channels=sizes["stage2_hidden"],
            residual_channels=sizes["stage2_hidden"] // 2,
        )
    )  # fmt: skip
    top = stage2.config.latent_size
    prior = PixelSNAILModel(
        PixelSNAILConfig(
            num_embeddings=512, latent_height=top, latent_width=top, hidden_channels=64, num_stages=2,
            num_residual_blocks=2, num_attention_heads=4, kernel_size=3, dropout=0.1,
        )
    )  # fmt: skip
    hidden = sizes["dynamics_hidden"]
    # One stage, no attention: with teacher_forcing_noise 1 (the default) the frame's own codes it would attend over
    # are noise in training, so attention only costs time: 1000 steps now take the time 400 did, and gave better
    # rollouts at every step (BENCHMARKS.md, "Environments main job").
    dynamics = PixelSNAILModel(
        PixelSNAILConfig(
            num_embeddings=512, latent_height=21, latent_width=21, hidden_channels=hidden, num_stages=1,
            num_residual_blocks=2, attention=False, num_attention_heads=4, kernel_size=5, dropout=0.1,
            condition_num_embeddings=512, condition_height=21, condition_width=21, num_condition_blocks=3,
            num_classes=num_actions, num_condition_maps=context_frames, class_dropout=action_dropout,
        )
    )  # fmt: skip
    return stage1, stage2, prior, dynamics


def save_video_repo(
    video, metrics, data_info, folder: Path, repo_id: str, gif: Path, command: str, example_frame: np.ndarray
) -> None:
    """The video model's Hub folder: model, frame processor, pipelines, the rollout GIF, a held-out first frame for
    the demo (`images/example_frame.png`), the demo `app.py` and the card."""
    video.save_pretrained(folder)
    # The frame VQ-VAE inside serves the image pipelines (they read `vq_model`), with a processor for its frames.
    VQVAEImageProcessor.for_model_size(video.config.image_size).save_pretrained(folder)
    add_pipelines(folder, REPO_TASKS["vq_video"])
    (folder / "images").mkdir(exist_ok=True)
    shutil.copy(gif, folder / "images" / "rollout.gif")
    Image.fromarray(example_frame).save(folder / "images" / "example_frame.png")
    write_app(folder)  # the Gradio demo: a first frame and actions in, the predicted frames out
    render_video_card(video, metrics, data_info, repo_id, "images/rollout.gif", command).save(folder / "README.md")


def save_two_stage_repo(
    bundle, metrics, data_info, folder: Path, repo_id: str, png: Path, command: str, example_frame: np.ndarray
) -> None:
    """The two-stage bundle's Hub folder: model, frame processor, pipelines, samples, a held-out frame for the demo
    (`images/example_input.png`), the demo `app.py` and the card."""
    bundle.save_pretrained(folder)
    # Samples through both decoders (`generate`), and frames through both stages and back (`forward`).
    VQVAEImageProcessor.for_model_size(bundle.config.image_size).save_pretrained(folder)
    add_pipelines(folder, REPO_TASKS["vq_two_stage"])
    (folder / "images").mkdir(exist_ok=True)
    shutil.copy(png, folder / "images" / "samples.png")
    Image.fromarray(example_frame).save(folder / "images" / "example_input.png")
    write_app(folder)  # the Gradio demo: frames through both stages and back, and sampling
    card = render_two_stage_card(bundle, metrics, data_info, repo_id, "images/samples.png", command)
    card.save(folder / "README.md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", type=Path, default=Path("outputs/demo-env"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of every step")
    parser.add_argument("--scenario", default="my_way_home")
    parser.add_argument("--top_factor", type=int, default=8, help="stage 2's factor: 8 -> 3x3 codes, 16 -> 2x2")
    parser.add_argument("--data_dir", type=Path, default=None, help="reuse prepared episodes instead of playing")
    parser.add_argument("--hub_prefix", default="hf-vqvae", help="the Hub namespace the cards name")
    parser.add_argument("--seed", type=int, default=0)
    # 2: the last two frames show how fast the view already moves, and Doom's momentum carries that motion into the
    # next frame. On held-out episodes this took the inverse-dynamics accuracy on generated pairs over steps 1-4
    # from 0.35 to 0.45 (with 1500 training steps instead of 1000; BENCHMARKS.md, "Environments main job").
    parser.add_argument(
        "--context_frames", type=int, default=2, help="how many previous frames the video model reads (N)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="load the models an earlier run saved in --output_dir/models"
    )
    # 1.0: each next-frame code is predicted from the previous frames and the action alone. On held-out episodes this
    # took one-step prediction from 21.4 to 24.3 dB PSNR, and past copying the last frame from step 2 on
    # (BENCHMARKS.md, "Environments main job"); teacher forcing on the frame's own codes drifts in rollouts.
    parser.add_argument(
        "--teacher_forcing_noise", type=float, default=1.0,
        help="share of the predicted frame's own codes the video model reads as noise in training (see VQVideoConfig)",
    )  # fmt: skip
    # Classifier-free guidance on the action: training drops a share of the actions (the dynamics prior's null
    # class), and rollouts mix the logits with and without the action. Unguided greedy rollouts slow down step by
    # step until they barely move; guidance 2 keeps them moving and lifted the action read from 16 generated steps
    # from 0.30 to 0.37 while staying above copying in PSNR over steps 1-4 (BENCHMARKS.md, "Environments main job").
    parser.add_argument(
        "--action_dropout", type=float, default=0.15,
        help="share of actions the video model trains without (its null class), for guidance",
    )  # fmt: skip
    parser.add_argument(
        "--guidance_scale", type=float, default=2.0,
        help="classifier-free guidance on the action for rollouts, saved as the model's default (1: none)",
    )  # fmt: skip
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    sizes = QUICK if args.quick else FULL
    torch.manual_seed(args.seed)
    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    start = time.perf_counter()

    def lap(name: str) -> None:
        timings[name] = round(time.perf_counter() - start - sum(timings.values()), 1)
        logger.info("%s done in %.1f s", name, timings[name])

    # 1. data
    data_dir = args.data_dir or out / "data"
    if args.data_dir is None:
        prepare_vizdoom(
            data_dir, scenario=args.scenario, train_episodes=sizes["train_episodes"],
            test_episodes=sizes["test_episodes"], steps_per_episode=sizes["steps_per_episode"], num_shards=4,
            seed=args.seed,
        )  # fmt: skip
    data_info = json.loads((data_dir / "dataset_info.json").read_text())
    train, train_report = load_episodes(data_dir, "train")
    test, test_report = load_episodes(data_dir, "test")
    names = data_info["action_names"]
    logger.info("episodes: %d train, %d test (skipped %s / %s)", len(train), len(test), dict(train_report.skipped),
                dict(test_report.skipped))  # fmt: skip
    lap("data")

    stage1, stage2, prior, dynamics = build_models(
        sizes, len(names), args.top_factor, args.context_frames, args.action_dropout
    )
    results: dict = {"sizes": sizes, "data": data_info, "training": {}}

    def trained(model, name: str, batches, steps: int, learning_rate: float):
        """Trains `model`, or with --resume loads what an earlier run of this folder saved under models/."""
        folder = out / "models" / name
        if args.resume and (folder / "config.json").exists():
            logger.info("%s: loading the trained model from %s (--resume)", name, folder)
            results["training"][name] = {"resumed_from": str(folder)}
            return type(model).from_pretrained(folder).eval()
        results["training"][name] = fit(model, batches, steps, learning_rate, args.seed, name)
        model.save_pretrained(folder)
        return model

    # 2. stage 1
    train_frames, test_frames = stack_frames(train), stack_frames(test)
    stage1 = trained(stage1, "stage1", frame_batches(train_frames, sizes["stage1_batch"]), sizes["stage1_steps"], 2e-3)
    train_codes = encode_episodes(stage1, train)
    lap("stage1")
    # 3. stage 2 and the prior over its codes
    all_codes = torch.cat(train_codes)
    stage2 = trained(stage2, "stage2", code_batches(all_codes, sizes["stage2_batch"]), sizes["stage2_steps"], 2e-3)
    top_codes = torch.cat([stage2.encode(chunk) for chunk in all_codes.split(256)])
    prior = trained(prior, "prior", prior_batches(top_codes, 64), sizes["prior_steps"], 1e-3)
    lap("stage2_and_prior")
    # 4. the video model
    # Teacher forcing: VQVideoModel.forward on clips of N + 1 real frames' codes and the actions between them (the
    # frame VQ-VAE gets no gradient: the codes are its input).
    video = VQVideoModel.from_parts(
        stage1, dynamics, names, teacher_forcing_noise=args.teacher_forcing_noise, guidance_scale=args.guidance_scale
    )
    actions = [torch.from_numpy(episode.actions) for episode in train]
    clip_length = args.context_frames + 1
    clips = clip_batches(train_codes, actions, sizes["dynamics_batch"], clip_length)
    video = trained(video, "video", clips, sizes["dynamics_steps"], 1e-3)
    bundle = VQTwoStageModel.from_parts(stage1, stage2, prior)
    lap("dynamics")
    # 5. metrics on held-out episodes
    results["stage1"] = stage1_metrics(stage1, test_frames)
    results["stage2"] = stage2_metrics(stage1, stage2, test_frames)
    test_codes = encode_episodes(stage1, test)
    test_top = torch.cat([stage2.encode(codes) for codes in test_codes])
    results["bits"] = two_stage_bits(stage2, prior, test_top)
    test_actions = [torch.from_numpy(episode.actions) for episode in test]
    clips = clip_batches(test_codes, test_actions, 64, clip_length)(torch.Generator().manual_seed(1))
    with torch.no_grad():
        results["dynamics_bits_per_code"] = float(video(clips["codes"], clips["actions"]).bits_per_code)
    lap("static_metrics")
    inverse = train_inverse_dynamics(train, names, steps=sizes["inverse_steps"], seed=args.seed)
    # The classifier's own ceiling on every held-out real pair, within an action's hold and just after a switch.
    results["inverse_dynamics_real"] = accuracy_by_hold(inverse, test)
    per_episode = max(1, sizes["rollouts"] // max(len(test), 1))
    prediction = prediction_metrics(
        video, test, horizon=sizes["horizon"], per_episode=per_episode, top_k=1, inverse_dynamics=inverse
    )
    rollouts = prediction.pop("rollouts")
    results["prediction"] = prediction
    if video.config.dynamics_config.null_class_id is not None:  # the same windows at other guidance scales
        others = [scale for scale in (1.0, 1.5, 2.0, 3.0, 5.0) if scale != args.guidance_scale]
        rows = guidance_sweep(video, test, others, inverse, horizon=sizes["horizon"], per_episode=per_episode)
        rows.append(sweep_row(prediction))  # the job's own scale: the rollouts above
        results["guidance_sweep"] = sorted(rows, key=lambda row: row["guidance_scale"])
    lap("prediction_metrics")
    # 6. pictures and Hub folders
    starts_actions = _rollout_actions(test, sizes["horizon"], per_episode, args.context_frames)
    gif = rollout_gif(rollouts[:4, 0], rollouts[:4, 1], out / "rollout.gif", names, starts_actions[:4])
    samples = bundle.generate(16, generator=torch.Generator().manual_seed(0))
    png = frame_grid(samples, out / "two_stage_samples.png", columns=8, scale=2)
    command = "python scripts/run_demo_env.py" + (" --quick" if args.quick else "")
    video_id, example = f"{args.hub_prefix}/vizdoom-video", test[0].frames[0]
    save_video_repo(video, results, data_info, out / "hub" / "video", video_id, gif, command, example)
    two_stage_id = f"{args.hub_prefix}/vizdoom-two-stage"
    save_two_stage_repo(bundle, results, data_info, out / "hub" / "two-stage", two_stage_id, png, command, example)
    lap("pictures_and_hub")
    results["timings_seconds"] = {**timings, "total": round(time.perf_counter() - start, 1)}
    (out / "metrics.json").write_text(json.dumps(results, indent=2) + "\n")
    _print_summary(results)


def _rollout_actions(episodes, horizon: int, per_episode: int, context_frames: int = 1) -> torch.Tensor:
    """The actions of each rollout of `prediction_metrics` (which starts after `context_frames` real frames)."""
    first = context_frames - 1
    starts = rollout_starts(episodes, horizon + first, per_episode)
    return torch.stack([torch.from_numpy(episodes[e].actions[s + first : s + first + horizon]) for e, s in starts])


def _print_summary(results: dict) -> None:
    prediction = results["prediction"]
    consistency = prediction.get("action_consistency", {})
    print(f"stage 1: PSNR {results['stage1']['psnr']:.2f} dB, SSIM {results['stage1']['ssim']:.3f}")
    print(
        f"stage 2 ({'x'.join(map(str, results['stage2']['top_shape']))}): code accuracy "
        f"{results['stage2']['code_accuracy']:.3f}, decoded PSNR {results['stage2']['psnr']:.2f} dB"
    )
    print(
        f"bits per frame: {results['bits']['uniform_bits_per_frame']:.1f} uniform, "
        f"{results['bits']['prior_bits_per_frame']:.1f} under the prior"
    )
    print("prediction PSNR per step:", prediction["psnr_per_step"])
    print("copy-last PSNR per step: ", prediction["copy_last_psnr_per_step"])
    print("copy-last-codes PSNR:    ", prediction["copy_last_codes_psnr_per_step"])
    print("share of windows beating copying:", prediction["beats_copy_share_per_step"])
    print("view change per step, generated:", prediction["generated_change_per_step"])
    print("view change per step, real:     ", prediction["real_change_per_step"])
    if consistency:
        print("action accuracy per step, generated:", consistency["generated_accuracy_per_step"])
        print("action accuracy per step, real:     ", consistency["real_accuracy_per_step"])
        print(
            f"action consistency: {consistency['generated_pairs_accuracy']:.3f} on generated pairs, "
            f"{consistency['real_pairs_accuracy']:.3f} on real pairs, chance {consistency['chance']:.3f}; at step 1 "
            f"{consistency['generated_step1_accuracy']:.3f} generated, {consistency['real_step1_accuracy']:.3f} real"
        )
    if "inverse_dynamics_real" in results:
        by_hold = results["inverse_dynamics_real"]
        print(
            f"classifier on held-out real pairs: {by_hold['within_hold']:.3f} within an action's hold, "
            f"{by_hold['after_switch']:.3f} just after a switch"
        )
    for row in results.get("guidance_sweep", []):
        print(
            f"guidance {row['guidance_scale']:g}: PSNR steps 1-4 {row['psnr_short']:.2f} dB (copying "
            f"{row['copy_psnr_short']:.2f}), action read {row['action_step1']:.3f} at step 1, "
            f"{row['action_short']:.3f} over steps 1-4, {row['action_all']:.3f} over all; view change "
            f"{100 * row['change_step1']:.1f}% at step 1, {100 * row['change_last']:.1f}% at the last step"
        )
    print("timings (s):", results["timings_seconds"])


if __name__ == "__main__":
    main()
