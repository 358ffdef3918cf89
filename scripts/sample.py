"""Samples images from trained priors: codes by ancestral sampling (top prior, then each lower prior conditioned
on the codes above), decoded by the VQ-VAE(-2) they were trained on, written as a PNG grid.

    python scripts/sample.py --prior outputs/prior --num_samples 64 --output outputs/samples.png
    python scripts/sample.py --prior outputs/top_prior outputs/bottom_prior --class_labels 3 --top_k 50
    python scripts/sample.py --prior outputs/guided_prior --class_labels 7 --guidance_scale 3  # classifier-free

`--prior` and `--vq_model` take local folders or Hub ids; `--vq_model` defaults to the model the first prior's
codes came from (its `codes_info.json`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from transformers import AutoModel

from hf_vqvae import PixelSNAILModel
from hf_vqvae.codes_info import CodesInfo
from hf_vqvae.images import save_sample_grid
from hf_vqvae.loading import load_processor
from hf_vqvae.sampling import class_labels_for, generate_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prior", nargs="+", required=True, help="prior(s), top level first")
    parser.add_argument("--vq_model", default=None, help="the VQ-VAE(-2) that decodes the codes")
    parser.add_argument("--num_samples", type=int, default=16)
    parser.add_argument("--class_labels", type=int, nargs="*", default=None, help="one label, or one per sample")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top_k", type=int, default=None)
    parser.add_argument(
        "--guidance_scale",
        type=float,
        default=None,
        help="classifier-free guidance of class-conditional priors trained with --class_dropout (1: none, 0: "
        "unconditional, above 1: more typical of the class)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no_cache", action="store_true", help="re-run the whole network at every step (slow)")
    parser.add_argument("--columns", type=int, default=8)
    parser.add_argument("--output", type=Path, default=Path("samples.png"))
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    priors = [PixelSNAILModel.from_pretrained(path).to(device).eval() for path in args.prior]
    vq_source = args.vq_model or CodesInfo.read(args.prior[0], repo_type="model").vq_model
    vq_model = AutoModel.from_pretrained(vq_source).to(device).eval()
    try:  # the given labels checked, or every class in turn
        labels = class_labels_for(priors, args.num_samples, args.class_labels or None, device)
    except ValueError as error:
        parser.error(f"--class_labels: {error}")

    try:
        pixels = generate_images(
            priors,
            vq_model,
            args.num_samples,
            class_labels=labels,
            temperature=args.temperature,
            top_k=args.top_k,
            seed=args.seed,
            use_cache=not args.no_cache,
            guidance_scale=args.guidance_scale,
            progress=True,
        )
    except ValueError as error:  # sampling options these priors cannot take (e.g. guidance without a null class)
        parser.error(str(error))
    processor = load_processor(vq_source, vq_model.config)
    save_sample_grid(processor.postprocess(pixels), args.output, columns=args.columns)
    record = {"output": str(args.output), "priors": args.prior, "vq_model": vq_source, "seed": args.seed}
    record["class_labels"] = labels.tolist() if labels is not None else None
    record["guidance_scale"] = args.guidance_scale
    print(json.dumps(record))


if __name__ == "__main__":
    main()
