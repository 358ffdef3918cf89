"""scripts/evaluate.py on a VQ-VAE trained by scripts/train.py and a prior over codes written by
scripts/extract_codes.py, all on real Fashion-MNIST: its metrics equal an independent computation with
`hf_vqvae.metrics` on the same images, and its model-index parses back through huggingface_hub."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, TINY_VQVAE, free_port, train_command
from datasets import load_dataset
from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.repocard_data import eval_results_to_model_index, model_index_to_eval_results
from transformers import AutoModel

from hf_vqvae import PixelSNAILConfig, PixelSNAILModel, VQVAE2Config, VQVAE2Model, VQVAEImageProcessor
from hf_vqvae.codes_info import CODES_INFO_FILE as CODES_INFO
from hf_vqvae.evaluation import (
    PriorNLLStats,
    ReconstructionStats,
    evaluate_prior,
    evaluate_vq_model,
    model_index_entries,
)
from hf_vqvae.metrics import (
    bits_per_code,
    bits_per_dim,
    code_histogram,
    code_nll,
    codebook_fraction_used,
    codebook_perplexity,
    discretized_gaussian_nll,
    frechet_inception_distance,
    mse,
    psnr,
    ssim,
)
from hf_vqvae.metrics.functional import RECONSTRUCTION_SIGMAS
from hf_vqvae.sampling import generate_images

# Not a multiple of the batch size: the last batch is cut, which the limit must handle.
MAX_SAMPLES, BATCH_SIZE = 100, 32


def load_script(name: str):
    """A script of scripts/ as a module (its `main` runs in this process)."""
    spec = importlib.util.spec_from_file_location(f"{name}_script", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the script's annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained_vqvae(fashion_mnist, tmp_path_factory) -> Path:
    """TINY_VQVAE after 10 steps of scripts/train.py (in this process, to skip a second import of the stack)."""
    output = tmp_path_factory.mktemp("vqvae")
    train = load_script("train")
    train.main(train.parse_args(train_command(fashion_mnist, output, max_train_steps=10, eval_samples=16)))
    return output


def assert_model_index_round_trips(model_index: list[dict], model_name: str) -> None:
    """The entries parse into EvalResults and rebuild to themselves, directly and through a card's YAML."""
    name, results = model_index_to_eval_results(model_index)
    assert name == model_name and results
    assert eval_results_to_model_index(name, results) == model_index
    card = ModelCard(f"---\n{yaml.safe_dump({'model-index': model_index})}---\n# card\n")
    assert card.data.model_name == model_name
    assert card.data.eval_results == results
    assert ModelCardData(model_name=name, eval_results=results).to_dict()["model-index"] == model_index


def decoder_bits_per_dim(reconstruction: torch.Tensor, pixels: torch.Tensor) -> float:
    """-log2 p(x | z) per pixel value at the best sigma of the grid, all images at once."""
    nll = min(float(discretized_gaussian_nll(reconstruction, pixels, sigma).sum()) for sigma in RECONSTRUCTION_SIGMAS)
    return bits_per_dim(nll, pixels.numel())


