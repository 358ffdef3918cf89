"""The package's CUDA and bf16 paths, checked on a GPU (CI has none, so this is a benchmark-style command, not a test):

    python benchmarks/cuda_check.py --device cuda

* Cached sampling equals the full re-run on the GPU, for both prior architectures (PixelSNAIL and the gated
  PixelCNN), class-conditional with classifier-free guidance, and for the WaveNet's Fast WaveNet queues: the share of
  identical codes / samples, once with TF32 convolutions (PyTorch's default on Ampere and later) and once without.
* A VQ-VAE and a prior under bf16 autocast against float32: relative error of the outputs, and finite losses.
* A few bf16 optimizer steps of each (the loss must fall).

Writes a JSON report (`--output`) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from bench_wavenet import build

from hf_vqvae import AudioVQVAEConfig, PixelSNAILConfig, PixelSNAILModel, VQVAEConfig, VQVAEModel

PRIORS = {
    "pixelsnail": {"architecture": "pixelsnail", "hidden_channels": 48, "num_stages": 2, "num_residual_blocks": 1},
    "gated_pixelcnn": {"architecture": "gated_pixelcnn", "hidden_channels": 48, "num_layers": 4},
}


def relative_error(output: torch.Tensor, reference: torch.Tensor) -> float:
    return float((output.float() - reference.float()).norm() / reference.float().norm())


def prior(architecture: str, device: str) -> PixelSNAILModel:
    torch.manual_seed(0)
    config = PixelSNAILConfig(num_embeddings=128, latent_height=7, latent_width=7, num_classes=10, class_dropout=0.1,
                              **PRIORS[architecture])  # fmt: skip
    return PixelSNAILModel(config).to(device).eval()


def sampling_agreement(model: PixelSNAILModel, device: str) -> dict[str, float]:
    """Share of codes the cached path samples as the full re-run does (same generator), with guidance."""
    labels = torch.arange(64, device=device) % 10
    draws = {}
    for use_cache in (True, False):
        generator = torch.Generator(device=device).manual_seed(0)
        start = time.perf_counter()
        draws[use_cache] = model.generate(64, class_labels=labels, generator=generator, use_cache=use_cache,
                                          guidance_scale=2.0)  # fmt: skip
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        draws[f"seconds_{use_cache}"] = time.perf_counter() - start
    return {"identical_codes": float((draws[True] == draws[False]).float().mean()),
            "cached_seconds": draws["seconds_True"], "full_seconds": draws["seconds_False"]}  # fmt: skip


def wavenet_agreement(device: str) -> dict[str, float]:
    config = AudioVQVAEConfig()
    net = build(config).to(device)  # bench_wavenet's decoder: the audio VQ-VAE's default WaveNet, seeded
    local = torch.randn(2, config.condition_channels, 2, device=device)
    speaker = torch.randn(2, config.speaker_embedding_dim, device=device)
    outputs = {}
    for use_cache in (True, False):
        generator = torch.Generator(device=device).manual_seed(0)
        with torch.no_grad():
            outputs[use_cache] = net.generate(local, speaker, generator=generator, use_cache=use_cache)
    return {"identical_samples": float((outputs[True] == outputs[False]).float().mean()),
            "samples": outputs[True].numel()}  # fmt: skip


def bf16_steps(model: torch.nn.Module, batch: dict, device: str, steps: int = 30) -> dict[str, float]:
    """Loss of the first and last of `steps` AdamW steps on one batch under bf16 autocast."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16):
            loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return {"first_loss": losses[0], "last_loss": losses[-1], "finite": all(map(math.isfinite, losses))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--output", type=Path, default=Path("cuda_check.json"))
    parser.add_argument("--steps", type=int, default=30, help="bf16 optimizer steps per model")
    parser.add_argument("--skip_sampling", action="store_true", help="only the bf16 checks")
    args = parser.parse_args()
    device = args.device
    report: dict = {"device": torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu",
                    "torch": torch.__version__}  # fmt: skip
    for tf32 in () if args.skip_sampling else (True, False):
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = tf32
        key = "tf32" if tf32 else "fp32"
        for architecture in PRIORS:
            report[f"{architecture}_cached_vs_full_{key}"] = sampling_agreement(prior(architecture, device), device)
            print(f"{architecture}_cached_vs_full_{key}", report[f"{architecture}_cached_vs_full_{key}"], flush=True)
        report[f"wavenet_cached_vs_full_{key}"] = wavenet_agreement(device)
        print(f"wavenet_cached_vs_full_{key}", report[f"wavenet_cached_vs_full_{key}"], flush=True)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False

    torch.manual_seed(0)
    vq = VQVAEModel(VQVAEConfig(in_channels=1, image_size=28, num_embeddings=128, embedding_dim=32)).to(device).eval()
    images = torch.rand(32, 1, 28, 28, device=device) * 2 - 1
    with torch.no_grad():
        reference = vq(images).reconstruction
        with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16):
            output = vq(images)
    report["vqvae_bf16_vs_fp32"] = {"relative_error": relative_error(output.reconstruction, reference),
                                    "loss_finite": bool(torch.isfinite(output.loss))}  # fmt: skip
    report["vqvae_bf16_steps"] = bf16_steps(vq, {"pixel_values": images}, device, args.steps)
    for architecture in PRIORS:
        model = prior(architecture, device)
        codes = torch.randint(0, 128, (32, 7, 7), device=device)
        labels = torch.arange(32, device=device) % 10
        with torch.no_grad():
            reference = model(codes=codes, class_labels=labels).logits
            with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16):
                output = model(codes=codes, class_labels=labels).logits
        report[f"{architecture}_bf16_vs_fp32"] = {"relative_error": relative_error(output, reference)}
        report[f"{architecture}_bf16_steps"] = bf16_steps(
            model, {"codes": codes, "class_labels": labels, "labels": codes}, device, args.steps
        )
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    for key, value in report.items():
        print(f"{key:42s} {value}")


if __name__ == "__main__":
    main()
