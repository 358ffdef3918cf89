"""VQ-VAE through the real transformers / huggingface_hub loaders: save/load bitwise, trust_remote_code where
hf_vqvae cannot be imported, and `from_pretrained("org/name")` from an offline Hub cache.

The Hub itself cannot be reached from here; the cache is filled the way a download fills it (refs/main + snapshots/),
which is exactly what `from_pretrained` reads with HF_HUB_OFFLINE=1. Nothing else is stood in for.
"""

from __future__ import annotations

import json

import torch
from conftest import assert_state_dicts_bitwise_equal, place_in_hub_cache, run_without_hf_vqvae
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoImageProcessor, AutoModel

from hf_vqvae import VQVAEConfig, VQVAEImageProcessor, VQVAEModel


def trained_model() -> VQVAEModel:
    """A small model after a few training steps, so EMA buffers, usage counters and the k-means flag all hold
    non-initial values that a lossy round trip would change."""
    torch.manual_seed(0)
    config = VQVAEConfig(image_size=16, hidden_channels=16, residual_channels=8, num_embeddings=32, embedding_dim=8)
    model = VQVAEModel(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):
        loss = model(torch.rand(4, 3, 16, 16) * 2 - 1).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def save_repo(model: VQVAEModel, folder) -> None:
    model.save_pretrained(folder)
    VQVAEImageProcessor.for_model_size(model.config.image_size, model.config.in_channels).save_pretrained(folder)


def test_save_load_round_trip_is_bitwise(tmp_path):
    model = trained_model()
    assert int(model.quantizer.step) == 3 and bool(model.quantizer.initialized)
    save_repo(model, tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert not list(tmp_path.glob("*.bin")), "weights must be safetensors only"

    for loaded in (VQVAEModel.from_pretrained(tmp_path), AutoModel.from_pretrained(tmp_path)):
        assert type(loaded) is VQVAEModel
        assert_state_dicts_bitwise_equal(model.state_dict(), loaded.state_dict())
        assert "quantizers.0.ema_sum" in loaded.state_dict() and "quantizers.0.ema_count" in loaded.state_dict()
    # The file itself holds every tensor, EMA state included.
    assert_state_dicts_bitwise_equal(model.state_dict(), load_file(tmp_path / "model.safetensors"))


def test_saved_folder_carries_code_and_auto_map(tmp_path):
    save_repo(trained_model(), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_vqvae.VQVAEConfig",
        "AutoModel": "modeling_vqvae.VQVAEModel",
    }
    processor = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert processor["auto_map"]["AutoImageProcessor"] == "image_processing_vqvae.VQVAEImageProcessor"
    for module in ("configuration_vqvae.py", "modeling_vqvae.py", "quantizer.py", "layers.py", "config_validation.py"):
        assert (tmp_path / module).exists(), module


REMOTE_LOAD = """
import json, torch
from safetensors.torch import save_file
from transformers import AutoImageProcessor, AutoModel
from PIL import Image
model = AutoModel.from_pretrained({source!r}, trust_remote_code=True).eval()
processor = AutoImageProcessor.from_pretrained({source!r}, trust_remote_code=True)
pixels = processor(Image.open({image!r}), return_tensors="pt").pixel_values
with torch.no_grad():
    reconstruction = model(pixels).reconstruction
save_file({{k: v.contiguous() for k, v in model.state_dict().items()}}, {out!r} + "/state.safetensors")
save_file({{"pixels": pixels, "reconstruction": reconstruction}}, {out!r} + "/outputs.safetensors")
print(json.dumps({{"model": type(model).__module__, "processor": type(processor).__module__}}))
"""


def check_remote_load(model: VQVAEModel, source: str, tmp_path, env=None) -> None:
    image = tmp_path / "photo.png"
    Image.fromarray(torch.randint(0, 256, (20, 24, 3), dtype=torch.uint8).numpy()).save(image)
    out = tmp_path / "out"
    out.mkdir()
    report = run_without_hf_vqvae(REMOTE_LOAD.format(source=source, image=str(image), out=str(out)), env=env)
    # The classes came from the repo's own files, not from an installed hf_vqvae.
    assert report["model"].startswith("transformers_modules.") and "modeling_vqvae" in report["model"]
    assert report["processor"].startswith("transformers_modules.")
    assert_state_dicts_bitwise_equal(model.state_dict(), load_file(out / "state.safetensors"))
    outputs = load_file(out / "outputs.safetensors")
    with torch.no_grad():
        expected = model(outputs["pixels"]).reconstruction
    assert torch.equal(outputs["reconstruction"], expected)


def test_trust_remote_code_loads_where_hf_vqvae_is_not_installed(tmp_path, hf_home):
    model = trained_model()
    save_repo(model, tmp_path / "repo")
    check_remote_load(model, str(tmp_path / "repo"), tmp_path)


def test_offline_hub_cache_loads_by_repo_id(tmp_path, hf_home):
    model = trained_model()
    save_repo(model, tmp_path / "repo")
    place_in_hub_cache(tmp_path / "repo", "org/vqvae-imagenet", hf_home)

    # In-process, with hf_vqvae imported (its Auto registrations).
    assert isinstance(AutoConfig.from_pretrained("org/vqvae-imagenet"), VQVAEConfig)
    loaded = AutoModel.from_pretrained("org/vqvae-imagenet")
    assert type(loaded) is VQVAEModel
    assert_state_dicts_bitwise_equal(model.state_dict(), loaded.state_dict())
    processor = AutoImageProcessor.from_pretrained("org/vqvae-imagenet")
    assert isinstance(processor, VQVAEImageProcessor) and processor.crop_size["height"] == 16

    # And in a process where only transformers is installed.
    check_remote_load(model, "org/vqvae-imagenet", tmp_path, env={"HF_HOME": str(hf_home)})


def test_dtype_and_device_moves_keep_the_quantizer_working(tmp_path):
    model = trained_model()
    half = VQVAEModel.from_pretrained(_saved(model, tmp_path), dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16
    pixels = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        out = half(pixels.bfloat16())
    assert out.codes.shape == (1, 4, 4) and torch.isfinite(out.reconstruction.float()).all()
    assert half.to("cpu", torch.float32).dtype == torch.float32


def _saved(model: VQVAEModel, folder) -> str:
    model.save_pretrained(folder)
    return str(folder)


def test_state_file_is_plain_safetensors(tmp_path):
    """Safetensors only, never pickle: the file round-trips through safetensors' own API."""
    model = trained_model()
    model.save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    save_file(tensors, tmp_path / "copy.safetensors")
    assert_state_dicts_bitwise_equal(tensors, load_file(tmp_path / "copy.safetensors"))
