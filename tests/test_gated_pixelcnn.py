"""The gated PixelCNN prior (`PixelSNAILConfig(architecture="gated_pixelcnn")`): its receptive field is the whole
causal past (no blind spot) and exactly what the config docstring says, cached sampling equals the full re-run, the
condition map and class reach the logits, and it survives save/load, the Auto classes and trust_remote_code."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_state_dicts_bitwise_equal, place_in_hub_cache, run_without_hf_vqvae
from transformers import AutoConfig, AutoModel

from hf_vqvae import (
    PixelSNAILConfig,
    PixelSNAILModel,
    VQGenerationModel,
    VQVAEConfig,
    VQVAEImageProcessor,
    VQVAEModel,
)
from hf_vqvae.hub import add_pipelines

K, HEIGHT, WIDTH = 11, 5, 6
CONDITIONAL = {"condition_num_embeddings": 7, "condition_height": 5, "condition_width": 3, "num_classes": 4}


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def gated(seed: int = 0, **kwargs) -> PixelSNAILModel:
    options = {"architecture": "gated_pixelcnn", "num_embeddings": K, "latent_height": HEIGHT, "latent_width": WIDTH,
               "hidden_channels": 8, "num_layers": 3, "kernel_size": 3, "dropout": 0.0, "num_condition_blocks": 1,
               **kwargs}  # fmt: skip
    torch.manual_seed(seed)
    return PixelSNAILModel(PixelSNAILConfig(**options)).eval()


def conditioning(model: PixelSNAILModel, batch: int) -> dict[str, torch.Tensor]:
    generator, config = torch.Generator().manual_seed(1), model.config
    inputs = {}
    if config.is_conditional:
        shape = (batch, *config.condition_shape)
        inputs["condition"] = torch.randint(0, config.condition_num_embeddings, shape, generator=generator)
    if config.is_class_conditional:
        inputs["class_labels"] = torch.randint(0, config.num_classes, (batch,), generator=generator)
    return inputs


def input_gradients(model: PixelSNAILModel, codes: torch.Tensor, **inputs) -> torch.Tensor:
    """`(H, W, H, W)`: whether the logits at (i, j) have a non-zero gradient w.r.t. the code embedding at (r, c)."""
    embedded = []
    hook = model.embedding.register_forward_hook(lambda module, args, output: embedded.append(output))
    try:
        reached = torch.zeros(HEIGHT, WIDTH, HEIGHT, WIDTH, dtype=torch.bool)
        for i in range(HEIGHT):
            for j in range(WIDTH):
                embedded.clear()
                logits = model(codes, **inputs).logits
                (gradient,) = torch.autograd.grad(logits[0, :, i, j].sum(), embedded[0])
                reached[i, j] = gradient[0].abs().sum(-1) > 0
    finally:
        hook.remove()
    return reached


@pytest.mark.parametrize("num_layers, kernel_size", [(5, 3), (2, 3), (2, 5)])
def test_receptive_field_is_the_causal_past_without_blind_spot(num_layers, kernel_size):
    """The gradient of the logits at every (i, j) w.r.t. the input embeddings: non-zero exactly at the positions
    `L * (k // 2)` rows above (all rows, with 5 layers of 3x3), within `L * (k // 2)` columns on either side (so to
    the right edge of the row above: no blind spot), and that many to the left in the same row; zero at (i, j) and
    everywhere after it."""
    model = gated(num_layers=num_layers, kernel_size=kernel_size, **CONDITIONAL)
    codes = torch.randint(0, K, (1, HEIGHT, WIDTH), generator=torch.Generator().manual_seed(0))
    reached = input_gradients(model, codes, **conditioning(model, 1))
    reach = num_layers * (kernel_size // 2)
    rows, cols = torch.meshgrid(torch.arange(HEIGHT), torch.arange(WIDTH), indexing="ij")
    for i in range(HEIGHT):
        for j in range(WIDTH):
            above = (rows < i) & (rows >= i - reach) & ((cols - j).abs() <= reach)
            left = (rows == i) & (cols < j) & (cols >= j - reach)
            assert torch.equal(reached[i, j], above | left), (i, j, reached[i, j].int().tolist())
    if reach >= max(HEIGHT, WIDTH) - 1:  # enough layers: every position of the causal past
        raster = torch.arange(HEIGHT * WIDTH).view(HEIGHT, WIDTH)
        for i in range(HEIGHT):
            for j in range(WIDTH):
                assert torch.equal(reached[i, j], raster < raster[i, j])


def test_condition_map_and_class_reach_every_logit():
    model = gated(**CONDITIONAL)
    inputs = conditioning(model, 2)
    codes = torch.zeros(2, HEIGHT, WIDTH, dtype=torch.long)
    with torch.no_grad():
        base = model(codes, **inputs).logits
        other_class = model(codes, condition=inputs["condition"], class_labels=(inputs["class_labels"] + 1) % 4).logits
        other_map = model(codes, condition=(inputs["condition"] + 1) % 7, class_labels=inputs["class_labels"]).logits
    for other in (other_class, other_map):
        assert ((base - other).abs().amax(dim=1) > 1e-5).all()  # every position, the first one included


@pytest.mark.parametrize("kwargs", [{}, {**CONDITIONAL, "kernel_size": 5, "num_layers": 4}])
def test_cached_sampling_equals_the_full_rerun(kwargs):
    """Cached (vertical stack a row at a time, horizontal stack a position at a time) and uncached sampling with
    the same generator: identical codes; the logits of every step within 1e-4 of each other and of one forward."""
    model = gated(**kwargs, dropout=0.2).train()
    inputs = conditioning(model, 3)
    options = {"temperature": 0.9, "top_k": 6, "return_logits": True}
    codes, logits = model.generate(3, **inputs, generator=torch.Generator().manual_seed(4), **options)
    assert model.training  # generate runs in eval mode and restores the mode
    full_codes, full_logits = model.generate(
        3, **inputs, generator=torch.Generator().manual_seed(4), use_cache=False, **options
    )
    assert codes.shape == (3, HEIGHT, WIDTH) and torch.equal(codes, full_codes)
    torch.testing.assert_close(logits, full_logits, atol=1e-4, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(codes, **inputs).logits, logits, atol=1e-4, rtol=0)
    assert not torch.equal(model.generate(3, **inputs, generator=torch.Generator().manual_seed(5)), codes)


def test_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="2-D code maps only"):
        PixelSNAILConfig(architecture="gated_pixelcnn", spatial_dims=1, latent_length=16)
    with pytest.raises(ValueError, match="architecture"):
        PixelSNAILConfig(architecture="pixelcnn++")
    with pytest.raises(ValueError, match="num_layers"):
        PixelSNAILConfig(num_layers=4)  # PixelSNAIL's depth is num_stages x num_residual_blocks
    with pytest.raises(ValueError, match="num_layers"):
        PixelSNAILConfig(architecture="gated_pixelcnn", num_layers=0)
    assert PixelSNAILConfig(architecture="gated_pixelcnn").num_layers == 15


REMOTE_CODE = """
import json, torch
from transformers import AutoModel, pipeline
model = AutoModel.from_pretrained("org/gated-bundle", trust_remote_code=True)
_, codes = model.generate(2, class_labels=[1, 3], guidance_scale=2.0, generator=torch.Generator().manual_seed(5),
                          return_codes=True)
