"""Environment metrics (issue 15) on held-out ViZDoom episodes, as one table: stage-1 PSNR/SSIM, stage-2 code
accuracy and decoded PSNR, two-stage bits per frame, prediction PSNR per step over 16 steps against copying the last
frame, action consistency (an inverse-dynamics classifier trained on real pairs, scored on generated pairs), and the
same rollouts at each guidance scale on the action.

    python scripts/run_demo_env.py --output_dir outputs/demo-env      # trains and measures everything
    python benchmarks/bench_env.py --run_dir outputs/demo-env          # the table from its metrics.json
    python benchmarks/bench_env.py --run_dir outputs/demo-env --compare_top_shapes   # + stage 2 at 3x3 vs 2x2

`--compare_top_shapes` trains stage 2 afresh at both reachable shapes (factor 8: 21 -> 3x3, factor 16: 21 -> 2x2) on
the run's stage-1 codes, with the run's step count and batch size, side by side in one process: the measurement behind
the choice of shape (the paper's 3x1 is not reachable with square stride-2 stacks).

Writes benchmarks/results/env.json and env.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from hf_vqvae import VQTwoStageModel, VQVAEConfig, VQVAEModel
from hf_vqvae.data.vizdoom import load_episodes
from hf_vqvae.env.metrics import encode_episodes, stage2_metrics
from hf_vqvae.env.training import code_batches, fit, stack_frames

RESULTS = Path(__file__).parent / "results"


def compare_top_shapes(run_dir: Path, metrics: dict) -> list[dict]:
    bundle = VQTwoStageModel.from_pretrained(run_dir / "hub" / "two-stage").eval()
    stage1, trained = bundle.stage1, bundle.stage2.config
    data_dir = Path(metrics["data_dir"]) if "data_dir" in metrics else run_dir / "data"
    train, _ = load_episodes(data_dir, "train")
    test, _ = load_episodes(data_dir, "test")
    codes = torch.cat(encode_episodes(stage1, train))
    sizes = metrics["sizes"]
    rows = []
    for factor in (8, 16):
        torch.manual_seed(0)
        config = VQVAEConfig(**{**trained.to_dict(), "downsample_factor": factor})
        stage2 = VQVAEModel(config)
        log = fit(
            stage2, code_batches(codes, sizes["stage2_batch"]), sizes["stage2_steps"], 2e-3, 0, f"stage 2 /{factor}"
        )
        result = stage2_metrics(stage1, stage2, stack_frames(test))
        side = config.latent_size
        bits = side * side * torch.log2(torch.tensor(float(config.num_embeddings))).item()
        rows.append({"factor": factor, "top_shape": f"{side}x{side}", "bits_per_frame": bits, **result, **log})
    return rows


def markdown(metrics: dict, shapes: list[dict] | None) -> str:
    stage1, stage2, bits, prediction = metrics["stage1"], metrics["stage2"], metrics["bits"], metrics["prediction"]
    recovered = stage2.get("frames_exactly_recovered")
    exact = f"; {recovered} frames recovered exactly, left out" if recovered else ""
    lines = [
        "# Environment models on held-out ViZDoom episodes",
        "",
        f"Scenario `{metrics['data']['scenario']}`, {metrics['data']['splits']['train']} training frames, "
        f"{metrics['data']['splits']['test']} held-out frames ({metrics['data']['episodes']['test']} episodes). "
        "Command: `python scripts/run_demo_env.py` then `python benchmarks/bench_env.py`.",
        "",
        "| Metric | Value |",
        "|---|---|",
        f"| Stage-1 PSNR (dB) | {stage1['psnr']:.2f} |",
        f"| Stage-1 SSIM | {stage1['ssim']:.3f} |",
        f"| Stage-2 top codes | {'x'.join(map(str, stage2['top_shape']))} |",
        f"| Stage-2 code accuracy | {stage2['code_accuracy']:.3f} |",
        f"| Two-stage decoded PSNR vs real (dB) | {stage2['psnr']:.2f} |",
        f"| Two-stage decoded PSNR vs stage-1 reconstruction (dB{exact}) | "
        f"{stage2['psnr_vs_stage1_reconstruction']:.2f} |",
        f"| Bits per frame, uniform over the top codes | {bits['uniform_bits_per_frame']:.1f} |",
        f"| Bits per frame, prior NLL | {bits['prior_bits_per_frame']:.1f} |",
        f"| Dynamics NLL, teacher forcing (bits per code) | {metrics['dynamics_bits_per_code']:.3f} |",
    ]
    consistency = prediction.get("action_consistency")
    if consistency:
        lines += [
            f"| Inverse dynamics on generated pairs (accuracy) | {consistency['generated_pairs_accuracy']:.3f} |",
            f"| Inverse dynamics on real pairs (accuracy) | {consistency['real_pairs_accuracy']:.3f} |",
            f"| Most frequent action (chance) | {consistency['chance']:.3f} |",
        ]
        if "generated_step1_accuracy" in consistency:
            lines += [
                f"| Inverse dynamics at step 1, generated pairs | {consistency['generated_step1_accuracy']:.3f} |",
                f"| Inverse dynamics at step 1, real pairs | {consistency['real_step1_accuracy']:.3f} |",
            ]
    steps = range(1, prediction["horizon"] + 1)
    lines += [
        "",
        f"Prediction PSNR (dB) per step, {prediction['num_rollouts']} rollouts, sampling {prediction['sampling']}; "
        "the view change is the mean absolute pixel change from the frame before, in percent of the pixel range:",
        "",
        "| Step | " + " | ".join(map(str, steps)) + " |",
        "|---|" + "---|" * len(steps),
        "| generated | " + " | ".join(f"{v:.2f}" for v in prediction["psnr_per_step"]) + " |",
        "| copy last frame | " + " | ".join(f"{v:.2f}" for v in prediction["copy_last_psnr_per_step"]) + " |",
        "| copy last frame's codes | "
        + " | ".join(f"{v:.2f}" for v in prediction["copy_last_codes_psnr_per_step"])
        + " |",
        "| stage-1 reconstruction | "
        + " | ".join(f"{v:.2f}" for v in prediction["reconstruction_psnr_per_step"])
        + " |",
    ]
    # (name, values, how a value is written): shares and accuracies, then view changes as percentages.
    per_step_rows = [
        ("share of windows where generated beats copying", prediction.get("beats_copy_share_per_step"), "{:.2f}")
    ]
    if consistency and "generated_accuracy_per_step" in consistency:
        per_step_rows += [
            ("inverse dynamics on generated pairs", consistency["generated_accuracy_per_step"], "{:.2f}"),
            ("inverse dynamics on real pairs", consistency["real_accuracy_per_step"], "{:.2f}"),
        ]
    for kind in ("generated", "real"):
        change = prediction.get(f"{kind}_change_per_step")
        per_step_rows.append((f"view change, {kind} (%)", change and [100 * v for v in change], "{:.1f}"))
    lines += [
        f"| {name} | " + " | ".join(form.format(v) for v in row) + " |" for name, row, form in per_step_rows if row
    ]
    by_hold = metrics.get("inverse_dynamics_real")
    if by_hold:
        lines += [
            "",
            f"The classifier on every held-out real pair: {by_hold['within_hold']:.3f} within an action's hold "
            f"({by_hold['num_within_hold']} pairs), {by_hold['after_switch']:.3f} just after a switch "
            f"({by_hold['num_after_switch']} pairs), where Doom's momentum still carries the previous action.",
        ]
    sweep = metrics.get("guidance_sweep")
    if sweep:
        lines += [
            "",
            "By classifier-free guidance scale on the action (the same windows, greedy; 1 is none): PSNR over steps "
            "1-4 against copying the last frame, the share of windows beating copying at step 1, the action read "
            f"from generated pairs (real pairs: {sweep[0]['real_action_all']:.3f}, most frequent action: "
            f"{sweep[0]['chance']:.3f}), and the view change per step (real: {100 * sweep[0]['real_change']:.1f}%):",
            "",
            "| Guidance | PSNR 1-4 (copy) | Beats copy, step 1 | Action, step 1 | Action, 1-4 | "
            f"Action, all {prediction['horizon']} | "
            "View change, step 1 / last / mean (%) |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['guidance_scale']:g} | {r['psnr_short']:.2f} ({r['copy_psnr_short']:.2f}) | "
            f"{r['beats_copy_step1']:.2f} | {r['action_step1']:.3f} | {r['action_short']:.3f} | {r['action_all']:.3f} "
            f"| {100 * r['change_step1']:.1f} / {100 * r['change_last']:.1f} / {100 * r['change_mean']:.1f} |"
            for r in sweep
        ]
    if any(prediction.get("exact_copy_windows_per_step", [])):
        lines += [
            "",
            "Windows left out of the PSNR means because the real frame repeats the last context frame exactly, per "
            "step: " + ", ".join(map(str, prediction["exact_copy_windows_per_step"])) + ".",
        ]
    if shapes:
        lines += [
            "",
            "Stage 2 at both reachable shapes (trained afresh side by side on the same stage-1 codes):",
            "",
            "| Factor | Top codes | Bits per frame | Code accuracy | Decoded PSNR (dB) | Final loss | Seconds |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['factor']} | {r['top_shape']} | {r['bits_per_frame']:.0f} | {r['code_accuracy']:.3f} | "
            f"{r['psnr']:.2f} | {r['last_loss']:.3f} | {r['seconds']} |"
            for r in shapes
        ]
    timings = metrics.get("timings_seconds")
    if timings:
        lines += ["", "Run time (s): " + ", ".join(f"{k} {v}" for k, v in timings.items())]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run_dir", type=Path, default=Path("outputs/demo-env"))
    parser.add_argument("--compare_top_shapes", action="store_true")
    parser.add_argument("--output_name", default="env")
    args = parser.parse_args()
    metrics_path = args.run_dir / "metrics.json"
    if not metrics_path.exists():
        raise SystemExit(
            f"{metrics_path} is missing: run `python scripts/run_demo_env.py --output_dir {args.run_dir}`"
        )
    metrics = json.loads(metrics_path.read_text())
    shapes = compare_top_shapes(args.run_dir, metrics) if args.compare_top_shapes else None
    RESULTS.mkdir(exist_ok=True)
    payload = {key: metrics[key] for key in ("stage1", "stage2", "bits", "prediction", "dynamics_bits_per_code")}
    payload.update(sizes=metrics["sizes"], data=metrics["data"], timings_seconds=metrics.get("timings_seconds"))
    for key in ("inverse_dynamics_real", "guidance_sweep"):
        if key in metrics:
            payload[key] = metrics[key]
    if shapes:
        payload["top_shapes"] = shapes
    (RESULTS / f"{args.output_name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    table = markdown(metrics, shapes)
    (RESULTS / f"{args.output_name}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
