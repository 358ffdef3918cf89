"""Evaluates a trained VQ-VAE, VQ-VAE-2 or PixelSNAIL prior on a dataset split, offline, and writes the metrics with
the model-index entries a Hub model card carries.

    python scripts/evaluate.py --model_name_or_path outputs/demo/vqvae --dataset outputs/demo/data \\
        --split test --output outputs/demo/vqvae/eval_results.json
    python scripts/evaluate.py --model_name_or_path outputs/demo/prior --dataset outputs/demo/codes \\
        --fid_samples 500 --output outputs/demo/prior/eval_results.json

* VQ-VAE / VQ-VAE-2 on an image dataset: MSE, PSNR, SSIM (pixels in [-1, 1]), codebook perplexity and fraction of
  codes used over the whole split (per level for VQ-VAE-2, top first).
* VQ-VAE / VQ-VAE-2 also: the decoder's `-log2 p(x | z)` per pixel dimension under a discretised Gaussian around the
  reconstruction (`reconstruction_bits_per_dim`, with its fitted `reconstruction_sigma`).
* PixelSNAIL prior on a code dataset from `scripts/extract_codes.py`: bits per code and bits per image dimension;
  with `--fid_samples N`, the FID of N generated images (codes sampled by the prior, decoded by the VQ model named in
  the prior's `codes_info.json`) against the first N images of the split of the image dataset the codes came from.
  For the prior of a one-level VQ-VAE, and for any prior of a VQ-VAE-2 given the chain of every level's prior
  (`--sampling_priors TOP BOTTOM`), also `nll_bound_bits_per_dim`: the VQ-VAE paper's bound on the images' NLL,
  `-log2 p(z) - log2 p(x | z)` per pixel dimension (the priors' bits, `all_levels_bits_per_dim` for a hierarchy,
  plus the VQ model's decoder bits on the same images; conditional on the class for a class-conditional prior).
  Unlike bits per code it compares priors over different codebooks: a codebook that uses few codes is cheap to model
  but pays in decoder bits.

Output JSON: `{"metrics": {...}, "model_index": [...], "evaluation": {...}}`; `model_index` is what goes under
`model-index:` in a card's metadata (`huggingface_hub.eval_results_to_model_index`). Written as
`<training run>/eval_results.json`, it is what the cards of `scripts/push_to_hub.py` report in place of the
end-of-training figures, as long as the weights are those it measured. `--model_name_or_path` and `--dataset` take Hub
ids as well as local folders.

A dataset without the `--split` asked for (a train-only folder) is evaluated on the examples training held out of its
train split: `--validation_split_percentage` of them by a hash of each example, by default the evaluated run's own
share (train_args.json), so exactly the examples that run never trained on. The log, the model-index and `evaluation`
name the split read and the held-out share.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModel

from hf_vqvae import PixelSNAILModel
from hf_vqvae.codes_info import CodesInfo, PriorColumns
from hf_vqvae.data import DatasetError, TooManyBadExamplesError, resolve_columns, under_rules
from hf_vqvae.evaluation import (
    code_loader,
    describe_dataset,
    evaluate_prior,
    evaluate_vq_model,
    image_loader,
    load_images,
    model_index_entries,
    prior_fid,
    weights_fingerprint,
)
from hf_vqvae.evaluation.data import EvalPart
from hf_vqvae.loading import load_processor, recorded_validation_percentage

VQ_MODEL_TYPES = ("vqvae", "vqvae2")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", required=True, help="VQ-VAE, VQ-VAE-2 or prior: folder or Hub id")
    parser.add_argument("--dataset", required=True, help="image dataset (VQ models) or code dataset (priors)")
    parser.add_argument(
        "--split",
        default="test",
        help="a split the dataset lacks is read as training chose its evaluation data: its validation (or test) "
        "split, else the --validation_split_percentage of its train split held out by a hash of each example",
    )
    parser.add_argument(
        "--validation_split_percentage",
        type=float,
        default=None,
        help="the held-out share of the train split of a dataset without an evaluation split (default: the "
        "evaluated run's own, from its train_args.json, so that exactly the examples it held out are read; else 5)",
    )
    parser.add_argument("--max_samples", type=int, default=None, help="first N examples of the split (default: all)")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--num_workers", type=int, default=0, help="DataLoader workers decoding images")
    parser.add_argument("--image_column", default=None, help="default: the dataset's Image column")
    parser.add_argument("--label_column", default=None, help="default: its ClassLabel column; 'none' for no labels")
    parser.add_argument(
        "--max_skipped_fraction", type=float, default=0.01, help="fail if more of the examples read are unusable"
    )
    parser.add_argument("--code_column", default=None, help="priors: default from the prior's codes_info.json")
    parser.add_argument("--condition_column", default=None, help="priors: default from the prior's codes_info.json")
    parser.add_argument("--fid_samples", type=int, default=0, help="priors: FID of N samples vs N held-out images")
    parser.add_argument(
        "--fid_dataset", default=None, help="image dataset of the FID references (default: codes_info.json's)"
    )
    parser.add_argument("--fid_split", default=None, help="split of the image dataset for FID (default: --split)")
    parser.add_argument(
        "--sampling_priors",
        nargs="+",
        default=None,
        help="priors, top first, that generate the FID samples (default: the evaluated prior alone; a conditional "
        "bottom prior needs the chain from the top)",
    )
    parser.add_argument("--vq_model", default=None, help="priors: the decoding VQ model (default: codes_info.json)")
    parser.add_argument(
        "--no_nll_bound", action="store_true", help="priors: skip the image NLL bound (a pass of the VQ model)"
    )
    parser.add_argument("--seed", type=int, default=0, help="FID sampling seed")
    parser.add_argument("--model_name", default=None, help="name in the model-index (default: folder / repo name)")
    parser.add_argument("--dataset_type", default=None, help="model-index dataset type (default: derived)")
    parser.add_argument("--dataset_name", default=None, help="model-index dataset name (default: derived)")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--trust_remote_code", action="store_true", help="for Hub models whose code is in the repo")
    parser.add_argument("--no_progress", action="store_true")
    parser.add_argument("--output", type=Path, default=None, help="JSON file to write (it is printed either way)")
    args = parser.parse_args(argv)
    if args.validation_split_percentage is None:
        args.validation_split_percentage = recorded_validation_percentage(args.model_name_or_path)
    elif not 0 <= args.validation_split_percentage < 100:
        parser.error(f"--validation_split_percentage must be in [0, 100), not {args.validation_split_percentage:g}")
    if args.fid_samples < 0 or args.fid_samples == 1:
        parser.error("--fid_samples must be 0 (no FID) or at least 2 (a covariance needs two images)")
    return args


def log_part(part: EvalPart, what: str) -> None:
    """Says which examples are evaluated (stderr: stdout is the result JSON)."""
    print(f"evaluate.py: {what} of {part.describe()}", file=sys.stderr)


def describe(task: str, dataset: str) -> dict:
    """The model-index task and dataset of results on `dataset`."""
    info = describe_dataset(dataset)
    return {"task": task, "dataset_type": info.model_index_type, "dataset_name": info.name}


def evaluate_vq(args, model) -> tuple[dict, dict, EvalPart]:
    processor = load_processor(args.model_name_or_path, model.config)
    image_column, label_column = resolve_columns(args.dataset, args.image_column, args.label_column)
    loader = image_loader(args.dataset, args.split, processor, args.batch_size, args.num_workers, image_column,
                          label_column, args.validation_split_percentage)  # fmt: skip
    log_part(loader.part, "evaluating the images")
    metrics = under_rules(
        lambda batches: evaluate_vq_model(
            model, batches, max_samples=args.max_samples, progress=not args.no_progress,
            max_skipped_fraction=args.max_skipped_fraction,
        ),
        loader, args.max_skipped_fraction, "images", loader.part.describe(),
    )  # fmt: skip
    return metrics, describe("reconstruction", args.dataset), loader.part


def _prior_columns(source: str) -> PriorColumns:
    """The code dataset columns a prior was trained on, from the codes_info.json train.py saved with it."""
    try:
        columns = CodesInfo.read(source, repo_type="model").prior
    except OSError:  # a prior saved without codes_info.json: the columns must come from the command line
        columns = None
    return columns or PriorColumns(code_column=None)


def score_prior(
    args, prior, data_info: CodesInfo, code_column: str, condition_column: str | None
) -> tuple[dict, EvalPart]:
    """`evaluate_prior` of `prior` on one level's codes (`code_column`) of the split, and what was read."""
    label_column = data_info.label_column if prior.config.num_classes else None
    loader = code_loader(args.dataset, args.split, code_column, condition_column, label_column, args.batch_size,
                         args.num_workers, args.validation_split_percentage)  # fmt: skip
    log_part(loader.part, f"scoring the {code_column!r} code maps")
    metrics = under_rules(
        lambda batches: evaluate_prior(
            prior, batches, data_info.image_dims, max_samples=args.max_samples, progress=not args.no_progress
        ),
        loader, args.max_skipped_fraction, "code maps", loader.part.describe(),
    )  # fmt: skip
    return metrics, loader.part


