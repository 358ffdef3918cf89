"""VQVAE2Model: code shapes per level, encode/decode, per-level state, config validation, save/load bitwise through
the real transformers loaders (folder, offline Hub cache, trust_remote_code without hf_vqvae), and learning on real
photo crops with every level's codebook in use."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import (
    assert_checkpointing_keeps_gradients,
    assert_state_dicts_bitwise_equal,
    place_in_hub_cache,
    run_without_hf_vqvae,
)
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoImageProcessor, AutoModel

from hf_vqvae import VQVAE2Config, VQVAE2Model, VQVAEImageProcessor
from hf_vqvae.data import photo_crop_tensor


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are small: one thread runs them nearly as fast as two on an idle machine, and far faster when
    other jobs share the two cores (OpenMP's barrier spinning then stalls a two-thread run by an order of
    magnitude: 0.11 s against 1.8 s per training step, measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_config(**kwargs) -> VQVAE2Config:
    options = {
        "image_size": 64,
        "hidden_channels": 32,
        "residual_channels": 16,
        "num_residual_blocks": 1,
        "num_embeddings": 64,
        "embedding_dim": 16,
        **kwargs,
    }
    return VQVAE2Config(**options)


def random_pixels(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def trained_model(config: VQVAE2Config | None = None, steps: int = 3) -> VQVAE2Model:
    """A few training steps on random images, so every level's EMA buffers, usage counters and k-means flag hold
    non-initial values that a lossy round trip would change."""
    torch.manual_seed(0)
    model = VQVAE2Model(config or small_config(image_size=32))
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    size = model.config.image_size
    for step in range(steps):
        loss = model(random_pixels(4, size, seed=step)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


# ----------------------------------------------------------------------------------------------------------------
# shapes and the encode / decode API


@pytest.mark.parametrize(
    ("image_size", "factors", "expected"),
    [
        (256, [8, 4], [(32, 32), (64, 64)]),  # the paper's 256x256 model: 32x32 top, 64x64 bottom
        (128, [8, 4], [(16, 16), (32, 32)]),
        (128, [16, 8, 4], [(8, 8), (16, 16), (32, 32)]),
    ],
)
def test_code_shapes_per_level(image_size, factors, expected):
    model = VQVAE2Model(small_config(image_size=image_size, downsample_factors=factors)).eval()
    pixels = random_pixels(1, image_size)
    out = model(pixels)
    assert [tuple(c.shape[1:]) for c in out.codes] == expected
    assert model.config.latent_sizes == tuple(side for side, _ in expected)
    assert len(out.perplexity) == len(out.level_losses) == len(out.codebook_usage) == len(factors)
    assert out.reconstruction.shape == pixels.shape

    codes = model.encode(pixels)
    assert isinstance(codes, tuple) and all(c.dtype == torch.long for c in codes)
    assert all(torch.equal(a, b) for a, b in zip(codes, out.codes))
    torch.testing.assert_close(model.decode(codes), out.reconstruction)


def test_default_config_is_the_papers_two_level_model():
    config = VQVAE2Config()
    assert config.downsample_factors == [8, 4] and config.num_levels == 2
    assert config.latent_sizes == (32, 64)
    assert config.level_num_embeddings == (512, 512) and config.level_embedding_dims == (64, 64)


def test_three_levels_with_per_level_codebooks():
    config = small_config(
        image_size=64, downsample_factors=[16, 8, 4], num_embeddings=[32, 48, 64], embedding_dim=[8, 12, 16]
    )
    model = VQVAE2Model(config).eval()
    assert [(q.num_embeddings, q.embedding_dim) for q in model.quantizers] == [(32, 8), (48, 12), (64, 16)]
    pixels = random_pixels(2, 64)
    codes = model.encode(pixels)
    assert [tuple(c.shape) for c in codes] == [(2, 4, 4), (2, 8, 8), (2, 16, 16)]
    assert all(int(c.max()) < k for c, k in zip(codes, config.level_num_embeddings))
    assert model.decode(codes).shape == pixels.shape


def test_decode_level_shows_one_level_alone():
    model = trained_model(small_config(image_size=32, downsample_factors=[16, 8, 4]))
    codes = model.encode(random_pixels(2, 32))
    full = model.decode(codes)
    for level in range(3):
        alone = model.decode_level(codes, level)
        assert alone.shape == full.shape and not torch.allclose(alone, full)
        # The other levels' codes have no influence: they are zeroed, and may as well be left out.
        others = [torch.zeros_like(c) if i != level else c for i, c in enumerate(codes)]
        torch.testing.assert_close(model.decode_level(others, level), alone)
        missing = [c if i == level else None for i, c in enumerate(codes)]
        torch.testing.assert_close(model.decode(missing), alone)
    # Negative indices count from the bottom, as for `codes`.
    torch.testing.assert_close(model.decode_level(codes, -1), model.decode_level(codes, 2))
    torch.testing.assert_close(model.decode(codes, keep_levels=[0, 1, 2]), full)


def test_decode_rejects_codes_that_do_not_fit():
    model = VQVAE2Model(small_config(image_size=32))
    top, bottom = model.encode(random_pixels(2, 32))
    with pytest.raises(ValueError, match="one code map per level"):
        model.decode((bottom,))
    with pytest.raises(ValueError, match=r"codes\[1\].*does not match"):
        model.decode((top, bottom[:, :4, :4]))
    with pytest.raises(ValueError, match=r"codes\[1\].*does not match"):
        model.decode((top, bottom[:1]))
    with pytest.raises(TypeError, match="tuple or list"):
        model.decode(bottom)
    with pytest.raises(ValueError, match="level indices"):
        model.decode_level((top, bottom), 2)
    with pytest.raises(ValueError, match=r"num_embeddings"):
        model.decode((top, bottom + model.config.level_num_embeddings[1]))


def test_pixel_values_must_divide_by_the_top_factor():
    model = VQVAE2Model(small_config(image_size=32))
    with pytest.raises(ValueError, match="multiples of the downsampling factor 8"):
        model(random_pixels(1, 36))
    with pytest.raises(ValueError, match="in_channels=3"):
        model(torch.zeros(1, 1, 32, 32))


# ----------------------------------------------------------------------------------------------------------------
# training behaviour


def test_forward_trains_every_level_and_encode_never_updates():
    torch.manual_seed(0)
    model = VQVAE2Model(small_config(image_size=64, downsample_factors=[16, 8, 4]))
    pixels = random_pixels(4, 64)

    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.encode(pixels)  # in training mode, still a pure lookup
    assert_state_dicts_bitwise_equal(before, model.state_dict())

    out = model(pixels)
    torch.testing.assert_close(out.loss, out.reconstruction_loss + sum(out.level_losses))
    torch.testing.assert_close(out.commitment_loss * model.config.commitment_cost, sum(out.level_losses))
    for level in range(3):
        prefix = f"quantizers.{level}."
        assert int(model.state_dict()[prefix + "step"]) == 1
        for name in ("codebook", "ema_count", "ema_sum"):
            assert not torch.equal(before[prefix + name], model.state_dict()[prefix + name]), prefix + name

    # Every trainable parameter gets a gradient: the upper encoders through their own quantiser and through the
    # conditioning of the levels below.
    out.loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not missing, missing
    assert not any(p.requires_grad for p in model.quantizers.parameters()), "EMA codebooks take no gradient"


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    pixels = random_pixels(2, 32)
    config = small_config(image_size=32, kmeans_init=False, dead_code_threshold=0.0)
    assert_checkpointing_keeps_gradients(VQVAE2Model, config, pixels)


@pytest.mark.slow
def test_training_on_photo_crops_lowers_validation_mse_and_uses_every_codebook():
    """300 steps at 64x64 (batch 16) on real photo crops; validation on crops from a different seed."""
    torch.manual_seed(0)
    config = small_config(image_size=64, num_embeddings=64, embedding_dim=32)
    model = VQVAE2Model(config)
    train = photo_crop_tensor(64, 1024, seed=0)
    validation = photo_crop_tensor(64, 128, seed=1)

    def evaluate():
        model.eval()
        with torch.no_grad():
            out = model(validation)
        model.train()
        return out.reconstruction_loss.item(), [p.item() for p in out.perplexity]

    initial_mse, _ = evaluate()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        batch = train[torch.randint(0, len(train), (16,), generator=generator)]
        loss = model(batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    final_mse, perplexities = evaluate()
    print(f"validation MSE {initial_mse:.4f} -> {final_mse:.4f}; perplexity per level (top first) {perplexities}")

    assert final_mse < 0.25 * initial_mse, (initial_mse, final_mse)
    for level, (perplexity, codebook_size) in enumerate(zip(perplexities, config.level_num_embeddings)):
        assert perplexity > 0.1 * codebook_size, f"level {level}: perplexity {perplexity:.1f} of K = {codebook_size}"


# ----------------------------------------------------------------------------------------------------------------
# config validation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"downsample_factors": []}, "at least one level"),
        ({"downsample_factors": [4, 8]}, "strictly decreasing"),
        ({"downsample_factors": [8, 8]}, "strictly decreasing"),
        ({"downsample_factors": [12, 4]}, r"downsample_factors\[0\]. must be a power of two"),
        ({"downsample_factors": [8, 1]}, r"downsample_factors\[1\]. must be a power of two >= 2"),
        ({"downsample_factors": 8}, "must be a list"),
        ({"image_size": 36, "downsample_factors": [8, 4]}, r"image_size. \(36\) must be divisible .* = 8"),
        ({"embedding_dim": [16, 16, 16]}, "2 levels, but `embedding_dim` lists 3 values"),
        ({"num_embeddings": [64]}, "2 levels, but `num_embeddings` lists 1 values"),
        ({"embedding_dim": [16, 0]}, r"embedding_dim\[1\]. must be a positive integer"),
        ({"decay": 1.0}, "decay"),
        ({"hidden_channels": 0}, "hidden_channels"),
    ],
)
def test_bad_configs_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small_config(**kwargs)


def test_config_round_trips_through_json(tmp_path):
    config = small_config(downsample_factors=(16, 8, 4), embedding_dim=(8, 12, 16))
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "vqvae2" and saved["downsample_factors"] == [16, 8, 4]
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, VQVAE2Config)
    assert {**loaded.to_dict(), "_name_or_path": ""} == config.to_dict()
    assert loaded.level_embedding_dims == (8, 12, 16)


# ----------------------------------------------------------------------------------------------------------------
# save / load through the transformers loaders


def save_repo(model: VQVAE2Model, folder) -> None:
    model.save_pretrained(folder)
    VQVAEImageProcessor.for_model_size(model.config.image_size, model.config.in_channels).save_pretrained(folder)


def test_save_load_round_trip_is_bitwise_for_every_level(tmp_path):
    model = trained_model()
    save_repo(model, tmp_path)
    saved = load_file(tmp_path / "model.safetensors")
    for level in range(model.num_levels):
        for name in ("codebook", "ema_count", "ema_sum", "step", "initialized", "last_used"):
            assert f"quantizers.{level}.{name}" in saved
        assert int(saved[f"quantizers.{level}.step"]) == 3 and bool(saved[f"quantizers.{level}.initialized"])
    assert_state_dicts_bitwise_equal(model.state_dict(), saved)

    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_vqvae2.VQVAE2Config",
        "AutoModel": "modeling_vqvae2.VQVAE2Model",
    }
    pixels = random_pixels(2, 32, seed=7)
    for loaded in (VQVAE2Model.from_pretrained(tmp_path), AutoModel.from_pretrained(tmp_path)):
        assert type(loaded) is VQVAE2Model
        assert_state_dicts_bitwise_equal(model.state_dict(), loaded.state_dict())
        assert all(torch.equal(a, b) for a, b in zip(model.encode(pixels), loaded.encode(pixels)))


REMOTE_LOAD = """
import json, torch
from safetensors.torch import load_file, save_file
from transformers import AutoImageProcessor, AutoModel
pixels = load_file({out!r} + "/pixels.safetensors")["pixels"]
report = {{}}
for tag, source in (("folder", {folder!r}), ("hub", "org/vqvae2-test")):
    model = AutoModel.from_pretrained(source, trust_remote_code=True).eval()
    processor = AutoImageProcessor.from_pretrained(source, trust_remote_code=True)
    with torch.no_grad():
        codes = model.encode(pixels)
        tensors = {{f"codes.{{i}}": c for i, c in enumerate(codes)}}
        tensors["reconstruction"] = model.decode(codes)
        tensors["top_alone"] = model.decode_level(codes, 0)
    save_file({{k: v.contiguous() for k, v in model.state_dict().items()}}, f"{out}/{{tag}}_state.safetensors")
    save_file(tensors, f"{out}/{{tag}}_outputs.safetensors")
    report[tag] = [type(model).__module__, type(processor).__module__]