def test_vqvae_metrics_equal_an_independent_computation(trained_vqvae, fashion_mnist, tmp_path):
    output = tmp_path / "eval.json"
    result = load_script("evaluate").main(
        ["--model_name_or_path", str(trained_vqvae), "--dataset", str(fashion_mnist), "--split", "test",
         "--max_samples", str(MAX_SAMPLES), "--batch_size", str(BATCH_SIZE), "--output", str(output),
         "--no_progress"]
    )  # fmt: skip
    assert json.loads(output.read_text()) == json.loads(json.dumps(result))
    # The weights the figures describe, for the Hub card (hf_vqvae.hub reads eval_results.json only beside them).
    weights = (trained_vqvae / "model.safetensors").read_bytes()
    assert result["evaluation"]["weights_sha256"] == hashlib.sha256(weights).hexdigest()
    metrics = result["metrics"]

    # The same first images of the test split, all at once, through the metric functions.
    model = AutoModel.from_pretrained(trained_vqvae).eval()
    processor = VQVAEImageProcessor.from_pretrained(trained_vqvae)
    rows = load_dataset(str(fashion_mnist), split="test").select(range(MAX_SAMPLES))
    pixels = processor([row["image"] for row in rows], return_tensors="pt").pixel_values
    with torch.no_grad():
        out = model(pixel_values=pixels)
    reconstruction = out.reconstruction.clamp(-1, 1)
    counts = code_histogram(out.codes, TINY_VQVAE["num_embeddings"])
    expected = {
        "mse": mse(reconstruction, pixels),
        "psnr": psnr(reconstruction, pixels),
        "ssim": ssim(reconstruction, pixels),
        "reconstruction_bits_per_dim": decoder_bits_per_dim(reconstruction, pixels),
        "perplexity": codebook_perplexity(counts),
        "codebook_used": codebook_fraction_used(counts),
    }
    assert metrics["num_images"] == MAX_SAMPLES and metrics["skipped_examples"] == 0
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, rel=1e-5), key
    assert 0 < metrics["codebook_used"] <= 1 and metrics["psnr"] > 0

    index = result["model_index"]
    assert index[0]["name"] == trained_vqvae.name
    (entry,) = index[0]["results"]
    assert entry["task"] == {"type": "image-to-image", "name": "Image reconstruction"}
    assert entry["dataset"] == {"name": "Fashion-MNIST", "type": "zalando-datasets/fashion_mnist", "split": "test"}
    reported = {metric["type"]: metric["value"] for metric in entry["metrics"]}
    assert set(reported) == {"mse", "psnr", "ssim", "reconstruction_bits_per_dim", "perplexity", "codebook_usage"}
    assert reported["psnr"] == pytest.approx(expected["psnr"], rel=1e-4)
    assert_model_index_round_trips(index, trained_vqvae.name)


def test_prior_bits_and_fid_equal_an_independent_computation(trained_vqvae, fashion_mnist, tmp_path, monkeypatch):
    # The real extraction script, in this process: a subprocess would spend seconds importing the stack again.
    codes_dir = tmp_path / "codes"
    info = extract_codes(trained_vqvae, fashion_mnist, codes_dir, monkeypatch)
    # A small class-conditional prior, saved as scripts/train.py saves one (with the codes' codes_info.json).
    torch.manual_seed(0)
    prior = PixelSNAILModel(
        PixelSNAILConfig(num_embeddings=TINY_VQVAE["num_embeddings"], latent_height=7, latent_width=7,
                         hidden_channels=16, num_stages=1, num_residual_blocks=1, num_attention_heads=2,
                         kernel_size=3, num_classes=info["num_classes"])
    ).eval()  # fmt: skip
    prior_dir = tmp_path / "prior"
    prior.save_pretrained(prior_dir)
    (prior_dir / CODES_INFO).write_text(json.dumps({**info, "prior": {"code_column": "codes"}}))

    fid_samples = 2  # the fewest a covariance allows: the Inception network costs ~1 s per image here
    result = load_script("evaluate").main(
        ["--model_name_or_path", str(prior_dir), "--dataset", str(codes_dir), "--batch_size", str(BATCH_SIZE),
         "--fid_samples", str(fid_samples), "--seed", "3", "--no_progress"]
    )  # fmt: skip
    metrics = result["metrics"]

    codes_rows = load_dataset(str(codes_dir), split="test").with_format("torch")[:]
    codes, labels = codes_rows["codes"].long(), codes_rows["label"].long()
    with torch.no_grad():
        nll = float(code_nll(prior(codes, class_labels=labels).logits.double(), codes).sum())
    assert metrics["num_images"] == len(codes) == 128
    assert metrics["bits_per_code"] == pytest.approx(bits_per_code(nll, codes.numel()), rel=1e-6)
    assert metrics["bits_per_dim"] == pytest.approx(bits_per_dim(nll, len(codes) * 28 * 28), rel=1e-6)

    # The image NLL bound: the prior's bits plus the VQ model's decoder bits on the same 128 test images.
    vq_model = AutoModel.from_pretrained(trained_vqvae).eval()
    processor = VQVAEImageProcessor.from_pretrained(trained_vqvae)
    test_rows = load_dataset(str(fashion_mnist), split="test")
    pixels = processor(list(test_rows["image"]), return_tensors="pt").pixel_values
    with torch.no_grad():
        reconstruction = vq_model(pixel_values=pixels).reconstruction.clamp(-1, 1)
    decoder_bits = decoder_bits_per_dim(reconstruction, pixels)
    assert metrics["reconstruction_bits_per_dim"] == pytest.approx(decoder_bits, rel=1e-6)
    assert metrics["nll_bound_bits_per_dim"] == pytest.approx(metrics["bits_per_dim"] + decoder_bits, rel=1e-9)

    # FID: the same seeded samples (the reference images' labels) against the first test images.
    rows = test_rows.select(range(fid_samples))
    references = processor([row["image"] for row in rows], return_tensors="pt").pixel_values
    samples = generate_images(
        [prior], vq_model, fid_samples, class_labels=torch.tensor(rows["label"]), seed=3, progress=False
    )
    assert metrics["fid_samples"] == fid_samples
    assert metrics["fid"] == pytest.approx(frechet_inception_distance(samples, references), rel=1e-6)

    (entry,) = result["model_index"][0]["results"]
    assert entry["task"]["type"] == "unconditional-image-generation"
    assert entry["dataset"]["type"] == "zalando-datasets/fashion_mnist"
    assert [metric["type"] for metric in entry["metrics"]] == [
        "bits_per_code", "bits_per_dim", "reconstruction_bits_per_dim", "nll_bound_bits_per_dim", "nll", "fid"
    ]  # fmt: skip
    assert_model_index_round_trips(result["model_index"], "prior")


