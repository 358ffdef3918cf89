"""Quantizer forward + backward in training mode (EMA), side by side in one run.

Compares, on the same z of shape (64, 64, 16, 16) and K = 512:
  * hf_vqvae's `VectorQuantizer` (EMA, decay 0.99, commitment 0.25, no k-means, no restarts);
  * (a) `vector_quantize_pytorch.VectorQuantize` with matched settings (EMA decay 0.99, commitment 0.25, no k-means,
    rotation trick off, straight-through);
  * (b) the bare floor: distance matmul + argmin on the same vectors, already flattened, in two formulations
    (addmm with the ||e||^2 bias, and one plain matmul of augmented factors); the faster one is the floor.
    The blocked search hf_vqvae itself runs on CPU is reported too, as the floor of what remains.
The three are timed interleaved (round-robin) so machine noise hits them alike; the table reports medians and the
ratios. Writes benchmarks/results/quantizer-threads<N>.json and .md (one pair per thread count).

    python benchmarks/bench_quantizer.py
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from hf_vqvae import VectorQuantizer

RESULTS = Path(__file__).parent / "results"


def make_ours(dim: int, codes: int) -> callable:
    quantizer = VectorQuantizer(codes, dim, commitment_cost=0.25, decay=0.99, kmeans_init=False, dead_code_threshold=0)
    quantizer.train()

    def step(z: torch.Tensor, grad: torch.Tensor) -> None:
        out = quantizer(z)
        torch.autograd.backward([out.quantized, out.loss], [grad, torch.ones_like(out.loss)])

    return step


def make_lucidrains(dim: int, codes: int) -> callable:
    from vector_quantize_pytorch import VectorQuantize

    quantizer = VectorQuantize(
        dim=dim,
        codebook_size=codes,
        decay=0.99,
        commitment_weight=0.25,
        kmeans_init=False,
        rotation_trick=False,
        straight_through=False,
        accept_image_fmap=True,
        threshold_ema_dead_code=0,
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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    z = torch.randn(args.batch, args.dim, args.size, args.size, requires_grad=True)
    grad = torch.randn_like(z)
    candidates = {
        "hf_vqvae": make_ours(args.dim, args.codes),
        "bare_addmm_argmin": make_bare_addmm(args.dim, args.codes, z),
        "bare_augmented_mm_argmin": make_bare_augmented(args.dim, args.codes, z),
        "bare_blocked_mm_argmin": make_bare_blocked(args.dim, args.codes, z),
    }
    try:
        candidates["vector_quantize_pytorch"] = make_lucidrains(args.dim, args.codes)
    except ImportError:
        print("vector-quantize-pytorch is not installed (pip install 'hf_vqvae[bench]'); skipping (a)")

    times: dict[str, list[float]] = {name: [] for name in candidates}
    for repeat in range(args.warmup + args.repeats):
        for name, step in candidates.items():
            z.grad = None
            start = time.perf_counter()
            step(z, grad)
            elapsed = time.perf_counter() - start
            if repeat >= args.warmup:
                times[name].append(elapsed)

    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    # The floor is the faster of the two bare formulations.
    bare = min(medians["bare_addmm_argmin"], medians["bare_augmented_mm_argmin"])
    result = {
        "shape": [args.batch, args.dim, args.size, args.size],
        "num_embeddings": args.codes,
        "threads": args.threads,
        "repeats": args.repeats,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "median_ms": medians,
        "hf_vqvae_over_bare": medians["hf_vqvae"] / bare,
        "hf_vqvae_over_bare_blocked": medians["hf_vqvae"] / medians["bare_blocked_mm_argmin"],
    }
    if "vector_quantize_pytorch" in medians:
        result["vector_quantize_pytorch_over_hf_vqvae"] = medians["vector_quantize_pytorch"] / medians["hf_vqvae"]

    RESULTS.mkdir(exist_ok=True)
    name = f"quantizer-threads{args.threads}"
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"Quantizer forward + backward, EMA training mode, z {tuple(result['shape'])}, K = {args.codes}, "
        f"{args.threads} threads, median of {args.repeats} interleaved runs.",
        "",
        "| implementation | median ms | relative to hf_vqvae |",
        "| --- | ---: | ---: |",
    ]
    for name, ms in sorted(medians.items(), key=lambda item: item[1]):
        lines.append(f"| {name} | {ms:.2f} | {ms / medians['hf_vqvae']:.2f}x |")
    lines += [
        "",
        f"hf_vqvae / fastest bare matmul+argmin: **{result['hf_vqvae_over_bare']:.2f}x** (target <= 1.3x)",
        f"hf_vqvae / the same search in cache-sized blocks (its own floor): "
        f"{result['hf_vqvae_over_bare_blocked']:.2f}x",
    ]
    if "vector_quantize_pytorch_over_hf_vqvae" in result:
        speedup = result["vector_quantize_pytorch_over_hf_vqvae"]
        lines.append(f"hf_vqvae speed-up over vector-quantize-pytorch: **{speedup:.2f}x** (target >= 4x)")
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
