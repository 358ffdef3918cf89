"""transformers' model contract, as a new user meets it: loading a checkpoint that does not match the model exactly
(missing tensors initialised by the model's own init and named, unexpected ones named, size mismatches refused),
PixelSNAIL through `torch.export` and `torch.compile(fullgraph=True)`, and its code embedding as the model's input
embeddings (`enable_input_require_grads`, used by PEFT)."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import TINY_VQVAE
from safetensors.torch import load_file, save_file
from torch import nn

from hf_vqvae import PixelSNAILConfig, PixelSNAILModel, VQVAE2Config, VQVAE2Model, VQVAEConfig, VQVAEModel

PRIOR = {"num_embeddings": 13, "hidden_channels": 16, "num_stages": 2, "num_residual_blocks": 1}
PRIOR |= {"num_attention_heads": 2, "num_condition_blocks": 1, "dropout": 0.0}
MAP_PRIOR = {"latent_height": 4, "latent_width": 4, "condition_num_embeddings": 7, "condition_height": 2}
MAP_PRIOR |= {"condition_width": 2, "num_classes": 3}
SEQUENCE_PRIOR = {"spatial_dims": 1, "latent_length": 8, "condition_num_embeddings": 7, "condition_length": 4}
TINY_SIZES = {"hidden_channels": 16, "residual_channels": 8, "num_embeddings": 16, "embedding_dim": 4}


def prior_inputs(config: PixelSNAILConfig, batch: int = 2) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    inputs = {"codes": torch.randint(0, config.num_embeddings, (batch, *config.latent_shape), generator=generator)}
    if config.is_conditional:
        shape = (batch, *config.condition_shape)
        inputs["condition"] = torch.randint(0, config.condition_num_embeddings, shape, generator=generator)
    if config.is_class_conditional:
        inputs["class_labels"] = torch.randint(0, config.num_classes, (batch,), generator=generator)
    return inputs


def rewrite_checkpoint(folder, drop: list[str], add: dict[str, torch.Tensor] | None = None) -> dict:
    """Removes tensors from (and adds tensors to) a saved folder's safetensors file; returns the original tensors."""
    path = folder / "model.safetensors"
    tensors = load_file(path)
    kept = {name: value for name, value in tensors.items() if name not in drop}
    save_file({**kept, **(add or {})}, path, metadata={"format": "pt"})
    return tensors


# ------------------------------------------------------------------------------------------------------ loading
def test_missing_tensors_are_initialised_by_the_models_own_init_and_named(tmp_path):
    """A VQ-VAE checkpoint without its codebook, EMA counts and one convolution, plus a tensor the model lacks:
    the load succeeds, the warning and `output_loading_info` name all four, the missing tensors hold what a fresh
    model's `_init_weights` draws (codebook uniform in [-1/K, 1/K], N = 1 per code, Kaiming-uniform weights), and
    every other tensor, the EMA sums included, is the checkpoint's, bit for bit."""
    torch.manual_seed(0)
    VQVAEModel(VQVAEConfig(**TINY_VQVAE)).save_pretrained(tmp_path)
    names = list(load_file(tmp_path / "model.safetensors"))
    codebook = next(name for name in names if name.endswith("codebook"))
    ema_count = next(name for name in names if name.endswith("ema_count"))
    conv = next(name for name in names if name.endswith("conv1.weight"))
    saved = rewrite_checkpoint(tmp_path, drop=[codebook, ema_count, conv], add={"extra.weight": torch.ones(3)})

    with pytest.warns(UserWarning, match="does not match the model exactly") as caught:
        model, info = VQVAEModel.from_pretrained(tmp_path, output_loading_info=True)
    message = str(caught[0].message)
    for name in (codebook, ema_count, conv):
        assert f"{name}: missing from the checkpoint, initialised" in message
    assert "extra.weight: in the checkpoint, not in the model, ignored" in message
    assert info["missing_keys"] == {codebook, ema_count, conv}
    assert info["unexpected_keys"] == {"extra.weight"} and not info["mismatched_keys"]

    state = model.state_dict()
    num_codes = TINY_VQVAE["num_embeddings"]
    drawn = state[codebook]
    assert drawn.abs().max() <= 1 / num_codes and not torch.equal(drawn, saved[codebook])
    # The std of U(-1/K, 1/K) is 1 / (K sqrt 3); 256 draws estimate it to within a few percent.
    assert drawn.std().item() == pytest.approx(1 / (num_codes * math.sqrt(3)), rel=0.25)
    assert torch.equal(state[ema_count], torch.ones(num_codes))
    weight = state[conv]
    bound = 1 / math.sqrt(weight[0].numel())  # kaiming_uniform_(a=sqrt(5)) bound: 1 / sqrt(fan_in)
    assert weight.abs().max() <= bound and weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.25)
    for name, value in saved.items():
        if name not in (codebook, ema_count, conv):
            assert torch.equal(state[name], value), name


