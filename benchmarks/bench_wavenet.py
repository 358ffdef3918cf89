"""WaveNet generation: Fast WaveNet (per-layer queues, `use_cache=True`) against the naive re-run
(`use_cache=False`: the whole network over the whole generated prefix at every sample), side by side in one
process, and the real-time factor of the cached path.

Model: the audio VQ-VAE's default decoder (`AudioVQVAEConfig()`: 20 layers in two cycles of dilations 1..512,
64 residual / 64 gate / 128 skip channels, receptive field 2,047 samples), random weights (speed does not depend on
them), conditioned on random latents and a speaker vector, batch 1, 16 kHz.

* Cached: `WaveNet.generate(use_cache=True)` for `--cached_samples` samples, end to end.
* Naive: one naive step at prefix length t costs one forward pass over t samples. Steps are timed at the receptive
  field and at longer prefixes (`--naive_lengths`), a line `a + b t` is fitted, and the naive time of generating
  `--seconds` of audio is its sum over t = 1 .. T. Generating the whole of it naively would take hours, which is the
  point. The first `--check_samples` samples of both paths are also generated in full and must be identical (same
  seed).
* Other jobs share the machine, so both are measured in `--rounds` interleaved rounds and each quantity is the
  fastest round's (the least disturbed one); the medians are in the JSON.
* The speed-up is reported at the length of the audio (naive total / cached total), and per step at a prefix of one
  receptive field (what a re-run over only the receptive field would cost; a lower bound for any naive scheme).

    python benchmarks/bench_wavenet.py --threads 1

Writes benchmarks/results/wavenet.json and benchmarks/results/wavenet.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from hf_vqvae import AudioVQVAEConfig
from hf_vqvae.wavenet import WaveNet, sample_classes

RESULTS = Path(__file__).parent / "results"


def build(config: AudioVQVAEConfig) -> WaveNet:
    torch.manual_seed(0)
    return WaveNet(
        num_classes=config.mu_law_channels,
        residual_channels=config.wavenet_residual_channels,
        gate_channels=config.wavenet_gate_channels,
        skip_channels=config.wavenet_skip_channels,
        kernel_size=config.wavenet_kernel_size,
        num_layers=config.wavenet_num_layers,
        dilation_cycle=config.wavenet_dilation_cycle,
        local_channels=config.condition_channels,
        global_channels=config.speaker_embedding_dim,
        upsample_factor=config.downsample_factor,
    ).eval()


@torch.no_grad()
def naive_step_seconds(net: WaveNet, local, speaker, length: int) -> float:
    """Time of one naive step at prefix `length`: the full forward over `length` samples, then a draw."""
    prefix = torch.randint(0, 256, (1, length))
    start = time.perf_counter()
    logits = net(prefix, local, speaker)[:, :, -1]
    sample_classes(logits, 1.0, torch.Generator().manual_seed(0))
    return time.perf_counter() - start


def cached_sample_seconds(net: WaveNet, local, speaker, count: int) -> float:
    start = time.perf_counter()
    net.generate(local, speaker, num_samples=count, generator=torch.Generator().manual_seed(3))
    return (time.perf_counter() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=1.0, help="audio length the speed-up is reported for")
    parser.add_argument("--cached_samples", type=int, default=2048, help="per round")
    parser.add_argument("--naive_lengths", type=int, nargs="+", default=[8192, 16000], help="besides the RF")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--check_samples", type=int, default=128)
    parser.add_argument("--output", type=Path, default=RESULTS / "wavenet")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    config = AudioVQVAEConfig()
    net = build(config)
    rate, factor = config.sampling_rate, config.downsample_factor
    total = int(args.seconds * rate)
    frames = -(-max(total, args.cached_samples, *args.naive_lengths) // factor)
    generator = torch.Generator().manual_seed(1)
    local = torch.randn(1, config.condition_channels, frames, generator=generator)
    speaker = torch.randn(1, config.speaker_embedding_dim, generator=generator)

    # Both paths on the same first samples: identical waveforms.
    check_local = local[:, :, : -(-args.check_samples // factor)]
    cached = net.generate(check_local, speaker, generator=torch.Generator().manual_seed(2), use_cache=True)
    naive = net.generate(check_local, speaker, generator=torch.Generator().manual_seed(2), use_cache=False)
    identical = bool(torch.equal(cached, naive))

    receptive_field = net.receptive_field
    lengths = [receptive_field, *args.naive_lengths]
    rounds: dict[str, list[float]] = {"cached": [], **{str(n): [] for n in lengths}}
    for _ in range(args.rounds):
        rounds["cached"].append(cached_sample_seconds(net, local, speaker, args.cached_samples))
        for n in lengths:
            rounds[str(n)].append(naive_step_seconds(net, local, speaker, n))
    cached_per_sample = min(rounds["cached"])
    naive_steps = {n: min(rounds[str(n)]) for n in lengths}
    mean_n, mean_s = statistics.fmean(lengths), statistics.fmean(naive_steps.values())
    slope = sum((n - mean_n) * (s - mean_s) for n, s in naive_steps.items()) / sum((n - mean_n) ** 2 for n in lengths)
    intercept = mean_s - slope * mean_n
    naive_total = total * intercept + slope * total * (total + 1) / 2
    cached_total = cached_per_sample * total
    naive_at_rf = naive_steps[receptive_field]

    results = {
        "command": f"python benchmarks/bench_wavenet.py --threads {args.threads}",
        "note": "CPU, measured while other agents' jobs shared the machine: absolute times are noisy, the ratios "
        "come from one process, side by side",
        "machine": {
            "cpu_count": os.cpu_count(),
            "threads": args.threads,
            "load_average": os.getloadavg(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "model": {
            "layers": config.wavenet_num_layers,
            "residual_channels": config.wavenet_residual_channels,
            "gate_channels": config.wavenet_gate_channels,
            "skip_channels": config.wavenet_skip_channels,
            "receptive_field": receptive_field,
            "parameters": sum(p.numel() for p in net.parameters()),
        },
        "identical_first_samples": {"samples": args.check_samples, "identical": identical},
        "cached_ms_per_sample": cached_per_sample * 1e3,
        "cached_samples_per_second": 1 / cached_per_sample,
        "real_time_factor": cached_per_sample * rate,
        "naive_ms_per_step": {str(n): s * 1e3 for n, s in naive_steps.items()},
        "median_ms": {key: statistics.median(values) * 1e3 for key, values in rounds.items()},
        "rounds": args.rounds,
        "naive_ms_per_step_at_receptive_field": naive_at_rf * 1e3,
        "audio_seconds": args.seconds,
        "cached_seconds": cached_total,
        "naive_seconds_estimated": naive_total,
        "speedup_total": naive_total / cached_total,
        "speedup_per_step_at_receptive_field": naive_at_rf / cached_per_sample,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    rows = [
        "| quantity | value |",
        "|---|---|",
        f"| cached (Fast WaveNet) | {results['cached_ms_per_sample']:.2f} ms/sample, "
        f"{results['cached_samples_per_second']:.0f} samples/s |",
        f"| real-time factor (generation time / audio time, 16 kHz) | {results['real_time_factor']:.1f} |",
        *(
            f"| naive step at prefix {n}{' (one receptive field)' if n == receptive_field else ''} | "
            f"{s * 1e3:.1f} ms |"
            for n, s in naive_steps.items()
        ),
        f"| {args.seconds:g} s of audio: cached / naive (fitted) | {cached_total:.1f} s / {naive_total:.0f} s |",
        f"| **speed-up, {args.seconds:g} s of audio** | **{results['speedup_total']:.0f}x** |",
        f"| speed-up per step vs a re-run over one receptive field | "
        f"{results['speedup_per_step_at_receptive_field']:.0f}x |",
        f"| first {args.check_samples} samples identical (same seed) | {identical} |",
    ]
    header = (
        f"# WaveNet generation, {args.threads} thread(s), batch 1, fastest of {args.rounds} rounds\n\n"
        f"`{results['command']}` "
        f"(load average {results['machine']['load_average'][0]:.1f} on {os.cpu_count()} cores: {results['note']}).\n"
    )
    args.output.with_suffix(".md").write_text(header + "\n" + "\n".join(rows) + "\n")
    print(header + "\n" + "\n".join(rows))


if __name__ == "__main__":
    main()
