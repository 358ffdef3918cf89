"""PixelSNAILModel over 2-D code maps and 1-D code sequences: causality, cached sampling against the full re-run,
learning on codes of real photos, input validation, and the Hub path (Auto classes, offline cache, trust_remote_code
without hf_vqvae)."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import assert_state_dicts_bitwise_equal, place_in_hub_cache, run_without_hf_vqvae
from transformers import AutoConfig, AutoModel

from hf_vqvae import PixelSNAILConfig, PixelSNAILModel, VQVAEConfig, VQVAEModel
from hf_vqvae.data import photo_crop_tensor

K = 13
HEIGHT, WIDTH = 6, 5
CONDITION_K, CONDITION_HEIGHT, CONDITION_WIDTH = 7, 3, 5
NUM_CLASSES = 4
LENGTH, CONDITION_LENGTH = 12, 4

# Small maps and a small network: per-position work is a handful of tiny matmuls, which one thread runs faster than
# two (and the CPU is shared).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


VARIANTS = {
    "attention": {},
    "no_attention": {"attention": False},
    "conditional": {
        "attention": [False, True],
        "condition_num_embeddings": CONDITION_K,
        "condition_height": CONDITION_HEIGHT,
        "condition_width": CONDITION_WIDTH,
    },
    "class_conditional": {"num_classes": NUM_CLASSES, "kernel_size": 3},
    "sequence": {"spatial_dims": 1, "latent_length": LENGTH},
    "sequence_conditional": {
        "spatial_dims": 1,
        "latent_length": LENGTH,
        "attention": [False, True],
        "condition_num_embeddings": CONDITION_K,
        "condition_length": CONDITION_LENGTH,
        "num_classes": NUM_CLASSES,
        "kernel_size": 3,
    },
}


def small_config(**kwargs) -> PixelSNAILConfig:
    map_size = {} if kwargs.get("spatial_dims") == 1 else {"latent_height": HEIGHT, "latent_width": WIDTH}
    options = {
        "num_embeddings": K,
        **map_size,
        "hidden_channels": 16,
        "num_stages": 2,
        "num_residual_blocks": 1,
        "num_attention_heads": 2,
        "num_condition_blocks": 1,
        "dropout": 0.0,
        **kwargs,
    }
    return PixelSNAILConfig(**options)


def make_model(variant: str, seed: int = 0, **kwargs) -> PixelSNAILModel:
    torch.manual_seed(seed)
    return PixelSNAILModel(small_config(**VARIANTS[variant], **kwargs)).eval()


def conditioning(config: PixelSNAILConfig, batch: int, seed: int = 1) -> dict:
    generator = torch.Generator().manual_seed(seed)
    inputs = {}
    if config.is_conditional:
        size = (batch, *config.condition_shape)
        inputs["condition"] = torch.randint(0, config.condition_num_embeddings, size, generator=generator)
    if config.is_class_conditional:
        inputs["class_labels"] = torch.randint(0, config.num_classes, (batch,), generator=generator)
    return inputs


# ------------------------------------------------------------------------------------------------------ causality
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_changing_a_code_changes_no_logit_at_or_before_it(variant):
    """For every position p: change the code at p (one batch row per p, all other codes and the condition equal)
    and check that the logits at every position up to and including p stay the same (within float noise), while
    those of the next position and (on a map) of the one below do change (so the test would see a leak)."""
    model = make_model(variant)
    shape = model.config.latent_shape
    length, width = math.prod(shape), shape[-1]
    generator = torch.Generator().manual_seed(0)
    base = torch.randint(0, K, shape, generator=generator)
    codes = base.repeat(length + 1, *(1,) * len(shape)).view(length + 1, -1)
    for index in range(length):
        codes[index + 1, index] = (base.flatten()[index] + 1 + index % (K - 1)) % K
    inputs = {
        name: value[:1].expand(length + 1, *value.shape[1:]) for name, value in conditioning(model.config, 1).items()
    }
    with torch.no_grad():
        logits = model(codes.view(length + 1, *shape), **inputs).logits  # (length + 1, K, *shape)
    change = (logits[1:] - logits[:1]).abs().amax(dim=1).flatten(1)  # (perturbed position, position)
    for index in range(length):
        assert change[index, : index + 1].max() <= 1e-6, (
            f"{variant}: changing code {index} changed logits at or before it"
        )
        if index + 1 < length and (len(shape) == 1 or (index + 1) % width):
            assert change[index, index + 1] > 1e-4, f"{variant}: code {index} does not reach the next position"
        if len(shape) == 2 and index + width < length:
            assert change[index, index + width] > 1e-4, f"{variant}: code {index} does not reach the position below"


@pytest.mark.parametrize("attention", [True, False])
def test_attention_sees_the_whole_past_convolutions_a_cone(attention):
    """One stage of one block, 3x3 kernels: three causal convolutions reach three rows up. The first code and the
    top-right one reach the last position (five rows down) only through attention; the code just above-right of a
    position, one column beyond the kernel, never reaches it through the convolutions."""
    model = make_model("attention", num_stages=1, kernel_size=3, attention=attention)
    codes = torch.randint(0, K, (1, HEIGHT, WIDTH), generator=torch.Generator().manual_seed(0)).repeat(4, 1, 1)
    codes[1, 0, 0] = (codes[1, 0, 0] + 1) % K
    codes[2, 0, WIDTH - 1] = (codes[2, 0, WIDTH - 1] + 1) % K
    codes[3, 2, 3] = (codes[3, 2, 3] + 1) % K  # (3, 1) sees row 2 up to column 2 through the convolutions
    with torch.no_grad():
        logits = model(codes).logits
    change = (logits[1:] - logits[:1]).abs().amax(dim=1)  # (3, H, W)
    if attention:
        assert change[0, -1, -1] > 1e-4 and change[1, -1, -1] > 1e-4 and change[2, 3, 1] > 1e-4
    else:
        assert change[0, -1, -1] == 0 and change[1, -1, -1] == 0 and change[2, 3, 1] == 0


@pytest.mark.parametrize("attention", [True, False])
def test_sequence_convolutions_reach_exactly_their_kernels_attention_the_whole_past(attention):
    """1-D, one stage of one block, kernel 3: the strictly causal input convolution reads t-3..t-1 and each of the
    block's two convolutions t-2..t, so code t reaches positions t+1 .. t+7 through the convolutions and no further;
    attention carries it to the end of the sequence."""
    model = make_model("sequence", num_stages=1, kernel_size=3, attention=attention)
    codes = torch.randint(0, K, (1, LENGTH), generator=torch.Generator().manual_seed(0)).repeat(3, 1)
    codes[1, 0] = (codes[1, 0] + 1) % K
    codes[2, 3] = (codes[2, 3] + 1) % K
    with torch.no_grad():
        logits = model(codes).logits
    assert logits.shape == (3, K, LENGTH)
    reached = (logits[1:] - logits[:1]).abs().amax(dim=1) > 1e-5  # (2, T)
    for row, changed in ((0, 0), (1, 3)):
        expected = torch.zeros(LENGTH, dtype=torch.bool)
        expected[changed + 1 : (LENGTH if attention else changed + 8)] = True
        assert torch.equal(reached[row], expected), (changed, reached[row].int().tolist())


def test_condition_and_class_reach_the_logits():
    model = make_model("conditional")
    inputs = conditioning(model.config, 2)
    with torch.no_grad():
        codes = torch.zeros(2, HEIGHT, WIDTH, dtype=torch.long)
        base = model(codes, **inputs).logits
        other = model(codes, condition=(inputs["condition"] + 1) % CONDITION_K).logits
    assert (base - other).abs().max() > 1e-3
    # The first position has seen no code: its logits come from the condition alone.
    assert (base - other)[:, :, 0, 0].abs().max() > 1e-4

    model = make_model("class_conditional")
    with torch.no_grad():
        a = model(codes, class_labels=torch.tensor([0, 1])).logits
        b = model(codes, class_labels=torch.tensor([2, 3])).logits
    assert (a - b)[:, :, 0, 0].abs().max() > 1e-4


# ------------------------------------------------------------------------------------------------ cached sampling
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_cached_generation_equals_the_full_rerun(variant):
    """Same generator seed: identical codes, and the logits of every step within 1e-4 (cached: one position of work
    per step; uncached: the whole network on the whole map). The logits also match one forward of the result."""
    model = make_model(variant)
    inputs = conditioning(model.config, 3)
    cached_codes, cached_logits = model.generate(
        3, **inputs, generator=torch.Generator().manual_seed(7), return_logits=True
    )
    full_codes, full_logits = model.generate(
        3, **inputs, generator=torch.Generator().manual_seed(7), use_cache=False, return_logits=True
    )
    assert cached_codes.shape == (3, *model.config.latent_shape) and cached_codes.dtype == torch.long
    assert torch.equal(cached_codes, full_codes)
    torch.testing.assert_close(cached_logits, full_logits, atol=1e-4, rtol=0)
    with torch.no_grad():
        forward_logits = model(cached_codes, **inputs).logits
    torch.testing.assert_close(cached_logits, forward_logits, atol=1e-4, rtol=0)
    # A different seed gives different samples (the sampler does use the generator).
    other = model.generate(3, **inputs, generator=torch.Generator().manual_seed(8))
    assert not torch.equal(other, cached_codes)


def test_cached_generation_with_temperature_top_k_dropout_and_wide_kernel():
    """Temperature and top-k act the same on both paths; sampled codes are among the top k; generate runs in eval
    mode (dropout off, else the paths could not agree) and restores training mode."""
    model = make_model("attention", kernel_size=7, dropout=0.3, num_residual_blocks=2).train()
    kwargs = {"temperature": 0.7, "top_k": 3, "return_logits": True}
    codes, logits = model.generate(4, generator=torch.Generator().manual_seed(3), **kwargs)
    assert model.training
    full_codes, full_logits = model.generate(4, generator=torch.Generator().manual_seed(3), use_cache=False, **kwargs)
    assert torch.equal(codes, full_codes)
    torch.testing.assert_close(logits, full_logits, atol=1e-4, rtol=0)
    top3 = logits.topk(3, dim=1).indices  # (B, 3, H, W)
    assert (top3 == codes[:, None]).any(dim=1).all()


# ------------------------------------------------------------------------------------------------------- learning
@pytest.fixture(scope="module")
def photo_codes() -> tuple[torch.Tensor, torch.Tensor]:
    """Codes of real photo crops: a tiny VQ-VAE trained for a few seconds on 32x32 crops of scikit-image's photos,
    then used to encode separate training and held-out crops into 8x8 maps of 32 codes."""
    num_embeddings = 32
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    vqvae = VQVAEModel(
        VQVAEConfig(
            image_size=32,
            hidden_channels=32,
            residual_channels=16,
            num_residual_blocks=1,
            downsample_factor=4,
            num_embeddings=num_embeddings,
            embedding_dim=16,
            kmeans_init=True,
        )
    )
    images = photo_crop_tensor(32, 768, seed=0)
    optimizer = torch.optim.Adam(vqvae.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(80):
        loss = vqvae(images[torch.randint(0, len(images), (32,), generator=generator)]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    vqvae.eval()
    codes = vqvae.encode(images), vqvae.encode(photo_crop_tensor(32, 192, seed=1))
    torch.set_num_threads(previous_threads)
    return codes


@pytest.mark.parametrize("spatial_dims", [2, 1])
def test_learns_codes_of_real_photos_below_uniform_and_unigram_entropy(photo_codes, spatial_dims):
    """2-D: the 8x8 code maps. 1-D: the same codes read as sequences of 64 in raster order, so the prior must find
    the row above 8 steps back (attention) rather than through a 2-D kernel."""
    num_codes = 32
    train_codes, heldout_codes = photo_codes
    if spatial_dims == 1:
        train_codes, heldout_codes = train_codes.flatten(1), heldout_codes.flatten(1)
        shape = {"spatial_dims": 1, "latent_length": 64}
    else:
        shape = {"latent_height": 8, "latent_width": 8}
    counts = torch.bincount(heldout_codes.flatten(), minlength=num_codes).double()
    probs = counts[counts > 0] / counts.sum()
    # Entropy of the held-out codes' own histogram: no position-independent model does better on them.
    unigram_bits = float(-(probs * probs.log2()).sum())
    assert unigram_bits > 3.0, f"the VQ-VAE uses too few codes ({unigram_bits:.2f} bits) for a meaningful test"

    torch.manual_seed(0)
    prior = PixelSNAILModel(
        PixelSNAILConfig(
            num_embeddings=num_codes,
            **shape,
            hidden_channels=48,
            num_stages=2,
            num_residual_blocks=1,
            attention=[False, True],
            num_attention_heads=2,
            kernel_size=3,
            dropout=0.1,
        )
    )
    optimizer = torch.optim.Adam(prior.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(120):
        batch = train_codes[torch.randint(0, len(train_codes), (32,), generator=generator)]
        loss = prior(batch, labels=batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    prior.eval()
    with torch.no_grad():
        out = prior(heldout_codes, labels=heldout_codes)
    bits = out.bits_per_code.item()
    assert math.isclose(bits, out.loss.item() / math.log(2), rel_tol=1e-6)
    assert bits < math.log2(num_codes), (bits, math.log2(num_codes))
    assert bits < unigram_bits - 0.1, f"held-out {bits:.3f} bits/code vs unigram entropy {unigram_bits:.3f}"


def test_loss_is_mean_nll_in_nats():
    model = make_model("no_attention")
    codes = torch.randint(0, K, (2, HEIGHT, WIDTH), generator=torch.Generator().manual_seed(0))
    out = model(codes, labels=codes)
    log_probs = out.logits.log_softmax(dim=1).gather(1, codes[:, None])
    torch.testing.assert_close(out.loss, -log_probs.mean())
    assert model(codes).loss is None
    loss, logits, bits = model(codes, labels=codes, return_dict=False)
    torch.testing.assert_close(bits, loss / math.log(2))


# ------------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"num_embeddings": 0}, "num_embeddings"),
        ({"latent_height": 0}, "latent_height"),
        ({"kernel_size": 4}, "kernel_size"),
        ({"kernel_size": 1}, "kernel_size"),
        ({"attention": [True]}, "attention"),
        ({"hidden_channels": 10, "num_attention_heads": 4}, "num_attention_heads"),
        ({"dropout": 1.0}, "dropout"),
        ({"condition_num_embeddings": 8}, "condition_height"),
        ({"condition_num_embeddings": 8, "condition_height": 4, "condition_width": 5}, "condition_height"),
        ({"condition_height": 2, "condition_width": 2}, "condition_num_embeddings"),
        ({"num_classes": 0}, "num_classes"),
        ({"spatial_dims": 3}, "spatial_dims"),
        ({"spatial_dims": 1}, "latent_length"),
        ({"spatial_dims": 1, "latent_length": 8, "latent_width": 8}, "latent_width"),
        ({"latent_length": 8}, "latent_length"),
        ({"spatial_dims": 1, "latent_length": 0}, "latent_length"),
        ({"spatial_dims": 1, "latent_length": 8, "condition_num_embeddings": 4}, "condition_length"),
        ({"spatial_dims": 1, "latent_length": 8, "condition_num_embeddings": 4, "condition_length": 3}, "divide"),
        ({"spatial_dims": 1, "latent_length": 8, "condition_length": 4}, "condition_num_embeddings"),
    ],
)
def test_bad_config_raises_value_error_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        small_config(**kwargs)


def test_default_config_is_a_32x32_map_and_sequence_configs_round_trip(tmp_path):
    config = PixelSNAILConfig()
    assert (config.spatial_dims, config.latent_shape, config.condition_shape) == (2, (32, 32), None)
    config = small_config(**VARIANTS["sequence_conditional"])
    assert (config.latent_shape, config.condition_shape) == ((LENGTH,), (CONDITION_LENGTH,))
    assert config.latent_height is None and config.latent_width is None
    config.save_pretrained(tmp_path)
    loaded = PixelSNAILConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()


def test_codes_out_of_range_or_misshapen_are_rejected():
    model = make_model("no_attention")
    codes = torch.zeros(2, HEIGHT, WIDTH, dtype=torch.long)
    for bad_value in (K, -1):
        bad = codes.clone()
        bad[1, 2, 3] = bad_value
        with pytest.raises(ValueError, match=rf"\[0, {K}\)"):
            model(bad)
        with pytest.raises(ValueError, match=rf"labels.*\[0, {K}\)"):
            model(codes, labels=bad)
    with pytest.raises(ValueError, match=rf"\(batch, {HEIGHT}, {WIDTH}\)"):
        model(torch.zeros(2, HEIGHT + 1, WIDTH, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        model(codes.float())


def test_sequence_codes_and_condition_of_the_wrong_shape_are_rejected():
    model = make_model("sequence_conditional")
    codes = torch.zeros(2, LENGTH, dtype=torch.long)
    labels = torch.tensor([0, 1])
    condition = torch.zeros(2, CONDITION_LENGTH, dtype=torch.long)
    assert model(codes, condition=condition, class_labels=labels).logits.shape == (2, K, LENGTH)
    with pytest.raises(ValueError, match=rf"\(batch, {LENGTH}\)"):
        model(torch.zeros(2, 1, LENGTH, dtype=torch.long), condition=condition, class_labels=labels)
    with pytest.raises(ValueError, match=rf"\(2, {CONDITION_LENGTH}\)"):
        model(codes, condition=torch.zeros(2, CONDITION_LENGTH + 1, dtype=torch.long), class_labels=labels)
    with pytest.raises(ValueError, match=rf"\(2, {CONDITION_LENGTH}\)"):
        model(codes, class_labels=labels)


def test_wrong_condition_shapes_and_values_are_rejected():
    model = make_model("conditional")
    codes = torch.zeros(2, HEIGHT, WIDTH, dtype=torch.long)
    expected = rf"\(2, {CONDITION_HEIGHT}, {CONDITION_WIDTH}\)"
    with pytest.raises(ValueError, match=expected):
        model(codes, condition=torch.zeros(2, CONDITION_HEIGHT, CONDITION_WIDTH + 1, dtype=torch.long))
    with pytest.raises(ValueError, match=expected):
        model(codes, condition=torch.zeros(3, CONDITION_HEIGHT, CONDITION_WIDTH, dtype=torch.long))
    with pytest.raises(ValueError, match=expected):
        model(codes)  # a conditional prior needs its condition
    with pytest.raises(ValueError, match=rf"\[0, {CONDITION_K}\)"):
        model(codes, condition=torch.full((2, CONDITION_HEIGHT, CONDITION_WIDTH), CONDITION_K))
    with pytest.raises(ValueError, match=r"\(4, 3, 5\)"):
        model.generate(4, condition=torch.zeros(2, CONDITION_HEIGHT, CONDITION_WIDTH, dtype=torch.long))
    with pytest.raises(ValueError, match="condition=None"):
        make_model("attention")(codes, condition=torch.zeros(2, 3, 5, dtype=torch.long))

    model = make_model("class_conditional")
    with pytest.raises(ValueError, match=r"class_labels.*\(2,\)"):
        model(codes)
    with pytest.raises(ValueError, match=rf"\[0, {NUM_CLASSES}\)"):
        model(codes, class_labels=torch.tensor([0, NUM_CLASSES]))
    with pytest.raises(ValueError, match="num_classes"):
        make_model("attention")(codes, class_labels=torch.tensor([0, 1]))


def test_bad_sampling_arguments_are_rejected():
    model = make_model("no_attention")
    for kwargs, field in [
        ({"temperature": 0.0}, "temperature"),
        ({"top_k": 0}, "top_k"),
        ({"num_samples": 0}, "num_samples"),
    ]:
        with pytest.raises(ValueError, match=field):
            model.generate(**{"num_samples": 2, **kwargs})


# ------------------------------------------------------------------------------------------------------- Hub path
REMOTE_CODE = """
import json, torch
from transformers import AutoModel
model = AutoModel.from_pretrained("org/pixelsnail-test", trust_remote_code=True)
condition = torch.tensor({condition})
codes = model.generate(2, condition=condition, generator=torch.Generator().manual_seed(5))
print(json.dumps({{"class": type(model).__name__, "module": type(model).__module__, "codes": codes.tolist()}}))
"""


def test_auto_classes_offline_cache_and_trust_remote_code(tmp_path, hf_home):
    model = make_model("conditional")
    condition = conditioning(model.config, 2)["condition"]
    expected = model.generate(2, condition=condition, generator=torch.Generator().manual_seed(5))
    model.save_pretrained(tmp_path / "saved")
    for name in (
        "modeling_pixelsnail.py",
        "pixelsnail_layers.py",
        "configuration_pixelsnail.py",
        "layers.py",
        "config_validation.py",
    ):
        assert (tmp_path / "saved" / name).is_file(), f"{name} not copied next to the weights"
    place_in_hub_cache(tmp_path / "saved", "org/pixelsnail-test", hf_home)

    config = AutoConfig.from_pretrained("org/pixelsnail-test")
    assert isinstance(config, PixelSNAILConfig) and config.attention == [False, True]
    loaded = AutoModel.from_pretrained("org/pixelsnail-test")
    assert isinstance(loaded, PixelSNAILModel)
    assert_state_dicts_bitwise_equal(model.state_dict(), loaded.state_dict())
    assert torch.equal(loaded.generate(2, condition=condition, generator=torch.Generator().manual_seed(5)), expected)

    result = run_without_hf_vqvae(REMOTE_CODE.format(condition=condition.tolist()), env={"HF_HOME": str(hf_home)})
    assert result["class"] == "PixelSNAILModel" and not result["module"].startswith("hf_vqvae")
    assert result["codes"] == expected.tolist()
