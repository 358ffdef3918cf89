"""Shared test helpers: the offline Hub-cache layout, a Python process where hf_vqvae cannot be imported, and
bitwise state comparison."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

# No test may reach the network: the Hub is unreachable here and offline loads otherwise retry for minutes.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
torch.set_num_threads(min(2, os.cpu_count() or 1))

FAKE_COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = Path(__file__).resolve().parents[1]
# A VQ-VAE small enough that a training run of a few dozen steps takes seconds on 2 cores.
TINY_VQVAE = {
    "in_channels": 1,
    "image_size": 28,
    "hidden_channels": 16,
    "residual_channels": 8,
    "num_embeddings": 32,
    "embedding_dim": 8,
}


@pytest.fixture(scope="session")
def fashion_mnist(tmp_path_factory) -> Path:
    """512 + 128 real Fashion-MNIST images in 4 parquet shards per split, written by the real prepare script."""
    folder = tmp_path_factory.mktemp("fashion-mnist")
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "prepare_data.py"), "--source", "fashion-mnist", "--output_dir",
         str(folder), "--train_size", "512", "--test_size", "128", "--num_shards", "4"],
        check=True, capture_output=True,
    )  # fmt: skip
    return folder


def free_port() -> int:
    """A loopback port nothing listens on now (for the apps and the launchers the tests start)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def train_command(dataset: Path, output_dir: Path, **overrides) -> list[str]:
    """Arguments of scripts/train.py for a short TINY_VQVAE run; `overrides` replace or add any of them."""
    options = {
        "model": "vqvae",
        "dataset": str(dataset),
        "output_dir": str(output_dir),
        "model_config": json.dumps(TINY_VQVAE),
        "per_device_train_batch_size": 8,
        "learning_rate": 3e-3,
        "lr_warmup_steps": 0,
        "max_train_steps": 3,
        "eval_steps": 1000,
        "checkpointing_steps": 1000,
        "logging_steps": 1,
        "eval_samples": 64,
        "num_workers": 0,
        "report_to": "none",
        **overrides,
    }
    command = []
    for key, value in options.items():
        command += [f"--{key}", str(value)]
    return command


def place_in_hub_cache(folder: Path, repo_id: str, hf_home: Path) -> Path:
    """Copies a `save_pretrained` folder into `hf_home` in the Hub cache layout
    (`hub/models--org--name/refs/main` holding a commit id, files under `snapshots/<id>/`), as a download would
    leave it. `from_pretrained(repo_id)` then resolves it with `HF_HUB_OFFLINE=1`."""
    repo_dir = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(FAKE_COMMIT)
    snapshot = repo_dir / "snapshots" / FAKE_COMMIT
    shutil.copytree(folder, snapshot, dirs_exist_ok=True)
    return snapshot


@pytest.fixture
def hf_home(tmp_path, monkeypatch) -> Path:
    """An empty, private HF_HOME for this test: the cache the transformers loaders read, in this process (whose
    huggingface_hub read its paths at import, hence the patched constants) and in subprocesses (the variables)."""
    import huggingface_hub.constants
    import transformers.dynamic_module_utils
    import transformers.utils.hub

    home = tmp_path / "hf_home"
    home.mkdir()
    paths = {"HF_HOME": home, "HF_HUB_CACHE": home / "hub", "HF_MODULES_CACHE": home / "modules"}
    for name, path in paths.items():
        monkeypatch.setenv(name, str(path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HOME", str(home))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(transformers.utils.hub, "HF_MODULES_CACHE", str(home / "modules"))
    monkeypatch.setattr(transformers.dynamic_module_utils, "HF_MODULES_CACHE", str(home / "modules"))
    return home


def run_without_hf_vqvae(code: str, env: dict[str, str] | None = None, timeout: int = 600) -> dict:
    """Runs `code` in a fresh Python process in which `import hf_vqvae` raises ImportError, as on a machine where
    only transformers is installed. The code must print one JSON object on its last stdout line; it is returned."""
    prelude = "import sys\nsys.modules['hf_vqvae'] = None  # any import of hf_vqvae now raises ImportError\n"
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    result = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise AssertionError(f"subprocess failed:\nSTDOUT:\n{result.stdout}\nSTDERR:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_state_dicts_bitwise_equal(expected: dict[str, torch.Tensor], actual: dict[str, torch.Tensor]) -> None:
    assert set(expected) == set(actual), f"keys differ: {set(expected) ^ set(actual)}"
    for key, tensor in expected.items():
        other = actual[key]
        assert tensor.dtype == other.dtype and tensor.shape == other.shape, key
        assert torch.equal(tensor.cpu(), other.cpu()), f"{key} differs after the round trip"


def assert_checkpointing_keeps_gradients(model_class, config, pixels: torch.Tensor) -> None:
    """Activation checkpointing recomputes the forward in the backward pass: the gradients must not change."""
    plain = model_class(config)
    checkpointed = model_class(config)
    checkpointed.load_state_dict(plain.state_dict())
    checkpointed.activation_checkpointing_enable()
    assert checkpointed.is_activation_checkpointing
    plain(pixels).loss.backward()
    checkpointed(pixels).loss.backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), checkpointed.named_parameters()):
        if a.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, msg=name)
