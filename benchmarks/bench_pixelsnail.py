"""PixelSNAIL sampling: cached (incremental) against `use_cache=False` (the whole network on the whole map at
every step), side by side in one run, on 2-D code maps (`--spatial-dims 2`, sizes are map sides) or 1-D code
sequences (`--spatial-dims 1`, sizes are sequence lengths).

Model: K = 512 codes, 128 channels, 4 stages of 2 gated residual blocks, causal attention after every stage
(the config defaults), random weights (speed does not depend on them). 16 samples per generation.

* Cached: `model.generate(16, use_cache=True)` end to end, all h*w steps.
* Uncached: an uncached step runs the same full forward at every position, so its first `--uncached-steps` (64)
  steps are timed and the total is extrapolated to h*w steps. The loop is `generate`'s own uncached loop
  (`_logits` on the whole map, then `_sample`), stopped early. The codes it draws are checked against the cached
  run's first codes (same generator seed): both paths must agree.

Each (size, mode) runs in a fresh subprocess so that its peak memory is its own: peak resident set size
(`resource.getrusage(RUSAGE_SELF).ru_maxrss`) of that process, and its increase over the resident size measured
just before sampling started (model built, weights in memory); on CUDA, `torch.cuda.max_memory_allocated`.
Writes benchmarks/results/pixelsnail.{json,md} (2-D) or benchmarks/results/pixelsnail-1d.{json,md} (1-D).

    python benchmarks/bench_pixelsnail.py
    python benchmarks/bench_pixelsnail.py --spatial-dims 1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def current_rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def worker(args: argparse.Namespace) -> dict:
    """One measurement in this process; returns a JSON-able dict."""
    import torch

    from hf_vqvae import PixelSNAILConfig, PixelSNAILModel

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    shape = latent_shape(args.spatial_dims, args.size)
    size = {"latent_length": args.size} if args.spatial_dims == 1 else {"latent_height": args.size}
    size |= {"latent_width": args.size} if args.spatial_dims == 2 else {}
    config = PixelSNAILConfig(
        num_embeddings=args.num_codes,
        spatial_dims=args.spatial_dims,
        **size,
        hidden_channels=args.channels,
        num_stages=args.stages,
        num_residual_blocks=args.blocks,
        attention=True,
    )
    model = PixelSNAILModel(config).to(device).eval()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    baseline_rss = current_rss_mib()
    generator = torch.Generator(device=device).manual_seed(args.seed)
    length = math.prod(shape)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    with torch.no_grad():
        if args.mode == "cached":
            # Warm-up: a few steps (allocator, kernel selection), not timed.
            cache = model._init_cache(args.num_samples, None)
            zeros = torch.zeros(args.num_samples, *shape, dtype=torch.long, device=device)
            for index in range(min(4, args.size)):
                model._step(cache, zeros, index, None)
            del cache, zeros  # so that the peak below counts one cache, generate's own
            sync()
            start = time.perf_counter()
            codes = model.generate(args.num_samples, generator=generator, use_cache=True)
            sync()
            seconds = time.perf_counter() - start
            steps_timed, step_seconds = length, None
        else:
            codes = torch.zeros(args.num_samples, *shape, dtype=torch.long, device=device)
            model._logits(codes, None)  # warm-up
            sync()
            steps_timed = min(args.uncached_steps, length)
            step_seconds = []
            for index in range(steps_timed):
                start = time.perf_counter()
                logits = model._logits(codes, None).flatten(2)[:, :, index]
                codes.view(args.num_samples, -1)[:, index] = model._sample(logits, 1.0, None, generator)
                sync()
                step_seconds.append(time.perf_counter() - start)
            seconds = sum(step_seconds) / steps_timed * length  # extrapolated to all h*w steps
    first_codes = codes.flatten(1)[:, : min(args.uncached_steps, length)].tolist()
    result = {
        "size": args.size,
        "label": size_label(args.spatial_dims, args.size),
        "mode": args.mode,
        "steps_timed": steps_timed,
        "extrapolated": steps_timed < length,
        "seconds": seconds,
        "samples_per_second": args.num_samples / seconds,
        "ms_per_step": 1000 * seconds / length,
        "peak_rss_mib": peak_rss_mib(),
        "rss_before_sampling_mib": baseline_rss,
        "first_codes": first_codes,
    }
    if step_seconds:
        result["step_ms_min_median_max"] = [1000 * f(step_seconds) for f in (min, statistics.median, max)]
    if device.type == "cuda":
        result["cuda_peak_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    result["peak_increase_mib"] = result["peak_rss_mib"] - baseline_rss
    return result


def latent_shape(spatial_dims: int, size: int) -> tuple[int, ...]:
    return (size,) if spatial_dims == 1 else (size, size)


def size_label(spatial_dims: int, size: int) -> str:
    return f"T={size}" if spatial_dims == 1 else f"{size}x{size}"


def run_child(args: argparse.Namespace, size: int, mode: str) -> dict:
    command = [sys.executable, __file__, "--worker", "--size", str(size), "--mode", mode]
    command += ["--spatial-dims", str(args.spatial_dims)]
    for name in ("num_samples", "num_codes", "channels", "stages", "blocks", "threads", "uncached_steps", "seed"):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    command += ["--device", args.device]
    load_before = os.getloadavg()[0]
    output = subprocess.run(command, capture_output=True, text=True, check=False)
    if output.returncode != 0:
        raise RuntimeError(f"worker {size_label(args.spatial_dims, size)} {mode} failed:\n{output.stderr}")
    result = json.loads(output.stdout.strip().splitlines()[-1])
    result["load_average_before"] = load_before
    print(
        f"{result['label']} {mode:8s} {result['seconds']:9.2f} s  {result['samples_per_second']:8.4f} samples/s  "
        f"{result['ms_per_step']:9.2f} ms/step  peak RSS {result['peak_rss_mib']:7.0f} MiB "
        f"(+{result['peak_increase_mib']:.0f})",
        flush=True,
    )
    return result


def write_markdown(report: dict, path: Path) -> None:
    setup = report["setup"]
    lines = [
        f"PixelSNAIL sampling of {setup['spatial_dims']}-D codes, {setup['num_samples']} samples, "
        f"K = {setup['num_codes']}, {setup['channels']} "
        f"channels, {setup['stages']} stages x {setup['blocks']} gated residual blocks, attention after every stage; "
        f"{setup['device']}, {setup['threads']} thread(s), torch {setup['torch']}.",
        "",
        f"Uncached times: the first {setup['uncached_steps']} steps timed, extrapolated to all h*w steps (an uncached "
        "step runs the same full forward at every position). Peak memory: peak resident set size of the "
        "measuring process (`getrusage` ru_maxrss), and its increase over the resident size just before sampling.",
        "",
        "| codes | mode | total s | samples/s | ms/step | peak RSS MiB | increase MiB | load avg |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["runs"]:
        mode = r["mode"] + (f" ({r['steps_timed']} steps timed)" if r["extrapolated"] else "")
        lines.append(
            f"| {r['label']} | {mode} | {r['seconds']:.2f} | {r['samples_per_second']:.4f} | "
            f"{r['ms_per_step']:.2f} | {r['peak_rss_mib']:.0f} | {r['peak_increase_mib']:.0f} | "
            f"{r['load_average_before']:.1f} |"
        )
    lines.append("")
    for size, speedup in report["speedup"].items():
        target = " (target >= 20x)" if size == "32x32" else ""
        lines.append(f"Cached speed-up over `use_cache=False` at {size}: **{speedup:.1f}x**{target}")
    agree = "yes" if report["codes_agree"] else "NO"
    lines += ["", f"Cached and uncached codes agree on every timed step (same seed): {agree}"]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spatial-dims", type=int, choices=[1, 2], default=2, help="code maps (2) or sequences (1)")
    parser.add_argument(
        "--sizes", type=int, nargs="+", help="map sides (default 8 16 32) or sequence lengths (default 64 256 1024)"
    )
    parser.add_argument("--num-samples", type=int, default=16)
    parser.add_argument("--num-codes", type=int, default=512)
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--stages", type=int, default=4)
    parser.add_argument("--blocks", type=int, default=2, help="gated residual blocks per stage")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: the CPU is shared)")
    parser.add_argument("--uncached-steps", type=int, default=64, help="uncached steps timed before extrapolating")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    # Internal: one measurement in a fresh process.
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["cached", "uncached"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sizes is None:
        args.sizes = [64, 256, 1024] if args.spatial_dims == 1 else [8, 16, 32]

    if args.worker:
        print(json.dumps(worker(args)))
        return

    import torch

    runs = []
    for size in args.sizes:
        for mode in ("cached", "uncached"):
            runs.append(run_child(args, size, mode))
    speedup, codes_agree = {}, True
    for size in args.sizes:
        cached, uncached = (
            next(r for r in runs if r["size"] == size and r["mode"] == m) for m in ("cached", "uncached")
        )
        speedup[size_label(args.spatial_dims, size)] = uncached["seconds"] / cached["seconds"]
        codes_agree &= cached["first_codes"] == uncached["first_codes"]
    for run in runs:
        run.pop("first_codes")
    report = {
        "setup": {
            "spatial_dims": args.spatial_dims,
            "num_samples": args.num_samples,
            "num_codes": args.num_codes,
            "channels": args.channels,
            "stages": args.stages,
            "blocks": args.blocks,
            "attention": "every stage",
            "threads": args.threads,
            "uncached_steps": args.uncached_steps,
            "device": args.device if args.device != "cpu" else f"cpu ({platform.processor() or platform.machine()})",
            "torch": torch.__version__,
            "peak_memory_measure": "ru_maxrss of a fresh process per (size, mode); increase over RSS before sampling",
        },
        "runs": runs,
        "speedup": speedup,
        "codes_agree": codes_agree,
    }
    args.output.mkdir(parents=True, exist_ok=True)
    name = "pixelsnail-1d" if args.spatial_dims == 1 else "pixelsnail"
    (args.output / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    write_markdown(report, args.output / f"{name}.md")
    print((args.output / f"{name}.md").read_text())


if __name__ == "__main__":
    main()