def extract_codes(model_dir: Path, dataset: Path, output_dir: Path, monkeypatch) -> dict:
    """scripts/extract_codes.py on the test split, in this process; returns the codes' codes_info.json."""
    monkeypatch.setattr(
        sys, "argv",
        ["extract_codes.py", "--model_name_or_path", str(model_dir), "--dataset", str(dataset),
         "--output_dir", str(output_dir), "--splits", "test", "--num_workers", "0"],
    )  # fmt: skip
    load_script("extract_codes").main()
    return json.loads((output_dir / CODES_INFO).read_text())


def test_nll_bound_of_a_hierarchy_counts_every_level(fashion_mnist, tmp_path, monkeypatch):
    # A VQ-VAE-2 (top 7x7, bottom 14x14) and a prior per level, untrained: the bound is a sum whatever the weights.
    torch.manual_seed(0)
    vq2 = VQVAE2Model(VQVAE2Config(in_channels=1, image_size=28, hidden_channels=16, residual_channels=8,
                                   downsample_factors=[4, 2], num_embeddings=16, embedding_dim=8)).eval()  # fmt: skip
    vq_dir = tmp_path / "vqvae2"
    vq2.save_pretrained(vq_dir)
    VQVAEImageProcessor.for_model_size(28, 1).save_pretrained(vq_dir)
    codes_dir = tmp_path / "codes"
    info = extract_codes(vq_dir, fashion_mnist, codes_dir, monkeypatch)
    small = {"hidden_channels": 16, "num_stages": 1, "num_residual_blocks": 1, "kernel_size": 3, "num_embeddings": 16}
    top = PixelSNAILModel(PixelSNAILConfig(latent_height=7, latent_width=7, num_attention_heads=2, **small)).eval()
    bottom = PixelSNAILModel(
        PixelSNAILConfig(latent_height=14, latent_width=14, attention=False, condition_num_embeddings=16,
                         condition_height=7, condition_width=7, num_condition_blocks=1, **small)
    ).eval()  # fmt: skip
    top_dir, bottom_dir = tmp_path / "top", tmp_path / "bottom"
    for prior, folder, columns in (
        (top, top_dir, {"code_column": "codes_0"}),
        (bottom, bottom_dir, {"code_column": "codes_1", "condition_column": "codes_0"}),
    ):
        prior.save_pretrained(folder)
        (folder / CODES_INFO).write_text(json.dumps({**info, "prior": columns}))  # as scripts/train.py saves it

    result = load_script("evaluate").main(
        ["--model_name_or_path", str(bottom_dir), "--dataset", str(codes_dir), "--sampling_priors", str(top_dir),
         str(bottom_dir), "--batch_size", str(BATCH_SIZE), "--no_progress"]
    )  # fmt: skip
    metrics = result["metrics"]

    rows = load_dataset(str(codes_dir), split="test").with_format("torch")[:]
    codes_top, codes_bottom = rows["codes_0"].long(), rows["codes_1"].long()
    images = load_dataset(str(fashion_mnist), split="test")
    pixels = VQVAEImageProcessor.for_model_size(28, 1)(list(images["image"]), return_tensors="pt").pixel_values
    with torch.no_grad():
        top_nll = float(code_nll(top(codes_top).logits.double(), codes_top).sum())
        bottom_logits = bottom(codes_bottom, condition=codes_top).logits
        bottom_nll = float(code_nll(bottom_logits.double(), codes_bottom).sum())
        reconstruction = vq2(pixel_values=pixels).reconstruction.clamp(-1, 1)
    dims = len(pixels) * 28 * 28
    assert metrics["bits_per_dim"] == pytest.approx(bits_per_dim(bottom_nll, dims), rel=1e-6)  # this prior's level
    assert metrics["all_levels_bits_per_dim"] == pytest.approx(bits_per_dim(top_nll + bottom_nll, dims), rel=1e-6)
    expected = bits_per_dim(top_nll + bottom_nll, dims) + decoder_bits_per_dim(reconstruction, pixels)
    assert metrics["nll_bound_bits_per_dim"] == pytest.approx(expected, rel=1e-6)


