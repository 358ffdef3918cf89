"""Folders saved by release 0.1.0 load with today's code and give the same codes, pixels and logits, bit for bit.

The fixture (`tests/fixtures/v0_1_0/`) was written by the 0.1.0 source: `tests/fixtures/make_v0_1_0_fixture.py`
says how. Each model had trained a few steps, so its EMA state is not the initial one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel

from hf_vqvae import PixelSNAILModel, VQVAE2Model, VQVAEModel

FIXTURE = Path(__file__).parent / "fixtures" / "v0_1_0"
# The fixture's outputs were computed with 2 intra-op threads (this machine's default): convolutions split their
# sums by thread, so bitwise equality holds at the thread count they were made with.
FIXTURE_THREADS = 2


@pytest.fixture(autouse=True)
def fixture_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(FIXTURE_THREADS)
    yield
    torch.set_num_threads(threads)


def _expected() -> dict[str, torch.Tensor]:
    return load_file(FIXTURE / "expected.safetensors")


def test_vqvae_0_1_0_folder_gives_identical_codes_and_pixels():
    expected = _expected()
    model = AutoModel.from_pretrained(FIXTURE / "vqvae")
    assert isinstance(model, VQVAEModel)
    pixels = expected["pixel_values"]
    codes = model.encode(pixels)
    assert codes.shape == expected["vqvae_codes"].shape == (4, 4, 4)
    assert torch.equal(codes, expected["vqvae_codes"])
    assert torch.equal(model.decode(codes), expected["vqvae_reconstruction"])
    assert torch.equal(model(pixels).reconstruction, expected["vqvae_forward"])


def test_vqvae_0_1_0_ema_state_survives_a_save_in_the_new_layout(tmp_path):
    old = load_file(FIXTURE / "vqvae" / "model.safetensors")
    model = VQVAEModel.from_pretrained(FIXTURE / "vqvae")
    model.save_pretrained(tmp_path)
    new = load_file(tmp_path / "model.safetensors")
    assert len(old) == len(new)
    # Every 0.1.0 tensor, EMA counts and sums included, is in the new file under its new name with the same bits.
    new_values = list(new.values())
    for name, value in old.items():
        assert any(v.shape == value.shape and torch.equal(v, value) for v in new_values), name
    reloaded = VQVAEModel.from_pretrained(tmp_path)
    pixels = _expected()["pixel_values"]
    assert torch.equal(reloaded.encode(pixels), _expected()["vqvae_codes"])


def test_vqvae2_0_1_0_folder_gives_identical_codes_and_pixels():
    expected = _expected()
    model = AutoModel.from_pretrained(FIXTURE / "vqvae2")
    assert isinstance(model, VQVAE2Model)
    pixels = expected["pixel_values"]
    codes = model.encode(pixels)
    assert len(codes) == 3
    for level, level_codes in enumerate(codes):
        assert torch.equal(level_codes, expected[f"vqvae2_codes_{level}"])
    assert torch.equal(model.decode(codes), expected["vqvae2_reconstruction"])
    assert torch.equal(model(pixels).reconstruction, expected["vqvae2_forward"])


def test_pixelsnail_0_1_0_folder_gives_identical_logits():
    expected = _expected()
    model = AutoModel.from_pretrained(FIXTURE / "pixelsnail")
    assert isinstance(model, PixelSNAILModel)
    model.eval()
    logits = model(
        expected["vqvae2_codes_1"], condition=expected["vqvae2_codes_0"], class_labels=torch.tensor([0, 1, 2, 0])
    ).logits
    assert torch.equal(logits, expected["prior_logits"])
