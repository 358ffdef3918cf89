"""Samples images from trained priors: codes by ancestral sampling (top prior, then each lower prior conditioned
on the codes above), decoded by the VQ-VAE(-2) they were trained on, written as a PNG grid.

    python scripts/sample.py --prior outputs/prior --num_samples 64 --output outputs/samples.png
    python scripts/sample.py --prior outputs/top_prior outputs/bottom_prior --class_labels 3 --top_k 50

`--prior` and `--vq_model` take local folders or Hub ids; `--vq_model` defaults to the model the first prior's
codes came from (its `codes_info.json`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from transformers import AutoModel

from hf_vqvae import PixelSNAILModel, VQVAEImageProcessor
from hf_vqvae.sampling import decode_codes, sample_codes
from hf_vqvae.training import load_codes_info, save_sample_grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prior", nargs="+", required=True, help="prior(s), top level first")
    parser.add_argument("--vq_model", default=None, help="the VQ-VAE(-2) that decodes the codes")
    parser.add_argument("--num_samples", type=int, default=16)
    parser.add_argument("--class_labels", type=int, nargs="*", default=None, help="one label, or one per sample")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top_k", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no_cache", action="store_true", help="re-run the whole network at every step (slow)")
    parser.add_argument("--columns", type=int, default=8)
    parser.add_argument("--output", type=Path, default=Path("samples.png"))
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    priors = [PixelSNAILModel.from_pretrained(path).to(device).eval() for path in args.prior]
    vq_source = args.vq_model or load_codes_info(args.prior[0], repo_type="model")["vq_model"]
    vq_model = AutoModel.from_pretrained(vq_source).to(device).eval()

    labels = None
    if args.class_labels:
        values = args.class_labels * args.num_samples if len(args.class_labels) == 1 else args.class_labels
        if len(values) != args.num_samples:
            parser.error(f"--class_labels takes one label or {args.num_samples}, got {len(args.class_labels)}")
        labels = torch.tensor(values, device=device)
    elif any(prior.config.num_classes for prior in priors):
        num_classes = max(prior.config.num_classes or 0 for prior in priors)
        labels = torch.arange(args.num_samples, device=device) % num_classes  # every class in turn

    generator = torch.Generator(device=device).manual_seed(args.seed)
    codes = sample_codes(
        priors, args.num_samples, labels, args.temperature, args.top_k, generator, use_cache=not args.no_cache
    )
    pixels = decode_codes(vq_model, codes)
    processor = VQVAEImageProcessor.for_model_size(vq_model.config.image_size, vq_model.config.in_channels)
    save_sample_grid(processor.postprocess(pixels), args.output, columns=args.columns)
    record = {"output": str(args.output), "priors": args.prior, "vq_model": vq_source, "seed": args.seed}
    record["class_labels"] = labels.tolist() if labels is not None else None
    print(json.dumps(record))


if __name__ == "__main__":
    main()