def test_missing_code_embedding_of_a_prior_is_drawn_from_its_init(tmp_path):
    torch.manual_seed(0)
    PixelSNAILModel(PixelSNAILConfig(**PRIOR, **MAP_PRIOR)).save_pretrained(tmp_path)
    saved = rewrite_checkpoint(tmp_path, drop=["embedding.weight"])
    with pytest.warns(UserWarning, match="embedding.weight: missing from the checkpoint, initialised"):
        model = PixelSNAILModel.from_pretrained(tmp_path)
    embedding = model.embedding.weight
    assert not torch.equal(embedding, torch.zeros_like(embedding)) and torch.isfinite(embedding).all()
    assert embedding.std().item() == pytest.approx(1.0, rel=0.25)  # N(0, 1), 13 x 16 draws
    assert torch.equal(model.output.weight, saved["output.weight"])


def test_an_exact_checkpoint_loads_without_a_warning(tmp_path, recwarn):
    PixelSNAILModel(PixelSNAILConfig(**PRIOR, **SEQUENCE_PRIOR)).save_pretrained(tmp_path)
    model, info = PixelSNAILModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not [w for w in recwarn if "does not match the model" in str(w.message)]
    assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"])


def test_size_mismatch_names_tensor_and_both_shapes_unless_reinitialised_on_purpose(tmp_path):
    PixelSNAILModel(PixelSNAILConfig(**PRIOR, **MAP_PRIOR)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="tensor sizes differ") as raised:
        PixelSNAILModel.from_pretrained(tmp_path, num_embeddings=20)
    assert "embedding.weight: checkpoint (13, 16) vs model (20, 16)" in str(raised.value)
    assert "output.weight: checkpoint (13, 16, 1, 1) vs model (20, 16, 1, 1)" in str(raised.value)
    assert "ignore_mismatched_sizes=True" in str(raised.value)

    with pytest.warns(UserWarning, match=r"embedding.weight: checkpoint \(13, 16\) vs model \(20, 16\), re-init"):
        model, info = PixelSNAILModel.from_pretrained(
            tmp_path, num_embeddings=20, ignore_mismatched_sizes=True, output_loading_info=True
        )
    assert model.embedding.weight.shape == (20, 16)
    assert {key for key, _, _ in info["mismatched_keys"]} == {"embedding.weight", "output.weight", "output.bias"}


