"""VQVAEModel: shapes, gradients, config validation, and learning on real photos."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_checkpointing_keeps_gradients

from hf_vqvae import VQVAEConfig, VQVAEModel
from hf_vqvae.data import photo_crop_tensor


def small_config(**kwargs) -> VQVAEConfig:
    options = {
        "image_size": 32,
        "hidden_channels": 32,
        "residual_channels": 16,
        "num_embeddings": 64,
        "embedding_dim": 16,
        **kwargs,
    }
    return VQVAEConfig(**options)


@pytest.mark.parametrize(("factor", "channels"), [(4, 3), (8, 1), (2, 3)])
def test_shapes_for_downsampling_factors_and_channels(factor, channels):
    model = VQVAEModel(small_config(downsample_factor=factor, in_channels=channels))
    pixels = torch.rand(2, channels, 32, 32) * 2 - 1
    out = model(pixels)
    assert out.codes.shape == (2, 32 // factor, 32 // factor)
    assert out.reconstruction.shape == pixels.shape
    codes = model.encode(pixels)
    assert codes.dtype == torch.long and codes.shape == out.codes.shape
    assert model.decode(codes).shape == pixels.shape


def test_encode_decode_agree_with_forward_in_eval():
    torch.manual_seed(0)
    model = VQVAEModel(small_config()).eval()
    pixels = torch.rand(2, 3, 32, 32) * 2 - 1
    out = model(pixels)
    assert torch.equal(model.encode(pixels), out.codes)
    torch.testing.assert_close(model.decode(out.codes), out.reconstruction)


def test_straight_through_gradient_at_encoder_output_equals_decoder_input_gradient():
    torch.manual_seed(0)
    model = VQVAEModel(small_config())
    captured = {}
    model.pre_quantization.register_forward_hook(lambda m, i, o: captured.__setitem__("z_e", o) or o.retain_grad())
    model.decoder.register_forward_pre_hook(
        lambda m, args: captured.__setitem__("z_q", args[0]) or args[0].retain_grad()
    )
    out = model(torch.rand(2, 3, 32, 32) * 2 - 1)

    # Through the reconstruction term alone the encoder output receives exactly the decoder input's gradient ...
    out.reconstruction_loss.backward(retain_graph=True)
    assert torch.equal(captured["z_e"].grad, captured["z_q"].grad)

    # ... and the full loss adds the commitment term beta * 2 (z_e - e) / numel on top.
    captured["z_e"].grad = captured["z_q"].grad = None
    out.loss.backward()
    z_e, z_q = captured["z_e"].detach(), captured["z_q"].detach()
    commitment = 0.25 * 2 * (z_e - z_q) / z_e.numel()
    torch.testing.assert_close(captured["z_e"].grad, captured["z_q"].grad + commitment)


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    pixels = torch.rand(2, 3, 32, 32) * 2 - 1
    config = small_config(kmeans_init=False, dead_code_threshold=0.0)
    assert_checkpointing_keeps_gradients(VQVAEModel, config, pixels)


def test_learns_on_real_photo_crops():
    """~200 steps on real 32x32 crops of scikit-image's photos: validation MSE falls by a clear margin and most of
    the codebook is in use."""
    torch.manual_seed(0)
    train = photo_crop_tensor(32, 1024, seed=0)
    validation = photo_crop_tensor(32, 256, seed=1)
    model = VQVAEModel(small_config(hidden_channels=64, residual_channels=32, num_embeddings=128, embedding_dim=32))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def validation_mse_and_codes() -> tuple[float, int]:
        model.eval()
        with torch.no_grad():
            out = model(validation)
        model.train()
        return out.reconstruction_loss.item(), out.codes.unique().numel()

    initial_mse, _ = validation_mse_and_codes()
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        batch = train[torch.randint(0, len(train), (32,), generator=generator)]
        out = model(batch)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    final_mse, codes_used = validation_mse_and_codes()

    assert final_mse < 0.25 * initial_mse, (initial_mse, final_mse)
    assert final_mse < 0.06
    assert codes_used >= 0.6 * 128, f"only {codes_used} of 128 codes used on the validation crops"
    assert out.codebook_usage.item() >= 0.6


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"num_embeddings": 0}, "num_embeddings"),
        ({"num_embeddings": -3}, "num_embeddings"),
        ({"embedding_dim": 0}, "embedding_dim"),
        ({"downsample_factor": 3}, "downsample_factor"),
        ({"downsample_factor": 1}, "downsample_factor"),
        ({"image_size": 30, "downsample_factor": 4}, "image_size"),
        ({"decay": 1.5}, "decay"),
        ({"in_channels": 0}, "in_channels"),
        ({"commitment_cost": -1.0}, "commitment_cost"),
    ],
)
def test_bad_config_raises_value_error_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        VQVAEConfig(**kwargs)


def test_wrong_channel_count_is_rejected():
    model = VQVAEModel(small_config(in_channels=1))
    with pytest.raises(ValueError, match="in_channels=1"):
        model(torch.zeros(1, 3, 32, 32))


def test_size_not_divisible_by_downsampling_is_rejected():
    model = VQVAEModel(small_config(downsample_factor=8))
    with pytest.raises(ValueError, match="multiples of the downsampling factor 8"):
        model(torch.zeros(1, 3, 36, 36))


def test_embedding_dim_mismatch_is_rejected():
    model = VQVAEModel(small_config())
    with pytest.raises(ValueError, match="embedding_dim=16"):
        model.quantizer(torch.zeros(1, 8, 4, 4))


def test_decode_rejects_codes_out_of_range():
    model = VQVAEModel(small_config(num_embeddings=64))
    with pytest.raises(ValueError, match=r"\[0, 64\)"):
        model.decode(torch.full((1, 8, 8), 64))
