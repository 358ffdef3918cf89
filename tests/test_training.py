"""The training stack on real Fashion-MNIST: scripts/train.py single-process and on two CPU processes through
`accelerate launch`, against a single-process reference computed here on the same global batches."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest
import torch
from accelerate.utils import set_seed
from conftest import REPO, TINY_VQVAE, assert_state_dicts_bitwise_equal, train_command
from datasets import load_dataset
from distributed import launch_two_ranks
from safetensors.torch import load_file
from transformers import AutoModel, get_cosine_schedule_with_warmup
from user_data import read_records

from hf_vqvae import VQVAEConfig, VQVAEImageProcessor, VQVAEModel


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve the script's annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_arguments_from_a_yaml_file_with_command_line_overrides(tmp_path):
    train = load_script("train")
    config = tmp_path / "run.yaml"
    config.write_text("dataset: some/dataset\nmax_train_steps: 7\nmodel_config:\n  image_size: 64\n")
    args = train.parse_args([str(config), "--max_train_steps", "9"])
    assert args.dataset == "some/dataset" and args.max_train_steps == 9 and args.model_config == {"image_size": 64}
    config.write_text("dataset: x\nmax_trian_steps: 7\n")
    with pytest.raises(ValueError, match="max_trian_steps"):
        train.parse_args([str(config)])


def test_single_process_training_learns_and_writes_everything(fashion_mnist, tmp_path):
    output = tmp_path / "run"
    command = [sys.executable, str(REPO / "scripts" / "train.py")]
    command += train_command(
        fashion_mnist, output, max_train_steps=60, eval_steps=30, checkpointing_steps=30, report_to="tensorboard"
    )
    subprocess.run(command, check=True, capture_output=True, text=True)

    model = AutoModel.from_pretrained(output)
    processor = VQVAEImageProcessor.from_pretrained(output)
    assert isinstance(model, VQVAEModel) and processor.num_channels == 1
    metrics = json.loads((output / "metrics.json").read_text())
    # The untrained model's MSE on the same held-out images, for comparison.
    set_seed(0)
    untrained = VQVAEModel(VQVAEConfig(**TINY_VQVAE)).eval()
    test = load_dataset(str(fashion_mnist), split="test").select(range(64))
    with torch.no_grad():
        pixels = processor([row["image"] for row in test], return_tensors="pt").pixel_values
        untrained_mse = torch.nn.functional.mse_loss(untrained(pixels).reconstruction, pixels).item()
    assert metrics["eval/mse"] < 0.5 * untrained_mse, (metrics, untrained_mse)
    assert metrics["train/steps"] == 60 and metrics["train/skipped_examples"] == 0
    assert sorted(p.name for p in output.glob("checkpoint-*")) == ["checkpoint-30", "checkpoint-60"]
    assert (output / "images" / "vqvae-step000060.png").exists()
    assert list((output / "logs").rglob("events.out.tfevents.*")), "TensorBoard logs expected"


@pytest.mark.slow
def test_two_cpu_processes_match_a_single_process_on_the_same_global_batch(fashion_mnist, tmp_path):
    output = tmp_path / "ddp"
    steps = 3
    # No k-means init and no restarts: both seed from the first rank's batch alone, which a single process on the
    # union would not reproduce. Everything else (EMA, gradients, clipping, Adam) must agree.
    config = {**TINY_VQVAE, "kmeans_init": False, "dead_code_threshold": 0.0}
    arguments = train_command(fashion_mnist, output, max_train_steps=steps, model_config=json.dumps(config))
    result = launch_two_ranks(REPO / "tests" / "train_driver.py", arguments + ["--record_batches", "true"], output)
    assert result.returncode == 0, result.stderr[-4000:]

    # Both ranks hold identical parameters and codebook state.
    rank0, rank1 = load_file(output / "rank0.safetensors"), load_file(output / "rank1.safetensors")
    assert_state_dicts_bitwise_equal(rank0, rank1)
    assert int(rank0["quantizers.0.step"]) == steps

    # The ranks saw disjoint examples.
    batches = [read_records(output / f"batches_rank{rank}.jsonl") for rank in (0, 1)]
    seen = [{i for record in rank for i in record["ids"]} for rank in batches]
    assert seen[0] and seen[1] and not seen[0] & seen[1]

    # A single process on the union of each step's two batches gives the same losses and codebook.
    train_split = load_dataset(str(fashion_mnist), split="train")
    by_id = {row["id"]: row["image"] for row in train_split}
    processor = VQVAEImageProcessor.for_model_size(28, num_channels=1)
    set_seed(0)
    model = VQVAEModel(VQVAEConfig(**config)).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    scheduler = get_cosine_schedule_with_warmup(optimizer, 0, steps)
    for step in range(steps):
        ids = batches[0][step]["ids"] + batches[1][step]["ids"]
        assert len(batches[0][step]["ids"]) == len(batches[1][step]["ids"])
        pixels = processor([by_id[i] for i in ids], return_tensors="pt").pixel_values
        loss = model(pixels).loss
        distributed_loss = (batches[0][step]["loss"] + batches[1][step]["loss"]) / 2
        assert loss.item() == pytest.approx(distributed_loss, rel=1e-4), f"step {step + 1}"
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
    for name in ("quantizers.0.ema_count", "quantizers.0.ema_sum", "quantizers.0.codebook"):
        torch.testing.assert_close(model.state_dict()[name], rank0[name], rtol=1e-4, atol=1e-5, msg=name)
