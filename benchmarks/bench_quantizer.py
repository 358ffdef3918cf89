"""Quantizer forward + backward in training mode (EMA), side by side in one run.

Compares, on the same z of shape (64, 64, 16, 16) and K = 512:
  * hf_vqvae's `VectorQuantizer` (EMA, decay 0.99, commitment 0.25, no k-means, no restarts);
  * optionally (`--baseline PATH`) the same class from another revision's quantizer.py, on the same z: the check that
    a change did not slow the 2-D path down, measured in the same run;
  * (a) `vector_quantize_pytorch.VectorQuantize` with matched settings (EMA decay 0.99, commitment 0.25, no k-means,
    rotation trick off, straight-through);
  * (b) the bare floor: distance matmul + argmin on the same vectors, already flattened, in two formulations
    (addmm with the ||e||^2 bias, and one plain matmul of augmented factors); the faster one is the floor.
    The blocked search hf_vqvae itself runs on CPU is reported too, as the floor of what remains.
The same 64 * 16 * 16 vectors are also quantized as a 1-D sequence (64, 64, 256) and a 3-D clip (64, 64, 4, 8, 8),
by hf_vqvae and by vector-quantize-pytorch (`channel_last=False` and `accept_3d_fmap=True`); the bare floor is the
same for every layout, since it starts from the flattened vectors.
All are timed interleaved (round-robin, in a new random order each round) so machine noise hits them alike and no
one always runs right after another; the table reports medians and the ratios, with the interquartile range as a
measure of the noise. Writes benchmarks/results/quantizer-threads<N>.json and .md (one pair per thread count).

    python benchmarks/bench_quantizer.py
    # against an earlier revision (92f09f5: the last 2-D-only quantizer), in the same run:
    git show 92f09f5:src/hf_vqvae/quantizer.py > /tmp/baseline_quantizer.py
    python benchmarks/bench_quantizer.py --threads 1 --baseline /tmp/baseline_quantizer.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import torch

from hf_vqvae import VectorQuantizer

RESULTS = Path(__file__).parent / "results"
# Spatial shapes with the same number of positions as the 2-D `--size` x `--size` map.
LAYOUTS = {"1d": lambda size: (size * size,), "3d": lambda size: (4, size // 2, size // 2)}


def load_baseline(path: str) -> type:
    """`VectorQuantizer` from another revision's quantizer.py, imported inside the hf_vqvae package so that its
    relative imports resolve to today's modules."""
    spec = importlib.util.spec_from_file_location("hf_vqvae._baseline_quantizer", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.VectorQuantizer


def make_ours(dim: int, codes: int, quantizer_class: type = VectorQuantizer) -> callable:
    quantizer = quantizer_class(codes, dim, commitment_cost=0.25, decay=0.99, kmeans_init=False, dead_code_threshold=0)
    quantizer.train()

    def step(z: torch.Tensor, grad: torch.Tensor) -> None:
        out = quantizer(z)
        torch.autograd.backward([out.quantized, out.loss], [grad, torch.ones_like(out.loss)])

    return step


def make_lucidrains(dim: int, codes: int, spatial_dims: int = 2) -> callable:
    from vector_quantize_pytorch import VectorQuantize

    # Channels-first input of each rank: (B, D, N) is `channel_last=False`, images and clips have their own flags.
    layout = {1: {"channel_last": False}, 2: {"accept_image_fmap": True}, 3: {"accept_3d_fmap": True}}[spatial_dims]
    quantizer = VectorQuantize(
        dim=dim,
        codebook_size=codes,
        decay=0.99,
        commitment_weight=0.25,
        kmeans_init=False,
        rotation_trick=False,
        straight_through=False,
        threshold_ema_dead_code=0,
        **layout,
    )
    quantizer.train()

    def step(z: torch.Tensor, grad: torch.Tensor) -> None:
        quantized, _, loss = quantizer(z)
        torch.autograd.backward([quantized, loss.sum()], [grad, torch.ones_like(loss.sum())])

    return step


def make_bare_addmm(dim: int, codes: int, z: torch.Tensor) -> callable:
    """`||e||^2 - 2 z.e` by addmm, argmin; z already flattened to (N, D)."""
    codebook = torch.randn(codes, dim)
    flat = z.detach().permute(0, 2, 3, 1).reshape(-1, dim).contiguous()
    codebook_sq = codebook.pow(2).sum(1)

    def step(_z: torch.Tensor, _grad: torch.Tensor) -> None:
        torch.addmm(codebook_sq, flat, codebook.t(), beta=1.0, alpha=-2.0).argmin(dim=1)

    return step


def make_bare_augmented(dim: int, codes: int, z: torch.Tensor) -> callable:
    """The same distances as one plain matmul, `[z, 1] . [-2e, ||e||^2]`, argmin; both factors prepared in advance."""
    codebook = torch.randn(codes, dim)
    flat = torch.cat([z.detach().permute(0, 2, 3, 1).reshape(-1, dim), torch.ones(z.numel() // dim, 1)], 1)
    augmented = torch.cat([-2 * codebook, codebook.pow(2).sum(1, keepdim=True)], 1)

    def step(_z: torch.Tensor, _grad: torch.Tensor) -> None:
        torch.mm(flat, augmented.t()).argmin(dim=1)

    return step


def make_bare_blocked(dim: int, codes: int, z: torch.Tensor) -> callable:
    """The augmented matmul + argmin in cache-sized row blocks, as hf_vqvae does on CPU (reported, not the target)."""
    from hf_vqvae.quantizer import nearest_codes

    codebook = torch.randn(codes, dim)
    flat = torch.cat([z.detach().permute(0, 2, 3, 1).reshape(-1, dim), torch.ones(z.numel() // dim, 1)], 1)

    def step(_z: torch.Tensor, _grad: torch.Tensor) -> None:
        nearest_codes(flat, codebook)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--codes", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--baseline",
        help="quantizer.py of another revision (e.g. `git show HEAD:src/hf_vqvae/quantizer.py > /tmp/q.py`), "
        "timed on the 2-D input beside today's",
    )
    parser.add_argument("--no-nd", action="store_true", help="skip the 1-D and 3-D rows")
    args = parser.parse_args()
    if args.size % 2:
        parser.error("--size must be even (the 3-D clip is 4 x size/2 x size/2)")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    # One z per layout, all holding the same vectors in the same raster order.
    z = torch.randn(args.batch, args.dim, args.size, args.size, requires_grad=True)
    inputs = {"2d": z}
    if not args.no_nd:
        channels_last = z.detach().permute(0, 2, 3, 1)
        for layout, spatial in LAYOUTS.items():
            shape = (args.batch, *spatial(args.size), args.dim)
            inputs[layout] = channels_last.reshape(shape).movedim(-1, 1).contiguous().requires_grad_()
    grads = {layout: torch.randn_like(tensor) for layout, tensor in inputs.items()}

    # name -> (layout, step)
    candidates = {
        "hf_vqvae": ("2d", make_ours(args.dim, args.codes)),
        "bare_addmm_argmin": ("2d", make_bare_addmm(args.dim, args.codes, z)),
        "bare_augmented_mm_argmin": ("2d", make_bare_augmented(args.dim, args.codes, z)),
        "bare_blocked_mm_argmin": ("2d", make_bare_blocked(args.dim, args.codes, z)),
    }
    if args.baseline:
        candidates["baseline_hf_vqvae"] = ("2d", make_ours(args.dim, args.codes, load_baseline(args.baseline)))
    for layout in inputs.keys() - {"2d"}:
        candidates[f"hf_vqvae_{layout}"] = (layout, make_ours(args.dim, args.codes))
    try:
        for layout in inputs:
            suffix = "" if layout == "2d" else f"_{layout}"
            spatial_dims = inputs[layout].dim() - 2
            candidates[f"vector_quantize_pytorch{suffix}"] = (
                layout,
                make_lucidrains(args.dim, args.codes, spatial_dims),
            )
    except ImportError:
        print("vector-quantize-pytorch is not installed (pip install 'hf_vqvae[bench]'); skipping (a)")

    times: dict[str, list[float]] = {name: [] for name in candidates}
    # A new order every round: in a fixed order, whichever runs after vector-quantize-pytorch (which leaves caches
    # cold and allocator pages to refault) is penalised, and that bias is as large as the differences measured.
    order, shuffle = list(candidates), random.Random(0).shuffle
    for repeat in range(args.warmup + args.repeats):
        shuffle(order)
        for name in order:
            layout, step = candidates[name]
            inputs[layout].grad = None
            start = time.perf_counter()
            step(inputs[layout], grads[layout])
            elapsed = time.perf_counter() - start
            if repeat >= args.warmup:
                times[name].append(elapsed)

    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    minimums = {name: min(values) * 1000 for name, values in times.items()}
    # Interquartile range relative to the median: how much the machine's noise spread the runs.
    spreads = {}
    for name, values in times.items():
        quartiles = statistics.quantiles(values, n=4)
        spreads[name] = (quartiles[2] - quartiles[0]) * 1000 / medians[name]
    # The floor is the faster of the two bare formulations; it is the same for every layout.
    bare = min(medians["bare_addmm_argmin"], medians["bare_augmented_mm_argmin"])
    ratios = {}
    for layout in inputs:
        suffix = "" if layout == "2d" else f"_{layout}"
        ours = medians[f"hf_vqvae{suffix}"]
        ratios[layout] = {"hf_vqvae_over_bare": ours / bare}
        ratios[layout]["hf_vqvae_over_bare_blocked"] = ours / medians["bare_blocked_mm_argmin"]
        if f"vector_quantize_pytorch{suffix}" in medians:
            ratios[layout]["vector_quantize_pytorch_over_hf_vqvae"] = (
                medians[f"vector_quantize_pytorch{suffix}"] / ours
            )
    if args.baseline:
        ratios["baseline_2d"] = {"hf_vqvae_over_bare": medians["baseline_hf_vqvae"] / bare}
        ratios["baseline_2d"]["hf_vqvae_over_bare_blocked"] = (
            medians["baseline_hf_vqvae"] / medians["bare_blocked_mm_argmin"]
        )
        if "vector_quantize_pytorch" in medians:
            ratios["baseline_2d"]["vector_quantize_pytorch_over_hf_vqvae"] = (
                medians["vector_quantize_pytorch"] / medians["baseline_hf_vqvae"]
            )
    result = {
        "shape": [args.batch, args.dim, args.size, args.size],
        "shapes": {layout: list(tensor.shape) for layout, tensor in inputs.items()},
        "num_embeddings": args.codes,
        "threads": args.threads,
        "repeats": args.repeats,
        "baseline": args.baseline,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "median_ms": medians,
        # The fastest run: on a shared machine, the one least disturbed by other processes.
        "min_ms": minimums,
        "iqr_over_median": spreads,
        # The 2-D ratios under their original keys, so that earlier results compare directly.
        **ratios["2d"],
        "ratios": ratios,
    }
    if args.baseline:
        result["hf_vqvae_over_baseline"] = medians["hf_vqvae"] / medians["baseline_hf_vqvae"]
        result["hf_vqvae_over_baseline_min"] = minimums["hf_vqvae"] / minimums["baseline_hf_vqvae"]

    RESULTS.mkdir(exist_ok=True)
    stem = f"quantizer-threads{args.threads}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    shapes = ", ".join(f"{layout} {tuple(shape)}" for layout, shape in result["shapes"].items())
    lines = [
        f"Quantizer forward + backward, EMA training mode, z {shapes}, K = {args.codes}, "
        f"{args.threads} threads, median of {args.repeats} interleaved runs (random order each round).",
        "",
        "| implementation | input | median ms | IQR / median | min ms | relative to hf_vqvae (2-D) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, ms in sorted(medians.items(), key=lambda item: item[1]):
        layout = candidates[name][0] if not name.startswith("bare") else "flattened"
        lines.append(
            f"| {name} | {layout} | {ms:.2f} | {spreads[name]:.0%} | {minimums[name]:.2f} "
            f"| {ms / medians['hf_vqvae']:.2f}x |"
        )
    lines += [
        "",
        "| input | hf_vqvae / fastest bare matmul+argmin (target <= 1.3x) | hf_vqvae / blocked search (its own floor) "
        "| speed-up over vector-quantize-pytorch (target >= 4x) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for layout, row in ratios.items():
        speedup = row.get("vector_quantize_pytorch_over_hf_vqvae")
        speedup = f"{speedup:.2f}x" if speedup is not None else "n/a"
        label = "2d, baseline revision" if layout == "baseline_2d" else layout
        lines.append(
            f"| {label} | {row['hf_vqvae_over_bare']:.2f}x | {row['hf_vqvae_over_bare_blocked']:.2f}x | {speedup} |"
        )
    if args.baseline:
        lines += [
            "",
            f"hf_vqvae / baseline revision, 2-D: **{result['hf_vqvae_over_baseline']:.3f}x** on medians, "
            f"{result['hf_vqvae_over_baseline_min']:.3f}x on the fastest runs",
        ]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
