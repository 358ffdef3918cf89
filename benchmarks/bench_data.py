"""Data pipeline throughput against what training consumes, at the demo configuration, side by side in one run.

Measures, on real Fashion-MNIST parquet shards:
  * pipeline: images/s the streamed loader delivers (parquet stream, shuffle buffer, decode, image processor,
    batching) with its DataLoader workers, nothing else running;
  * training: images/s of the demo VQ-VAE's training step (forward, backward, Adam) on in-memory batches;
  * end to end: images/s of the training step fed by the real loader, i.e. what a run actually gets.
Target: the pipeline delivers at least 2x what training consumes. Also copies the main job's wall time and peak
memory from the last `make demo` (outputs/demo/timings.json) if there is one. Writes benchmarks/results/data.json
and data.md.

    python benchmarks/bench_data.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from hf_vqvae import VQVAEConfig, VQVAEImageProcessor, VQVAEModel
from hf_vqvae.data import ImageCollator, load_stream

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"


def demo_config() -> dict:
    spec = importlib.util.spec_from_file_location("run_demo", REPO / "scripts" / "run_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DEFAULT_CONFIG


def images_per_second(batches, count: int, warmup: int, step=None) -> float:
    """Consumes `warmup` then `count` batches (calling `step` on each); images per second over the timed ones."""
    iterator = iter(batches)
    for _ in range(warmup):
        batch = next(iterator)
        if step:
            step(batch)
    images, start = 0, time.perf_counter()
    for _ in range(count):
        batch = next(iterator)
        if step:
            step(batch)
        images += len(batch["pixel_values"])
    return images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=REPO / "outputs" / "bench-data" / "fashion-mnist")
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if not (args.dataset / "dataset_info.json").exists():
        subprocess.run(
            [sys.executable, str(REPO / "scripts" / "prepare_data.py"), "--source", "fashion-mnist",
             "--output_dir", str(args.dataset), "--train_size", "20000", "--test_size", "1000"],
            check=True,
        )  # fmt: skip
    demo = demo_config()["vqvae"]
    config = VQVAEConfig(**demo["model_config"])
    batch_size = demo["per_device_train_batch_size"]
    processor = VQVAEImageProcessor.for_model_size(config.image_size, num_channels=config.in_channels)

    def loader() -> DataLoader:
        stream = load_stream(str(args.dataset), "train", seed=0, shuffle_buffer=1000, image_column="image")
        return DataLoader(stream, batch_size=batch_size, collate_fn=ImageCollator(processor), num_workers=args.workers)

    model = VQVAEModel(config).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=demo["learning_rate"])

    def train_step(batch: dict) -> None:
        loss = model(pixel_values=batch["pixel_values"]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    in_memory = [next(iter(loader()))] * (args.batches + args.warmup)
    result = {
        "dataset": str(args.dataset),
        "batch_size": batch_size,
        "workers": args.workers,
        "threads": args.threads,
        "pipeline_images_per_s": images_per_second(loader(), args.batches, args.warmup),
        "training_images_per_s": images_per_second(in_memory, args.batches, args.warmup, train_step),
        "end_to_end_images_per_s": images_per_second(loader(), args.batches, args.warmup, train_step),
    }
    result["pipeline_over_training"] = result["pipeline_images_per_s"] / result["training_images_per_s"]
    timings = REPO / "outputs" / "demo" / "timings.json"
    if timings.exists():
        result["main_job"] = json.loads(timings.read_text())

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "data.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"Data pipeline vs training at the demo config (Fashion-MNIST 28x28, batch {batch_size}, "
        f"{args.workers} DataLoader workers, {args.threads} torch threads), {args.batches} batches each.",
        "",
        "| measurement | images/s |",
        "| --- | ---: |",
        f"| pipeline alone (stream, shuffle, decode, processor) | {result['pipeline_images_per_s']:.0f} |",
        f"| training step alone (in-memory batches) | {result['training_images_per_s']:.0f} |",
        f"| training fed by the pipeline | {result['end_to_end_images_per_s']:.0f} |",
        "",
        f"pipeline / training: **{result['pipeline_over_training']:.2f}x** (target >= 2x)",
    ]
    if "main_job" in result:
        job = result["main_job"]
        lines += [
            "",
            f"Main job (`make demo`, last run): {job['total'] / 60:.1f} min wall time, peak memory "
            f"{job.get('peak_rss_mib', float('nan')):.0f} MiB (largest stage process).",
        ]
    (RESULTS / "data.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