def test_model_index_names_each_level_of_a_hierarchy():
    # A VQ-VAE-2 training run's metrics.json, as scripts/train.py writes it: `eval/` keys are accepted as they are.
    metrics = {"eval/mse": 0.01, "eval/level0_perplexity": 100.0, "eval/level1_perplexity": 300.0,
               "eval/level1_codebook_used": 0.9, "train/steps": 10, "eval/psnr": float("inf")}  # fmt: skip
    index = model_index_entries("vqvae2", metrics, task="reconstruction", dataset_type="d", dataset_name="D")
    names = [(metric["type"], metric["name"]) for metric in index[0]["results"][0]["metrics"]]
    assert names == [
        ("mse", "Reconstruction MSE (pixels in [-1, 1])"),
        ("perplexity", "Codebook perplexity, top level"),
        ("perplexity", "Codebook perplexity, bottom level"),
        ("codebook_usage", "Fraction of the codebook used, bottom level"),
    ]  # training counters and non-finite values are not metrics of the card
    assert_model_index_round_trips(index, "vqvae2")


def test_stats_of_two_ranks_add_up_to_the_stats_of_all():
    # What distributed evaluation relies on: each rank sums its share, the state vectors are added (all-reduce),
    # and the figures equal those of one process that saw every batch.
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (6, 1, 16, 16), generator=generator) * 2 / 255 - 1
    reconstruction = (pixels + 0.1 * torch.randn(pixels.shape, generator=generator)).clamp(-1, 1)
    codes = [torch.randint(0, 8, (6, 2, 2), generator=generator), torch.randint(0, 16, (6, 4, 4), generator=generator)]
    logits = torch.randn(6, 16, 4, 4, generator=generator)

    whole, parts = ReconstructionStats([8, 16]), [ReconstructionStats([8, 16]) for _ in range(2)]
    whole_prior, prior_parts = PriorNLLStats(256), [PriorNLLStats(256) for _ in range(2)]
    whole.update(pixels, reconstruction, codes)
    whole_prior.update(logits, codes[1])
    for rank, rows in enumerate((slice(0, 2), slice(2, 6))):
        parts[rank].update(pixels[rows], reconstruction[rows], [level[rows] for level in codes])
        prior_parts[rank].update(logits[rows], codes[1][rows])
    for stats, shards in ((whole, parts), (whole_prior, prior_parts)):
        shards[0].load_state(shards[0].state() + shards[1].state())
        assert shards[0].compute() == pytest.approx(stats.compute(), rel=1e-12)
        assert shards[0].num_images == stats.num_images == 6
    metrics = whole.compute()
    assert set(metrics) == {"mse", "psnr", "ssim", "reconstruction_bits_per_dim", "reconstruction_sigma",
                            "level0_perplexity", "level0_codebook_used", "level1_perplexity",
                            "level1_codebook_used"}  # fmt: skip
    assert metrics["mse"] == pytest.approx(mse(reconstruction, pixels), rel=1e-9)
    assert metrics["level1_codebook_used"] == codebook_fraction_used(code_histogram(codes[1], 16))
    with pytest.raises(ValueError, match="does not fit"):
        whole.load_state(torch.zeros(3, dtype=torch.float64))
    assert ReconstructionStats([8]).compute() == {}