print(json.dumps(report))
"""


def test_offline_hub_cache_and_trust_remote_code_without_hf_vqvae(tmp_path, hf_home):
    model = trained_model()
    save_repo(model, tmp_path / "repo")
    modules = ("configuration_vqvae2.py", "modeling_vqvae2.py", "modeling_vq_hierarchy.py", "quantizer.py")
    modules += ("layers.py",)
    for module in modules:
        assert (tmp_path / "repo" / module).exists(), module
    place_in_hub_cache(tmp_path / "repo", "org/vqvae2-test", hf_home)

    # In-process, through hf_vqvae's Auto registrations.
    assert isinstance(AutoConfig.from_pretrained("org/vqvae2-test"), VQVAE2Config)
    loaded = AutoModel.from_pretrained("org/vqvae2-test")
    assert type(loaded) is VQVAE2Model
    assert_state_dicts_bitwise_equal(model.state_dict(), loaded.state_dict())
    assert isinstance(AutoImageProcessor.from_pretrained("org/vqvae2-test"), VQVAEImageProcessor)

    # In a process where only transformers is installed: from the folder and from the Hub cache by repo id.
    out = tmp_path / "out"
    out.mkdir()
    pixels = random_pixels(2, 32, seed=3)
    save_file({"pixels": pixels}, out / "pixels.safetensors")
    remote_load = REMOTE_LOAD.format(folder=str(tmp_path / "repo"), out=str(out))
    report = run_without_hf_vqvae(remote_load, env={"OMP_NUM_THREADS": "1"})
    with torch.no_grad():
        codes = model.encode(pixels)
        expected = {f"codes.{i}": c for i, c in enumerate(codes)}
        expected["reconstruction"] = model.decode(codes)
        expected["top_alone"] = model.decode_level(codes, 0)
    for tag in ("folder", "hub"):
        model_module, processor_module = report[tag]
        assert model_module.startswith("transformers_modules.") and model_module.endswith("modeling_vqvae2")
        assert processor_module.startswith("transformers_modules.")
        assert_state_dicts_bitwise_equal(model.state_dict(), load_file(out / f"{tag}_state.safetensors"))
        assert_state_dicts_bitwise_equal(expected, load_file(out / f"{tag}_outputs.safetensors"))