def evaluate_pixelsnail(args, prior, device: str) -> tuple[dict, dict, EvalPart]:
    data_info = CodesInfo.read(args.dataset)
    saved = _prior_columns(args.model_name_or_path)
    code_column = args.code_column or saved.code_column or "codes"
    condition_column = args.condition_column or saved.condition_column
    metrics, part = score_prior(args, prior, data_info, code_column, condition_column)
    # The evaluated prior is used as it is where the chain names it again.
    chain = [
        prior if path == args.model_name_or_path else PixelSNAILModel.from_pretrained(path).to(device).eval()
        for path in args.sampling_priors or [args.model_name_or_path]
    ]

    # The codes describe images of the source dataset: name that one in the model-index.
    image_dataset = args.fid_dataset or data_info.source_dataset or args.dataset
    described = describe("prior", image_dataset)
    # The image NLL bound needs a prior for every level: this one for a one-level VQ-VAE, the chain of
    # --sampling_priors (top first) for a hierarchy.
    num_levels = len(data_info.levels)
    if num_levels == 1 and prior.config.condition_num_embeddings is None:
        bound_priors = []  # this prior's own bits, already measured
    elif args.sampling_priors and len(args.sampling_priors) == num_levels > 1:
        bound_priors = list(zip(args.sampling_priors, chain))
    else:
        bound_priors = None
    nll_bound = bound_priors is not None and not args.no_nll_bound
    if not (args.fid_samples or nll_bound):
        return metrics, described, part
    if not args.fid_dataset and _missing_local_path(image_dataset):
        problem = f"the codes' source dataset {image_dataset!r} (codes_info.json) does not resolve from this folder"
        if args.fid_samples:
            raise SystemExit(f"{problem}: pass --fid_dataset")
        print(f"{problem}: no image NLL bound (pass --fid_dataset to name the images)", file=sys.stderr)
        return metrics, described, part
    vq_source = args.vq_model or data_info.vq_model
    vq_model = AutoModel.from_pretrained(vq_source, trust_remote_code=args.trust_remote_code).to(device).eval()
    processor = load_processor(vq_source, vq_model.config)

    image_column, label_column = resolve_columns(image_dataset, args.image_column, args.label_column)

    def images(split: str):
        loader = image_loader(image_dataset, split, processor, args.batch_size, args.num_workers, image_column,
                              label_column, args.validation_split_percentage)  # fmt: skip
        log_part(loader.part, "reading the images")
        return loader

    if nll_bound:
        # The decoder's bits on the images whose codes the prior was just scored on: the same split and count.
        decoder = evaluate_vq_model(
            vq_model, images(args.split), max_samples=args.max_samples, progress=not args.no_progress, ssim=False
        )
        if decoder["num_images"] != metrics["num_images"]:
            raise SystemExit(
                f"the image split has {decoder['num_images']} usable images but the code split "
                f"{metrics['num_images']} code maps: the bound needs both of the same images (--no_nll_bound skips it)"
            )
        code_bits = metrics["bits_per_dim"]
        if bound_priors:  # every level of a hierarchy: the sum of the chain's bits, each prior on its own level
            code_bits = 0.0
            for path, level_prior in bound_priors:
                if level_prior is prior:  # scored above
                    code_bits += metrics["bits_per_dim"]
                    continue
                columns = _prior_columns(path)
                if columns.code_column is None:
                    raise SystemExit(f"{path} has no codes_info.json naming its code level: pass --no_nll_bound")
                level_metrics, _ = score_prior(args, level_prior, data_info, columns.code_column,
                                               columns.condition_column)  # fmt: skip
                code_bits += level_metrics["bits_per_dim"]
            metrics["all_levels_bits_per_dim"] = code_bits
        metrics["reconstruction_bits_per_dim"] = decoder["reconstruction_bits_per_dim"]
        metrics["reconstruction_sigma"] = decoder["reconstruction_sigma"]
        metrics["nll_bound_bits_per_dim"] = code_bits + decoder["reconstruction_bits_per_dim"]
    if args.fid_samples:
        references, labels = load_images(
            images(args.fid_split or args.split), args.fid_samples, progress=not args.no_progress
        )
        if len(references) < args.fid_samples:
            raise SystemExit(f"--fid_samples {args.fid_samples}: the split has only {len(references)} images")
        start = time.perf_counter()
        metrics["fid"], _ = prior_fid(
            chain,
            vq_model,
            references,
            reference_labels=labels,
            batch_size=args.batch_size,
            seed=args.seed,
            progress=not args.no_progress,
        )
        metrics["fid_samples"] = len(references)
        metrics["fid_seconds"] = time.perf_counter() - start
    return metrics, described, part