def _evaluate_share(rank_share, folder: str, vq2, prior, pixels, codes) -> None:
    """One rank of `test_the_loops_add_up_the_ranks`: evaluates its share, with the Accelerator reducing."""
    from accelerate import Accelerator

    torch.set_num_threads(1)
    accelerator = Accelerator(cpu=True)
    rows = rank_share[accelerator.process_index]
    # Batches of one image and one code map, so the ranks run different numbers of batches.
    vq_metrics = evaluate_vq_model(
        vq2, [pixels[i : i + 1] for i in range(*rows)], accelerator=accelerator, progress=False
    )
    batches = [{"codes": codes[1][i : i + 1], "condition": codes[0][i : i + 1]} for i in range(*rows)]
    prior_metrics = evaluate_prior(prior, batches, 3 * 16 * 16, accelerator=accelerator, progress=False)
    result = {"vq": vq_metrics, "prior": prior_metrics}
    (Path(folder) / f"rank{accelerator.process_index}.json").write_text(json.dumps(result))


@pytest.mark.slow  # two spawned processes import the stack: about 50 s on 2 cores
def test_the_loops_add_up_the_ranks(tmp_path):
    # The one evaluation loop of each kind, run by two gloo ranks on unequal shares with their Accelerator, gives
    # every rank the figures of one process that saw every image (what training's periodic evaluation relies on).
    from accelerate.utils import PrepareForLaunch, patch_environment
    from torch.multiprocessing import start_processes

    torch.manual_seed(0)
    config = VQVAE2Config(image_size=16, hidden_channels=16, residual_channels=8, downsample_factors=[4, 2],
                          num_embeddings=16, embedding_dim=8)  # fmt: skip
    vq2 = VQVAE2Model(config).eval()
    prior = PixelSNAILModel(
        PixelSNAILConfig(num_embeddings=16, latent_height=8, latent_width=8, hidden_channels=16, num_stages=1,
                         num_residual_blocks=1, kernel_size=3, attention=False, condition_num_embeddings=16,
                         condition_height=4, condition_width=4, num_condition_blocks=1)
    ).eval()  # fmt: skip
    pixels = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    codes = vq2.encode(pixels)
    port = free_port()
    with patch_environment(
        world_size=2, master_addr="127.0.0.1", master_port=str(port), accelerate_mixed_precision="no",
        accelerate_debug_rdv_file=str(tmp_path / "rendezvous"), accelerate_use_cpu="yes", gloo_socket_ifname="lo",
    ):  # fmt: skip
        launcher = PrepareForLaunch(_evaluate_share, debug=True)
        shares = ((0, 2), (2, 5))
        # Spawned, not forked: a forked child hangs in its first convolution on the OpenMP threads it inherits.
        start_processes(launcher, args=(shares, str(tmp_path), vq2, prior, pixels, codes), nprocs=2,
                        start_method="spawn")  # fmt: skip

    whole_vq = evaluate_vq_model(vq2, [pixels], progress=False)
    whole_prior = evaluate_prior(prior, [{"codes": codes[1], "condition": codes[0]}], 3 * 16 * 16, progress=False)
    assert whole_vq["num_images"] == whole_prior["num_images"] == 5
    for rank in range(2):
        result = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert result["vq"] == pytest.approx(whole_vq, rel=1e-6), rank  # SSIM of 1 image vs 5: float rounding
        assert result["prior"] == pytest.approx(whole_prior, rel=1e-9), rank
