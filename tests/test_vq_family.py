"""One VQ family over 1-, 2- and 3-D signals: a VQ-VAE is the one-level hierarchy, the level-list API is the same
for every model, and a clip model learns on real frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data as skdata

from hf_vqvae import VQVAE2Config, VQVAE2Model, VQVAEConfig, VQVAEModel

SMALL = {"hidden_channels": 16, "residual_channels": 8, "num_embeddings": 32, "embedding_dim": 8}


def test_a_vqvae_is_the_one_level_hierarchy():
    """Same modules, same tensor names, same outputs: a VQ-VAE's weights load strictly into a one-level VQ-VAE-2."""
    torch.manual_seed(0)
    vqvae = VQVAEModel(VQVAEConfig(image_size=16, downsample_factor=4, **SMALL)).eval()
    hierarchy = VQVAE2Model(VQVAE2Config(image_size=16, downsample_factors=[4], **SMALL)).eval()
    assert vqvae.state_dict().keys() == hierarchy.state_dict().keys()
    hierarchy.load_state_dict(vqvae.state_dict(), strict=True)
    pixels = torch.rand(3, 3, 16, 16) * 2 - 1
    one, many = vqvae(pixels), hierarchy(pixels)
    assert torch.equal(one.reconstruction, many.reconstruction)
    assert torch.equal(one.codes, many.codes[0]) and one.level_codes[0] is one.codes
    assert torch.equal(vqvae.encode(pixels), hierarchy.encode(pixels)[0])
    assert torch.equal(vqvae.decode(one.codes), hierarchy.decode((one.codes,)))


@pytest.mark.parametrize(
    ("model_class", "config", "signal_shape", "code_shapes"),
    [
        (VQVAEModel, VQVAEConfig(spatial_dims=1, in_channels=1, image_size=256, downsample_factor=8, **SMALL),
         (2, 1, 256), [(2, 32)]),
        (VQVAE2Model, VQVAE2Config(spatial_dims=1, in_channels=1, image_size=256, downsample_factors=[16, 4], **SMALL),
         (2, 1, 128), [(2, 8), (2, 32)]),
        (VQVAEModel, VQVAEConfig(spatial_dims=3, image_size=16, downsample_factor=4, **SMALL),
         (2, 3, 8, 16, 12), [(2, 2, 4, 3)]),
        (VQVAE2Model, VQVAE2Config(spatial_dims=3, image_size=16, downsample_factors=[4, 2], **SMALL),
         (1, 3, 8, 8, 16), [(1, 2, 2, 4), (1, 4, 4, 8)]),
    ],
)  # fmt: skip
def test_signals_of_one_and_three_dimensions(model_class, config, signal_shape, code_shapes):
    torch.manual_seed(0)
    model = model_class(config)
    signal = torch.rand(signal_shape) * 2 - 1
    out = model(signal)
    assert out.reconstruction.shape == signal.shape
    assert [tuple(c.shape) for c in out.level_codes] == code_shapes
    assert all(c.dtype == torch.long for c in out.level_codes)
    out.loss.backward()
    model.eval()
    codes = model.encode_levels(signal)
    assert [tuple(c.shape) for c in codes] == code_shapes
    assert model.decode_levels(codes).shape == signal.shape
    assert len(config.level_latent_shapes[0]) == config.spatial_dims


def test_wrong_signal_rank_names_the_expected_axes():
    model = VQVAEModel(VQVAEConfig(spatial_dims=1, in_channels=1, image_size=64, **SMALL))
    with pytest.raises(ValueError, match=r"\(batch, in_channels=1, length\)"):
        model(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="multiples of the downsampling factor 4"):
        model(torch.zeros(1, 1, 66))
    with pytest.raises(ValueError, match=r"codes\[0\] must have shape \(batch, length\)"):
        model.decode(torch.zeros(1, 4, 4, dtype=torch.long))


@pytest.mark.parametrize("spatial_dims", [0, 4, True, "2"])
def test_bad_spatial_dims_is_a_clear_config_error(spatial_dims):
    with pytest.raises(ValueError, match="spatial_dims"):
        VQVAEConfig(spatial_dims=spatial_dims)
    with pytest.raises(ValueError, match="spatial_dims"):
        VQVAE2Config(spatial_dims=spatial_dims)


def test_clip_config_round_trips(tmp_path):
    config = VQVAE2Config(spatial_dims=3, image_size=16, downsample_factors=[4, 2], **SMALL)
    model = VQVAE2Model(config)
    model.save_pretrained(tmp_path)
    reloaded = VQVAE2Model.from_pretrained(tmp_path)
    assert reloaded.config.spatial_dims == 3
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, reloaded.state_dict()[name]), name


def _camera_pan(num_clips: int, frames: int = 8, side: int = 16, seed: int = 0) -> torch.Tensor:
    """Clips of a real photo seen through a moving camera: each clip pans `frames` steps of 2 pixels over a
    random start in scikit-image's astronaut (512x512 RGB), downscaled 4x. (B, 3, frames, side, side) in [-1, 1]."""
    photo = torch.from_numpy(skdata.astronaut().astype(np.float32) / 127.5 - 1).permute(2, 0, 1)
    photo = torch.nn.functional.avg_pool2d(photo[None], 4)[0]  # 128x128
    generator = np.random.default_rng(seed)
    clips = []
    for _ in range(num_clips):
        top, left = generator.integers(0, 128 - side - 2 * frames, size=2)
        dy, dx = generator.choice([-1, 0, 1], size=2)
        base_y, base_x = top + (2 * frames if dy < 0 else 0), left + (2 * frames if dx < 0 else 0)
        starts = [(base_y + 2 * dy * t, base_x + 2 * dx * t) for t in range(frames)]
        clip = [photo[:, y : y + side, x : x + side] for y, x in starts]
        clips.append(torch.stack(clip, dim=1))
    return torch.stack(clips)


@pytest.mark.slow
def test_a_clip_vqvae_learns_on_real_frames():
    """A 3-D VQ-VAE trained for 60 steps on camera pans over a real photo reconstructs held-out pans far better than
    its untrained self and than the clip mean."""
    torch.manual_seed(0)
    train, held_out = _camera_pan(64, seed=0), _camera_pan(8, seed=1)
    model = VQVAEModel(
        VQVAEConfig(spatial_dims=3, image_size=16, downsample_factor=2, hidden_channels=32, residual_channels=16,
                    num_embeddings=64, embedding_dim=16)
    )  # fmt: skip

    def held_out_mse() -> float:
        model.eval()
        with torch.no_grad():
            return float(torch.mean((model(held_out).reconstruction - held_out) ** 2))

    before = held_out_mse()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for step in range(60):
        model.train()
        batch = train[(step * 8) % 64 : (step * 8) % 64 + 8]
        optimizer.zero_grad()
        model(batch).loss.backward()
        optimizer.step()
    after = held_out_mse()
    mean_baseline = float(torch.mean((held_out - held_out.mean(dim=(2, 3, 4), keepdim=True)) ** 2))
    assert after < 0.25 * before, (before, after)
    assert after < 0.5 * mean_baseline, (after, mean_baseline)
