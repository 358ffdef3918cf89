"""Pushes an existing folder to the Hub as a ready-to-use repo, in ONE commit (weights, code, pipelines, processor
config, model card, images):

    python scripts/push_to_hub.py outputs/vqvae --hub_model_id me/vqvae-fashion-mnist        # a train.py run
    python scripts/push_to_hub.py outputs/demo --hub_model_id me/fashion-mnist-generation     # a run_demo.py folder
    python scripts/push_to_hub.py --vq_model outputs/vqvae2 --priors outputs/top outputs/bottom \\
        --hub_model_id me/vqvae2-generation                                                   # a generation bundle
    python scripts/push_to_hub.py --vq_model outputs/audio_vqvae --priors outputs/audio_prior \\
        --hub_model_id me/speech-generation                                   # a speech bundle (WAVs per speaker)
    python scripts/push_to_hub.py outputs/demo/hub --hub_model_id me/fashion-mnist-generation # a built repo folder

A training run (a folder with train_args.json) is packaged into `<folder>/hub` first, with a card filled from its
metrics; a run_demo.py folder (demo_config.yaml, vqvae/, prior/) and `--vq_model/--priors` are bundled into one
generation repo (`<folder>/hub`, or `--repo_dir`): of images, or of speech when the VQ model is an audio VQ-VAE
(samples per speaker as WAV files, the speakers and their data licences on the card); a folder with README.md and
config.json is pushed as it is.
`--dry_run` builds the folder and prints the commit without pushing.

`--space` also builds the folder's Hugging Face Space variant (`<repo_dir>-space`, or `--space_dir`: the Gradio demo
`app.py`, the model files, a README with the Space metadata and a pinned requirements.txt) and pushes it as a Gradio
Space to `--space_id` (default: `<hub_model_id>-demo`):

    python scripts/push_to_hub.py outputs/demo --hub_model_id me/fashion-mnist-generation --space
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from hf_vqvae.hub import (
    build_generation_repo,
    build_model_repo,
    default_commit_message,
    push_folder,
    repo_files,
)
from hf_vqvae.space import build_space, push_space


def build(args: argparse.Namespace) -> Path:
    """The repo folder to push, built from training outputs where the source is not one already."""
    if args.vq_model:
        repo_dir = Path(args.repo_dir or Path(args.vq_model).parent / "hub")
        return build_generation_repo(
            args.vq_model,
            args.priors,
            repo_dir,
            args.hub_model_id,
            license=args.license,
            num_samples=args.num_samples,
            seed=args.seed,
        )
    folder = Path(args.folder)
    if (folder / "train_args.json").exists():
        return build_model_repo(folder, Path(args.repo_dir or folder / "hub"), args.hub_model_id, license=args.license)
    if (folder / "demo_config.yaml").exists():
        demo = yaml.safe_load((folder / "demo_config.yaml").read_text())
        sample = demo.get("sample", {})
        return build_generation_repo(
            folder / "vqvae",
            [folder / "prior"],
            Path(args.repo_dir or folder / "hub"),
            args.hub_model_id,
            license=args.license,
            num_samples=sample.get("num_samples", args.num_samples),
            seed=sample.get("seed", args.seed),
            temperature=sample.get("temperature", 1.0),
            top_k=sample.get("top_k"),
        )
    if (folder / "README.md").exists() and (folder / "config.json").exists():
        if args.hub_model_id not in (folder / "README.md").read_text():
            print(
                f"warning: {folder / 'README.md'} never names {args.hub_model_id}: its usage snippets load another "
                "repo. Push the training folder instead to rebuild the card for this id.",
                file=sys.stderr,
            )
        return folder
    raise SystemExit(
        f"{folder} is neither a training run (train_args.json), a run_demo.py folder (demo_config.yaml) nor a "
        "built repo folder (README.md + config.json)"
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", help="a training run, a run_demo.py folder or a built repo folder")
    parser.add_argument("--hub_model_id", required=True, help="the repo to push to, org/name")
    parser.add_argument("--vq_model", help="generation bundle: the VQ-VAE(-2) training run")
    parser.add_argument("--priors", nargs="+", default=[], help="generation bundle: prior runs, top level first")
    parser.add_argument("--repo_dir", help="where to build the repo folder (default: <folder>/hub)")
    parser.add_argument("--license", default="apache-2.0", help="the weights' license, a Hub license id")
    parser.add_argument(
        "--num_samples", type=int, default=None,
        help="generation bundle: images in samples.png (default 16), or WAV clips of speech (default one per speaker)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="generation bundle: seed of the samples")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--token", default=None, help="a Hub token (default: the stored login)")
    parser.add_argument("--commit_message", default=None)
    parser.add_argument("--revision", default=None, help="branch to push to (default: main)")
    parser.add_argument("--create_pr", action="store_true", help="open a pull request instead of pushing to main")
    parser.add_argument("--dry_run", action="store_true", help="build the folder and show the commit, push nothing")
    parser.add_argument("--space", action="store_true", help="also build and push the folder's Gradio Space")
    parser.add_argument("--space_id", default=None, help="the Space, org/name (default: <hub_model_id>-demo)")
    parser.add_argument("--space_dir", default=None, help="where to build the Space (default: <repo_dir>-space)")
    args = parser.parse_args(argv)
    if bool(args.folder) == bool(args.vq_model):
        parser.error("give either a folder or --vq_model (with --priors)")
    if args.vq_model and not args.priors:
        parser.error("--vq_model needs --priors (top level first)")
    if "/" not in args.hub_model_id:
        parser.error("--hub_model_id must be a full repo id, org/name: the card's usage snippets name it")
    if args.space_id and "/" not in args.space_id:
        parser.error("--space_id must be a full Space id, org/name")

    repo_dir = build(args)
    message, description = default_commit_message(repo_dir)
    record = {
        "repo_dir": str(repo_dir),
        "hub_model_id": args.hub_model_id,
        "commit_message": args.commit_message or message,
        "files": [path.relative_to(repo_dir).as_posix() for path in repo_files(repo_dir)],
    }
    if args.space:  # built before anything is pushed: a folder with no demo (a prior alone) stops here
        space_dir = Path(args.space_dir or repo_dir.with_name(f"{repo_dir.name}-space"))
        try:
            space_dir = build_space(repo_dir, space_dir, license=args.license, model_id=args.hub_model_id)
        except ValueError as error:  # no demo serves the folder (a prior alone, a speech generation bundle)
            raise SystemExit(f"push_to_hub.py: error: --space: {error}") from None
        record.update(space_dir=str(space_dir), space_id=args.space_id or f"{args.hub_model_id}-demo")
        record["space_files"] = [path.relative_to(space_dir).as_posix() for path in repo_files(space_dir)]
    if not args.dry_run:
        commit = push_folder(
            repo_dir,
            args.hub_model_id,
            private=args.private or None,
            token=args.token,
            commit_message=args.commit_message,
            commit_description=description,
            revision=args.revision,
            create_pr=args.create_pr,
        )
        record["commit_url"] = getattr(commit, "commit_url", None)
        if args.space:
            commit = push_space(space_dir, record["space_id"], private=args.private or None, token=args.token)
            record["space_commit_url"] = getattr(commit, "commit_url", None)
    print(json.dumps(record, indent=2))
    return record


if __name__ == "__main__":
    main()