# ---------------------------------------------------------------------------------------- export and compile
@pytest.mark.parametrize("shape", [MAP_PRIOR, SEQUENCE_PRIOR], ids=["map", "sequence"])
def test_prior_exports_and_compiles_fullgraph_with_eager_logits(shape):
    """`torch.export.export` and `torch.compile(fullgraph=True)` trace the whole forward (no data-dependent Python
    branch on the codes' values) and give eager mode's logits; eager mode still rejects out-of-range codes."""
    torch.manual_seed(0)
    torch._dynamo.reset()  # a fresh trace per model, not a dynamic-shape recompile of the previous one
    config = PixelSNAILConfig(**{**PRIOR, "num_stages": 1}, **shape)  # one stage: blocks, attention, conditioning
    model = PixelSNAILModel(config).eval()
    inputs = prior_inputs(config)
    with torch.no_grad():
        expected = model(**inputs).logits
        exported = torch.export.export(model, args=(), kwargs=inputs)
        torch.testing.assert_close(exported.module()(**inputs).logits, expected, rtol=1e-5, atol=1e-5)
        # Dynamo's graph capture is what `fullgraph` checks; the eager backend skips Inductor's slow C++ build.
        compiled = torch.compile(model, fullgraph=True, backend="eager")
        torch.testing.assert_close(compiled(**inputs).logits, expected, rtol=1e-5, atol=1e-5)
    bad = {**inputs, "codes": inputs["codes"] + config.num_embeddings}
    with pytest.raises(ValueError, match=r"\[0, 13\)"):
        model(**bad)


# ---------------------------------------------------------------------------------------- input embeddings
def test_code_embedding_is_the_input_embedding_and_enable_input_require_grads_reaches_it():
    torch.manual_seed(0)
    model = PixelSNAILModel(PixelSNAILConfig(**PRIOR, **SEQUENCE_PRIOR))
    inputs = prior_inputs(model.config)
    assert model.get_input_embeddings() is model.embedding
    model.requires_grad_(False)  # a frozen base model, as under an adapter
    assert not model(**inputs, labels=inputs["codes"]).loss.requires_grad
    model.enable_input_require_grads()
    embedded = []
    handle = model.get_input_embeddings().register_forward_hook(lambda module, args, out: embedded.append(out))
    loss = model(**inputs, labels=inputs["codes"]).loss
    handle.remove()
    assert loss.requires_grad
    (gradient,) = torch.autograd.grad(loss, embedded[0])
    assert gradient.shape == (2, *model.config.latent_shape, 16) and gradient.abs().sum() > 0

    replacement = nn.Embedding(13, 16)
    model.set_input_embeddings(replacement)
    assert model.get_input_embeddings() is replacement and model.embedding is replacement
    with torch.no_grad():
        replacement.weight.zero_()
        # All-zero code embeddings: the logits no longer depend on which codes were given.
        other = {**inputs, "codes": (inputs["codes"] + 1) % 13}
        torch.testing.assert_close(model(**inputs).logits, model(**other).logits)


def test_activation_checkpointing_of_the_prior_keeps_its_gradients():
    """Gated residual blocks and attention layers recompute their forward in the backward pass; the gradients, dropout
    included (its random state is replayed), are those of the plain model."""
    torch.manual_seed(0)
    config = PixelSNAILConfig(**{**PRIOR, "dropout": 0.2}, **MAP_PRIOR)
    plain = PixelSNAILModel(config).train()
    checkpointed = PixelSNAILModel(config).train()
    checkpointed.load_state_dict(plain.state_dict())
    checkpointed.activation_checkpointing_enable()
    assert checkpointed.is_activation_checkpointing
    recomputed = [type(m).__name__ for m in checkpointed.modules() if getattr(m, "gradient_checkpointing", False)]
    # Two stages of one gated block and attention, and the conditioning stack's one residual block.
    assert sorted(recomputed) == ["CausalSelfAttention"] * 2 + ["GatedResidualBlock"] * 2 + ["ResidualBlock"]
    inputs = prior_inputs(config)
    for model in (plain, checkpointed):
        torch.manual_seed(1)  # the same dropout masks
        model(**inputs, labels=inputs["codes"]).loss.backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), checkpointed.named_parameters()):
        assert a.grad is not None, name
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_code_input_vq_model_exposes_its_code_embedding_and_a_signal_model_says_it_has_none():
    """Stage 2 of the two-stage model (`input_num_embeddings`) reads codes through `input_embedding`: it is the
    input embedding, PEFT's `enable_input_require_grads` reaches it, and `set_input_embeddings` replaces it."""
    torch.manual_seed(0)
    config = VQVAEConfig(image_size=8, downsample_factor=4, in_channels=6, input_num_embeddings=11, **TINY_SIZES)
    model = VQVAEModel(config)
    assert model.get_input_embeddings() is model.input_embedding
    codes = torch.randint(0, 11, (2, 8, 8), generator=torch.Generator().manual_seed(1))
    model.requires_grad_(False)
    model.enable_input_require_grads()
    embedded = []
    handle = model.get_input_embeddings().register_forward_hook(lambda module, args, out: embedded.append(out))
    loss = model(codes).loss
    handle.remove()
    (gradient,) = torch.autograd.grad(loss, embedded[0])
    assert gradient.shape == (2, 8, 8, 6) and gradient.abs().sum() > 0

    replacement = nn.Embedding(11, 6)
    model.set_input_embeddings(replacement)
    assert model.get_input_embeddings() is replacement and model.input_embedding is replacement
    with torch.no_grad():
        replacement.weight.zero_()
        # All-zero code embeddings: the reconstruction logits no longer depend on the input codes.
        model.eval()
        torch.testing.assert_close(model(codes).reconstruction, model((codes + 1) % 11).reconstruction)

    pixels = VQVAEModel(VQVAEConfig(**TINY_VQVAE))
    for call in (pixels.get_input_embeddings, lambda: pixels.set_input_embeddings(nn.Embedding(2, 2))):
        with pytest.raises(NotImplementedError, match="input_num_embeddings"):
            call()