def _missing_local_path(dataset: str) -> bool:
    """A relative folder path (as extract_codes.py records it) that does not resolve from the working directory;
    Hub ids (`org/name`) are not flagged."""
    path = Path(dataset)
    return not path.is_absolute() and not path.exists() and (dataset.startswith(".") or len(path.parts) > 2)


def main(argv: list[str] | None = None) -> dict:
    """Runs the evaluation `argv` describes; returns (and writes, with `--output`) the result JSON."""
    args = parse_args(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    start = time.perf_counter()
    model = AutoModel.from_pretrained(args.model_name_or_path, trust_remote_code=args.trust_remote_code)
    model = model.to(device).eval()
    model_type = model.config.model_type
    if model_type in VQ_MODEL_TYPES:
        metrics, described, part = evaluate_vq(args, model)
    elif model_type == "pixelsnail":
        if args.sampling_priors is None and args.fid_samples and model.config.condition_num_embeddings is not None:
            raise SystemExit("a conditional prior samples below a top prior: pass --sampling_priors TOP THIS")
        metrics, described, part = evaluate_pixelsnail(args, model, device)
    else:
        raise SystemExit(f"cannot evaluate a model of type {model_type!r}: expected vqvae, vqvae2 or pixelsnail")

    model_name = args.model_name or Path(args.model_name_or_path.rstrip("/")).name
    dataset_type = args.dataset_type or described["dataset_type"]
    dataset_name = args.dataset_name or described["dataset_name"]
    result = {
        "metrics": metrics,
        "model_index": model_index_entries(
            model_name,
            metrics,
            task=described["task"],
            dataset_type=dataset_type,
            dataset_name=dataset_name,
            dataset_split=part.split,
            held_out_percentage=part.held_out_percentage,
        ),
        "evaluation": {
            "model_name_or_path": args.model_name_or_path,
            "model_type": model_type,
            "dataset": args.dataset,
            # What was read: `split`, or its `held_out_percentage` % held out of training (`requested_split` is
            # an evaluation split the dataset lacks). Cards built from this file name it so.
            "split": part.split,
            "requested_split": args.split,
            "held_out_percentage": part.held_out_percentage,
            "validation_split_percentage": args.validation_split_percentage,
            "max_samples": args.max_samples,
            "fid_samples": args.fid_samples or None,
            "seconds": time.perf_counter() - start,
            # Ties the figures to these weights: hf_vqvae.hub reads eval_results.json from a training run's folder
            # into its card only while model.safetensors is still the file measured here.
            "weights_sha256": weights_fingerprint(args.model_name_or_path),
        },
    }
    text = json.dumps(result, indent=2)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    print(text)
    return result


def run() -> int:
    """The command line: data that cannot be used is one clear line on stderr and a non-zero exit status."""
    try:
        main()
    except (DatasetError, TooManyBadExamplesError) as error:
        print(f"evaluate.py: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run())
