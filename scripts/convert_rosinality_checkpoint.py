"""Converts a rosinality/vq-vae-2-pytorch VQ-VAE checkpoint into a Hub-ready hf_vqvae `VQVAE2Model` folder:

    python scripts/convert_rosinality_checkpoint.py vqvae_560.pt outputs/vqvae2-ffhq-rosinality \\
        --image_size 256 --hub_model_id me/vqvae2-ffhq-rosinality --example_image face.png

The checkpoint is read with `torch.load(..., weights_only=True)`: no code in it runs. The folder holds the weights
(safetensors), config and modelling code, the image processor (their preprocessing: shortest-edge bilinear resize,
centre crop, [-1, 1]), the image pipelines, and a model card; `scripts/push_to_hub.py <folder> --hub_model_id ...`
pushes it. The converted model gives the same codes and reconstructions as the original code.
"""

from __future__ import annotations

import argparse
import sys

from hf_vqvae.convert import CheckpointError, write_rosinality_repo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="their VQ-VAE checkpoint (a state dict saved by train_vqvae.py)")
    parser.add_argument("output_dir", help="folder to write (must not exist, or be empty)")
    parser.add_argument(
        "--image_size", type=int, default=256, help="image side the model was trained on (their default: 256)"
    )
    parser.add_argument("--hub_model_id", default=None, help="Hub id the model card's snippets load (org/name)")
    parser.add_argument(
        "--license", default="other", help="Hub license id of the weights for the card (default: other, unknown)"
    )
    parser.add_argument("--example_image", default=None, help="an image whose reconstruction the card shows")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        repo_dir = write_rosinality_repo(
            args.checkpoint,
            args.output_dir,
            image_size=args.image_size,
            repo_id=args.hub_model_id,
            license=args.license,
            example_image=args.example_image,
        )
    except (CheckpointError, FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {repo_dir}: load it with AutoModel.from_pretrained({str(repo_dir)!r}) after `import hf_vqvae`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