@pytest.mark.parametrize("model_class", [VQVAEModel, VQVAE2Model])
def test_init_weights_recreates_every_buffer_exactly(model_class):
    """A model built on the meta device and initialised by `init_weights` (how transformers materialises missing
    tensors) holds the same buffers as one built directly, whatever the random draw: the quantizer state is constant
    until the first training step places the EMA pseudo-observations at the codebook then in use."""
    config_class = VQVAEConfig if model_class is VQVAEModel else VQVAE2Config
    config = config_class(image_size=16, **TINY_SIZES)
    torch.manual_seed(0)
    direct = model_class(config)
    with torch.device("meta"):
        from_meta = model_class(config)
    from_meta.to_empty(device="cpu")
    torch.manual_seed(1)
    from_meta.init_weights()
    buffers = dict(from_meta.named_buffers())
    assert buffers and buffers.keys() == dict(direct.named_buffers()).keys()
    for name, value in direct.named_buffers():
        assert torch.equal(value, buffers[name]), name
    for quantizer in from_meta.quantizers:
        assert not torch.equal(quantizer.codebook, direct.quantizers[0].codebook)  # the codebook is drawn
        assert not quantizer.ema_sum.any() and not quantizer.initialized
    from_meta.train()(torch.rand(2, 3, 16, 16) * 2 - 1)
    for quantizer in from_meta.quantizers:
        assert quantizer.initialized and quantizer.ema_sum.abs().sum() > 0


def test_code_input_vq_model_exports_and_compiles_fullgraph_with_eager_outputs():
    """The code-map check reads values only in eager mode, so `torch.export` and `torch.compile(fullgraph=True)`
    trace a stage-2 VQ-VAE whole; eager mode still rejects out-of-range codes."""
    torch.manual_seed(0)
    torch._dynamo.reset()
    config = VQVAEConfig(image_size=8, downsample_factor=4, in_channels=6, input_num_embeddings=11, **TINY_SIZES)
    model = VQVAEModel(config).eval()
    codes = torch.randint(0, 11, (2, 8, 8), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(codes).reconstruction
        exported = torch.export.export(model, args=(codes,))
        torch.testing.assert_close(exported.module()(codes).reconstruction, expected, rtol=1e-5, atol=1e-5)
        compiled = torch.compile(model, fullgraph=True, backend="eager")
        torch.testing.assert_close(compiled(codes).reconstruction, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"\[0, 11\)"):
        model(codes + 11)
