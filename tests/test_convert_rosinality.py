"""Conversion of rosinality/vq-vae-2-pytorch VQ-VAE checkpoints (`scripts/convert_rosinality_checkpoint.py`).

The fixture `tests/fixtures/rosinality/` was made with that project's own code, at commit
ef5f67c46f93624163776caec9e0d95063910eca (`vqvae.py` and `distributed/` taken with `git archive` into a scratch
folder outside this repository; none of its code is in this repository), under torch 2.13.0 on CPU:

1. `torch.manual_seed(0)`; a data generator `torch.Generator().manual_seed(0)`; images are 32x32 RGB, made by
   bilinear upsampling of uniform 8x8 noise in [-1, 1].
2. `model = VQVAE(in_channel=3, channel=16, n_res_block=2, n_res_channel=8, embed_dim=8, n_embed=16)`.
3. Codebook start: their N(0, 1) codebooks are far from this tiny encoder's outputs (every vector picks one code),
   and their `cluster_size` starts at 0, which after one EMA step on a few vectors per code throws every code but
   one away. So, in eval mode and through their own modules, each level's `embed` and `embed_avg` were set to 16
   random quantiser inputs of one batch of 4 images (top level first) and `cluster_size` to 1.
4. Training: 8 steps of Adam (lr 1e-3) on batches of 4 images with their train_vqvae.py loss,
   `mse(out, img) + 0.25 * latent_loss.mean()`, in train mode (so the EMA buffers are updated too).
5. `vqvae_state_dict.safetensors`: `model.state_dict()` after training.
6. `vqvae_outputs.safetensors`, in eval mode on 2 new images `pixel_values` (2, 3, 32, 32): `codes_top` (2, 4, 4)
   and `codes_bottom` (2, 8, 8) = `encode(...)`'s `id_t, id_b`; `reconstruction` = `model(pixel_values)[0]`;
   `decoded_from_codes` = `model.decode_code(id_t, id_b)`; then one more `model(pixel_values)` in train mode
   under `no_grad` (their EMA update, no optimiser step) and `ema_step.{t,b}.{embed,cluster_size,embed_avg}` after
   it. It uses 10 of the 16 top codes and 8 of the bottom ones.

Bitwise equality of the reconstructions is not asserted: their quantised maps come out of a channels-last
`permute` without `.contiguous()`, and the CPU convolution kernels round differently for that memory layout (the
difference is ~2e-8). With contiguous quantised maps their `decode` and our `decode` were checked bitwise equal,
with both codes in one process, when the fixture was made. Users hold `.pt` files, so each test first writes the
fixture's tensors with `torch.save`, as their `train_vqvae.py` does.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoImageProcessor, AutoModel

import hf_vqvae  # noqa: F401 - registers the models with AutoModel
from hf_vqvae import VQVAE2Config, VQVAE2Model
from hf_vqvae.convert import (
    CheckpointError,
    convert_rosinality_vqvae,
    load_rosinality_checkpoint,
    rosinality_vqvae_args,
)

FIXTURE = Path(__file__).parent / "fixtures" / "rosinality"
REPO = Path(__file__).resolve().parents[1]
ATOL = 1e-6  # 50x the measured layout rounding, far below any wrong weight (differences of order 1e-2 and more)


@pytest.fixture(scope="module")
def state_dict() -> dict[str, torch.Tensor]:
    return load_file(FIXTURE / "vqvae_state_dict.safetensors")


@pytest.fixture(scope="module")
def outputs() -> dict[str, torch.Tensor]:
    return load_file(FIXTURE / "vqvae_outputs.safetensors")


@pytest.fixture(scope="module")
def checkpoint(state_dict, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rosinality") / "vqvae_008.pt"
    torch.save(state_dict, path)
    return path


def _script():
    """scripts/convert_rosinality_checkpoint.py as a module; its `main(argv)` is what the command line runs. Run
    in-process: a second interpreter start costs ~25 s on 2 busy cores."""
    spec = importlib.util.spec_from_file_location(
        "convert_script", REPO / "scripts" / "convert_rosinality_checkpoint.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


@pytest.fixture(scope="module")
def converted_dir(checkpoint, tmp_path_factory) -> Path:
    """The script run as a user runs it, into a fresh folder."""
    out = tmp_path_factory.mktemp("converted") / "vqvae2-rosinality"
    argv = [str(checkpoint), str(out), "--image_size", "32", "--hub_model_id", "me/vqvae2-rosinality"]
    assert _script().main(argv) == 0
    return out


def test_converted_folder_gives_their_codes_and_reconstruction(converted_dir, outputs):
    model = AutoModel.from_pretrained(converted_dir).eval()
    assert isinstance(model, VQVAE2Model)
    pixel_values = outputs["pixel_values"]

    codes = model.encode(pixel_values)
    assert torch.equal(codes[0], outputs["codes_top"])
    assert torch.equal(codes[1], outputs["codes_bottom"])
    # The fixture is not degenerate: several codes are in use on both levels.
    assert codes[0].unique().numel() >= 5 and codes[1].unique().numel() >= 5

    decoded = model.decode((outputs["codes_top"], outputs["codes_bottom"]))
    torch.testing.assert_close(decoded, outputs["decoded_from_codes"], rtol=0, atol=ATOL)
    with torch.no_grad():
        forward = model(pixel_values)
    assert torch.equal(forward.codes[0], outputs["codes_top"])
    assert torch.equal(forward.codes[1], outputs["codes_bottom"])
    torch.testing.assert_close(forward.reconstruction, outputs["reconstruction"], rtol=0, atol=ATOL)


def test_converted_folder_has_processor_card_and_exact_config(converted_dir, state_dict):
    config = VQVAE2Config.from_pretrained(converted_dir)
    assert config.upper_encoder_downsample_channels == 8  # their top encoder's channel // 2
    assert (config.hidden_channels, config.residual_channels, config.num_residual_blocks) == (16, 8, 2)
    assert (config.level_num_embeddings, config.level_embedding_dims) == ((16, 16), (8, 8))
    assert not config.kmeans_init and config.dead_code_threshold == 0.0

    processor = AutoImageProcessor.from_pretrained(converted_dir)
    image = torch.rand(3, 50, 40)  # any image size in: resized to 32 on the shortest edge, centre-cropped
    assert processor(image, return_tensors="pt").pixel_values.shape == (1, 3, 32, 32)

    card = (converted_dir / "README.md").read_text()
    assert "VQVAE(in_channel=3, channel=16, n_res_block=2, n_res_channel=8, embed_dim=8, n_embed=16)" in card
    assert "vqvae_008.pt" in card and 'AutoModel.from_pretrained("me/vqvae2-rosinality"' in card
    assert (converted_dir / "model.safetensors").exists() and not list(converted_dir.glob("*.bin"))


def test_ema_state_continues_training_as_theirs(state_dict, outputs):
    """Their EMA buffers map onto ours: one train-mode forward updates the codebooks exactly as theirs did."""
    model = convert_rosinality_vqvae(state_dict, image_size=32).train()
    with torch.no_grad():
        model(outputs["pixel_values"])
    for level, quantizer in zip(("t", "b"), model.quantizers):
        torch.testing.assert_close(quantizer.codebook, outputs[f"ema_step.{level}.embed"].t(), rtol=0, atol=ATOL)
        torch.testing.assert_close(quantizer.ema_sum, outputs[f"ema_step.{level}.embed_avg"].t(), rtol=0, atol=ATOL)
        torch.testing.assert_close(quantizer.ema_count, outputs[f"ema_step.{level}.cluster_size"], rtol=0, atol=ATOL)
    # The step did move the codebooks (the comparison above is not between two unchanged states).
    assert not torch.allclose(outputs["ema_step.b.embed"], state_dict["quantize_b.embed"], rtol=0, atol=1e-4)


@pytest.mark.parametrize("prefix, legacy", [("module.", False), ("", True)], ids=["ddp-prefix", "legacy-format"])
def test_ddp_prefix_and_legacy_format(state_dict, outputs, tmp_path, prefix, legacy):
    """train_vqvae.py under DistributedDataParallel saves `module.`-prefixed names; torch < 1.6 (when their FFHQ
    checkpoint was made) wrote the legacy, non-zip format."""
    path = tmp_path / "vqvae.pt"
    torch.save(
        {prefix + key: value for key, value in state_dict.items()}, path, _use_new_zipfile_serialization=not legacy
    )
    model = convert_rosinality_vqvae(load_rosinality_checkpoint(path), image_size=32)
    assert torch.equal(model.encode(outputs["pixel_values"])[1], outputs["codes_bottom"])


# ------------------------------------------------------------------------------------------------------ bad inputs
def test_checkpoint_of_another_model_names_expected_and_found_keys(tmp_path):
    ours = VQVAE2Model(VQVAE2Config(image_size=32, hidden_channels=8, residual_channels=4, embedding_dim=4,
                                    num_embeddings=8))  # fmt: skip
    path = tmp_path / "ours.pt"
    torch.save(ours.state_dict(), path)
    with pytest.raises(CheckpointError) as error:
        rosinality_vqvae_args(load_rosinality_checkpoint(path))
    message = str(error.value)
    assert "not a rosinality/vq-vae-2-pytorch VQ-VAE" in message
    assert "quantize_t.embed" in message  # expected
    assert "encoders.* (" in message and "quantizers.* (" in message  # found
    assert "an hf_vqvae model already" in message


def test_wrong_shape_or_missing_tensor_is_named(state_dict):
    broken = dict(state_dict)
    del broken["dec.blocks.6.bias"]
    broken["quantize_conv_b.weight"] = torch.zeros(8, 20, 1, 1)
    with pytest.raises(CheckpointError) as error:
        rosinality_vqvae_args(broken)
    message = str(error.value)
    assert "missing: dec.blocks.6.bias" in message
    assert "quantize_conv_b.weight: shape (8, 20, 1, 1), expected (8, 24, 1, 1)" in message


def test_truncated_file(checkpoint, tmp_path):
    data = checkpoint.read_bytes()
    path = tmp_path / "truncated.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated, corrupt or not a torch.save file"):
        load_rosinality_checkpoint(path)


@pytest.mark.parametrize("kind", ["pixelsnail-checkpoint", "pickled-module"])
def test_pickle_that_needs_code_is_refused_without_running_it(state_dict, tmp_path, kind):
    path = tmp_path / f"{kind}.pt"
    if kind == "pixelsnail-checkpoint":  # their PixelSNAIL checkpoints: {"model": state_dict, "args": Namespace}
        torch.save({"model": state_dict, "args": argparse.Namespace(channel=16)}, path)
        refused = r"argparse\.Namespace"
    else:  # torch.save(model) pickles the module's class
        torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), path)
        refused = r"torch\.nn\.modules\.container\.Sequential"
    with pytest.raises(CheckpointError, match=r"needs code to load: .*" + refused):
        load_rosinality_checkpoint(path)


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(CheckpointError, match="holds a list, not a state dict"):
        load_rosinality_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        load_rosinality_checkpoint(tmp_path / "absent.pt")


def test_script_reports_bad_input_without_traceback(tmp_path, capsys):
    """A bad file gives one `error:` line and exit status 2, and nothing is written."""
    path = tmp_path / "broken.pt"
    path.write_bytes(b"not a checkpoint")
    assert _script().main([str(path), str(tmp_path / "out")]) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("error: cannot read") and "truncated, corrupt or not a torch.save file" in stderr
    assert not (tmp_path / "out").exists()