generate = pipeline("unconditional-image-generation", model="org/gated-bundle", trust_remote_code=True)
pixels = generate(num_images=2, seed=5, class_labels=[1, 3], guidance_scale=2.0, output_type="pt")
print(json.dumps({"class": type(model).__name__, "prior": type(model.priors[0]).__module__,
                  "codes": codes[0].tolist(), "pixels": pixels.tolist()}))
"""


def test_save_load_auto_model_and_a_bundle_through_trust_remote_code(tmp_path, hf_home):
    """A guided, conditional gated PixelCNN: bitwise weights after save/load and through AutoConfig/AutoModel from
    an offline Hub cache. A generation bundle with a guided gated prior, where hf_vqvae is not installed
    (trust_remote_code: the layers file travels with the modeling files): the same guided codes, and the pipeline
    the same images as here."""
    model = gated(**CONDITIONAL, class_dropout=0.1)
    inputs = conditioning(model, 2)
    expected = model.generate(2, **inputs, guidance_scale=2.0, generator=torch.Generator().manual_seed(5))
    model.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / "gated_pixelcnn_layers.py").is_file()
    place_in_hub_cache(tmp_path / "saved", "org/gated-test", hf_home)
    config = AutoConfig.from_pretrained("org/gated-test")
    assert config.architecture == "gated_pixelcnn" and config.null_class_id == 4
    loaded = AutoModel.from_pretrained("org/gated-test")
    assert isinstance(loaded, PixelSNAILModel)
    assert_state_dicts_bitwise_equal(model.state_dict(), loaded.state_dict())
    samples = loaded.generate(2, **inputs, guidance_scale=2.0, generator=torch.Generator().manual_seed(5))
    assert torch.equal(samples, expected)

    torch.manual_seed(0)
    vq = VQVAEModel(VQVAEConfig(in_channels=1, image_size=12, hidden_channels=8, residual_channels=4,
                                num_embeddings=K, embedding_dim=4))  # fmt: skip
    prior = gated(latent_height=3, latent_width=3, num_classes=4, class_dropout=0.1)
    bundle = VQGenerationModel.from_parts(vq, [prior])
    bundle.save_pretrained(tmp_path / "bundle")
    VQVAEImageProcessor.for_model_size(12, num_channels=1).save_pretrained(tmp_path / "bundle")
    add_pipelines(tmp_path / "bundle", ["unconditional-image-generation"])
    place_in_hub_cache(tmp_path / "bundle", "org/gated-bundle", hf_home)
    pixels, codes = bundle.generate(2, class_labels=[1, 3], guidance_scale=2.0, return_codes=True,
                                    generator=torch.Generator().manual_seed(5))  # fmt: skip

    result = run_without_hf_vqvae(REMOTE_CODE, env={"HF_HOME": str(hf_home)})
    assert result["class"] == "VQGenerationModel" and not result["prior"].startswith("hf_vqvae")
    assert result["codes"] == codes[0].tolist()
    torch.testing.assert_close(torch.tensor(result["pixels"]), pixels, atol=1e-5, rtol=0)
