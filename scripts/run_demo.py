"""The main job, end to end on real data: prepare Fashion-MNIST, train a VQ-VAE, extract its codes, train a
class-conditional PixelSNAIL prior on them, evaluate both on the test split, sample, and write a Hub-ready generation
repo (VQ-VAE + prior as one model, pipelines, model card with the evaluation, images) in <output_dir>/hub.

    python scripts/run_demo.py                       # the embedded default below (about 10 minutes on 2 CPU cores)
    python scripts/run_demo.py --config my.yaml      # override any part of it (same keys as DEFAULT_CONFIG)
    python scripts/run_demo.py --quick               # a smoke run of every stage (about 2 minutes)

Each stage runs the repo's own script through `accelerate launch`, as a user would, so the demo exercises exactly
what the README documents. Stages whose outputs exist are reused (delete the folder to start over).
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import yaml

SCRIPTS = Path(__file__).resolve().parent

DEFAULT_CONFIG = {
    "output_dir": "outputs/demo",
    "num_processes": 1,
    "data": {"source": "fashion-mnist", "train_size": None, "test_size": None, "num_shards": 8},
    "vqvae": {
        "model_config": {
            "in_channels": 1,
            "image_size": 28,
            "downsample_factor": 4,
            "hidden_channels": 64,
            "residual_channels": 32,
            "num_residual_blocks": 2,
            "num_embeddings": 128,
            "embedding_dim": 32,
        },
        "per_device_train_batch_size": 64,
        "learning_rate": 1e-3,
        "lr_warmup_steps": 100,
        "max_train_steps": 1000,
        "eval_steps": 500,
        "checkpointing_steps": 500,
        "logging_steps": 50,
        "eval_samples": 2000,
    },
    "prior": {
        "model_config": {
            "hidden_channels": 64,
            "num_stages": 2,
            "num_residual_blocks": 2,
            "num_attention_heads": 4,
            "kernel_size": 3,
            "dropout": 0.1,
        },
        "class_conditional": True,
        "per_device_train_batch_size": 64,
        "learning_rate": 1e-3,
        "lr_warmup_steps": 100,
        "max_train_steps": 1500,
        "eval_steps": 500,
        "checkpointing_steps": 500,
        "logging_steps": 50,
        "eval_samples": 2000,
    },
    # scripts/evaluate.py on the whole test split, for the card: SSIM, the decoder's and the prior's bits and their
    # sum, the VQ-VAE paper's image NLL bound. fid_samples N > 0 adds the FID of N samples (the Inception network
    # reads about 4 images a second on 2 CPU cores, so N = 500 adds some 5 minutes).
    "evaluate": {"max_samples": None, "fid_samples": 0},
    "sample": {"num_samples": 64, "temperature": 1.0, "top_k": None, "seed": 0},
    # The repo id the Hub folder's model card names in its usage snippets (scripts/push_to_hub.py can rebuild it
    # for another id); the weights' license, a Hub license id (Fashion-MNIST itself is MIT).
    "hub_model_id": "hf-vqvae/fashion-mnist-vqvae-pixelsnail",
    "license": "apache-2.0",
}

QUICK_OVERRIDES = {
    "output_dir": "outputs/demo-quick",
    "data": {"train_size": 3000, "test_size": 500, "num_shards": 4},
    "vqvae": {"max_train_steps": 60, "eval_steps": 60, "checkpointing_steps": 30, "eval_samples": 256},
    "prior": {"max_train_steps": 60, "eval_steps": 60, "checkpointing_steps": 30, "eval_samples": 256},
    "sample": {"num_samples": 16},
}


def merge(base: dict, override: dict) -> dict:
    result = copy.deepcopy(base)
    for key, value in override.items():
        result[key] = (
            merge(result[key], value) if isinstance(value, dict) and isinstance(result.get(key), dict) else value
        )
    return result


def run(stage: str, command: list[str]) -> float:
    print(f"\n=== {stage}: {' '.join(command)}", flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    elapsed = time.perf_counter() - start
    print(f"=== {stage} done in {elapsed:.0f} s", flush=True)
    return elapsed


def launch(num_processes: int, script: str, *arguments: str) -> list[str]:
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(num_processes)]
    launcher += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    if num_processes > 1:
        launcher.append("--multi_gpu")
    return launcher + [str(SCRIPTS / script), *arguments]


def write_train_config(path: Path, settings: dict, **fixed) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({**settings, **fixed}, sort_keys=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="YAML overriding parts of the embedded default")
    parser.add_argument("--quick", action="store_true", help="a few steps of every stage on a data subset")
    parser.add_argument("--output_dir", type=Path, help="overrides the config's output_dir")
    parser.add_argument("--hub_model_id", help="overrides the config's hub_model_id (the repo the card names)")
    args = parser.parse_args()

    config = merge(DEFAULT_CONFIG, QUICK_OVERRIDES) if args.quick else copy.deepcopy(DEFAULT_CONFIG)
    if args.config:
        config = merge(config, yaml.safe_load(args.config.read_text()) or {})
    if args.hub_model_id:
        config["hub_model_id"] = args.hub_model_id
    out = Path(args.output_dir or config["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo_config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    processes = int(config["num_processes"])
    timings: dict[str, float] = {}
    start = time.perf_counter()

    data_dir, vqvae_dir, codes_dir, prior_dir = out / "data", out / "vqvae", out / "codes", out / "prior"
    if not (data_dir / "dataset_info.json").exists():
        data = config["data"]
        command = [sys.executable, str(SCRIPTS / "prepare_data.py"), "--source", data["source"]]
        command += ["--output_dir", str(data_dir), "--num_shards", str(data["num_shards"])]
        for key in ("train_size", "test_size"):
            if data.get(key):
                command += [f"--{key}", str(data[key])]
        timings["prepare_data"] = run("1/6 prepare data", command)

    if not (vqvae_dir / "model.safetensors").exists():
        train_config = write_train_config(
            out / "configs" / "vqvae.yaml",
            config["vqvae"],
            model="vqvae",
            dataset=str(data_dir),
            output_dir=str(vqvae_dir),
        )
        timings["train_vqvae"] = run("2/6 train the VQ-VAE", launch(processes, "train.py", str(train_config)))

    if not (codes_dir / "codes_info.json").exists():
        command = launch(processes, "extract_codes.py", "--model_name_or_path", str(vqvae_dir))
        command += ["--dataset", str(data_dir), "--output_dir", str(codes_dir)]
        timings["extract_codes"] = run("3/6 extract codes", command)

    if not (prior_dir / "model.safetensors").exists():
        train_config = write_train_config(
            out / "configs" / "prior.yaml",
            config["prior"],
            model="pixelsnail",
            dataset=str(codes_dir),
            output_dir=str(prior_dir),
        )
        timings["train_prior"] = run("4/6 train the prior", launch(processes, "train.py", str(train_config)))

    # eval_results.json beside each model's weights: the Hub folder's card reports these figures.
    evaluation = config["evaluate"]
    for name, model_dir, dataset in (("vqvae", vqvae_dir, data_dir), ("prior", prior_dir, codes_dir)):
        if (model_dir / "eval_results.json").exists():
            continue
        command = [sys.executable, str(SCRIPTS / "evaluate.py"), "--model_name_or_path", str(model_dir)]
        command += ["--dataset", str(dataset), "--split", "test", "--output", str(model_dir / "eval_results.json")]
        if evaluation.get("max_samples"):
            command += ["--max_samples", str(evaluation["max_samples"])]
        if name == "prior" and evaluation.get("fid_samples"):
            command += ["--fid_samples", str(evaluation["fid_samples"])]
        timings[f"evaluate_{name}"] = run(f"5/6 evaluate the {'VQ-VAE' if name == 'vqvae' else 'prior'}", command)

    samples = out / "samples.png"
    sample = config["sample"]
    command = [sys.executable, str(SCRIPTS / "sample.py"), "--prior", str(prior_dir), "--vq_model", str(vqvae_dir)]
    command += ["--num_samples", str(sample["num_samples"]), "--seed", str(sample["seed"]), "--output", str(samples)]
    command += ["--temperature", str(sample["temperature"])] + (
        ["--top_k", str(sample["top_k"])] if sample["top_k"] else []
    )
    timings["sample"] = run("6/6 sample", command)

    hub_dir = out / "hub"
    start_hub = time.perf_counter()
    write_hub_folder(hub_dir, vqvae_dir, prior_dir, config)
    timings["hub_folder"] = time.perf_counter() - start_hub
    timings["total"] = time.perf_counter() - start
    # ru_maxrss of the children: the peak resident memory of the largest stage process (KiB on Linux).
    timings["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    (out / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    print(f"\nHub-ready folder: {hub_dir}\nsamples: {samples}\ntimings (s): {json.dumps(timings)}")


def write_hub_folder(hub_dir: Path, vqvae_dir: Path, prior_dir: Path, config: dict) -> Path:
    """The Hub-ready generation bundle: the VQ-VAE and the prior as ONE model (weights, code, processor config),
    its three pipelines merged into config.json's `custom_pipelines`, a model card filled from both runs'
    eval_results.json (else metrics.json) and train_args.json, and images/ (the VQ-VAE's reconstructions, samples
    drawn by the bundle itself).
    `scripts/push_to_hub.py <output_dir> --hub_model_id org/name` rebuilds it for another repo id and pushes it."""
    from hf_vqvae.hub import build_generation_repo

    sample = config["sample"]
    return build_generation_repo(
        vqvae_dir,
        [prior_dir],
        hub_dir,
        config["hub_model_id"],
        license=config.get("license", "apache-2.0"),
        num_samples=sample["num_samples"],
        seed=sample["seed"],
        temperature=sample["temperature"],
        top_k=sample["top_k"],
    )


if __name__ == "__main__":
    main()
