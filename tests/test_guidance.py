"""Classifier-free guidance of class-conditional priors: class dropout in training replaces the right share of labels
with the null class, guided sampling mixes the logits of one batched forward as `l_u + s (l_c - l_u)` with the cache
and without it alike, s = 1 and s = 0 are plain conditional and unconditional sampling, bad requests are refused by
name, and scripts/train.py --class_dropout trains a guided gated PixelCNN."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import train_command
from huggingface_hub import ModelCard, ModelCardData
from test_training import load_script
from user_data import TINY_PRIOR, code_dataset

from hf_vqvae import (
    PixelSNAILConfig,
    PixelSNAILModel,
    VQGenerationModel,
    VQGenerationPipeline,
    VQVAEConfig,
    VQVAEImageProcessor,
    VQVAEModel,
)
from hf_vqvae.hub import template_path

K, HEIGHT, WIDTH, NUM_CLASSES = 9, 4, 5, 3
MAP = {"condition_num_embeddings": 5, "condition_height": 2, "condition_width": 5}
ARCHITECTURES = {
    "pixelsnail": {"num_stages": 2, "num_residual_blocks": 1, "num_attention_heads": 2, "attention": [False, True]},
    "gated_pixelcnn": {"architecture": "gated_pixelcnn", "num_layers": 3},
}


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def prior(architecture: str = "pixelsnail", seed: int = 0, **kwargs) -> PixelSNAILModel:
    options = {"num_embeddings": K, "latent_height": HEIGHT, "latent_width": WIDTH, "hidden_channels": 8,
               "kernel_size": 3, "dropout": 0.0, "num_condition_blocks": 1, "num_classes": NUM_CLASSES,
               "class_dropout": 0.1, **ARCHITECTURES[architecture], **kwargs}  # fmt: skip
    torch.manual_seed(seed)
    return PixelSNAILModel(PixelSNAILConfig(**options)).eval()


def inputs_for(model: PixelSNAILModel, batch: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(2)
    inputs = {"class_labels": torch.randint(0, NUM_CLASSES, (batch,), generator=generator)}
    if model.config.is_conditional:
        inputs["condition"] = torch.randint(0, 5, (batch, 2, 5), generator=generator)
    return inputs


# ------------------------------------------------------------------------------------------------------ training
def test_class_dropout_replaces_the_configured_share_of_labels_with_the_null_class():
    model = prior(class_dropout=0.25)
    assert model.config.null_class_id == NUM_CLASSES and model.class_embedding.num_embeddings == NUM_CLASSES + 1
    labels = torch.randint(0, NUM_CLASSES, (40_000,), generator=torch.Generator().manual_seed(0))
    dropped = model.drop_class_labels(labels, generator=torch.Generator().manual_seed(1))
    replaced = dropped != labels
    # Binomial(40000, 0.25): one standard deviation of the share is 0.0022.
    assert abs(replaced.double().mean().item() - 0.25) < 0.01
    assert (dropped[replaced] == NUM_CLASSES).all() and torch.equal(dropped[~replaced], labels[~replaced])
    # Each class loses the same share (the choice does not depend on the label).
    for label in range(NUM_CLASSES):
        assert abs(replaced[labels == label].double().mean().item() - 0.25) < 0.02

    # forward() drops labels in training mode only, with the global RNG: the training logits are the eval logits
    # of the dropped labels.
    codes = torch.randint(0, K, (64, HEIGHT, WIDTH), generator=torch.Generator().manual_seed(3))
    labels = torch.randint(0, NUM_CLASSES, (64,), generator=torch.Generator().manual_seed(4))
    torch.manual_seed(5)
    training_logits = model.train()(codes, class_labels=labels).logits
    torch.manual_seed(5)
    expected_labels = model.drop_class_labels(labels)
    assert 0 < (expected_labels == NUM_CLASSES).sum() < 64
    with torch.no_grad():
        model.eval()
        torch.testing.assert_close(training_logits, model(codes, class_labels=expected_labels).logits)
        assert not torch.allclose(model(codes, class_labels=labels).logits, training_logits)


def test_default_priors_have_no_null_class_and_reject_its_label():
    config = PixelSNAILConfig(num_classes=NUM_CLASSES, latent_height=4, latent_width=4)
    assert config.class_dropout == 0 and config.null_class is False and config.null_class_id is None
    model = PixelSNAILModel(config)
    assert model.class_embedding.num_embeddings == NUM_CLASSES
    with pytest.raises(ValueError, match="class_labels"):
        model(torch.zeros(1, 4, 4, dtype=torch.long), class_labels=torch.tensor([NUM_CLASSES]))
    # A guided prior fine-tuned without dropout keeps its null class.
    assert PixelSNAILConfig(num_classes=3, null_class=True).num_class_embeddings == 4
    with pytest.raises(ValueError, match="num_classes"):
        PixelSNAILConfig(class_dropout=0.1)
    with pytest.raises(ValueError, match="class_dropout"):
        PixelSNAILConfig(num_classes=3, class_dropout=1.0)
    with pytest.raises(ValueError, match="null_class"):
        PixelSNAILConfig(num_classes=3, class_dropout=0.1, null_class=False)


# ------------------------------------------------------------------------------------------------------ sampling
@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_guided_sampling_cached_equals_uncached_and_mixes_the_logits(architecture):
    """s = 3 with a condition map and classes: identical codes with and without the cache; the logits sampled from
    are `l_u + 3 (l_c - l_u)` of the final codes under their labels and under the null class."""
    model = prior(architecture, **MAP)
    inputs = inputs_for(model, 3)
    options = {"guidance_scale": 3.0, "return_logits": True, "top_k": 5}
    codes, logits = model.generate(3, **inputs, generator=torch.Generator().manual_seed(6), **options)
    full_codes, full_logits = model.generate(
        3, **inputs, generator=torch.Generator().manual_seed(6), use_cache=False, **options
    )
    assert torch.equal(codes, full_codes)
    torch.testing.assert_close(logits, full_logits, atol=1e-4, rtol=0)
    with torch.no_grad():
        conditional = model(codes, **inputs).logits
        null = torch.full_like(inputs["class_labels"], NUM_CLASSES)
        unconditional = model(codes, condition=inputs.get("condition"), class_labels=null).logits
    torch.testing.assert_close(logits, unconditional + 3.0 * (conditional - unconditional), atol=1e-4, rtol=0)


def test_one_batched_forward_per_step():
    """With guidance each step embeds the codes of one doubled batch once (uncached: the whole map per step;
    cached: the one code sampled last)."""
    model = prior("gated_pixelcnn")
    batches: list[int] = []
    hook = model.embedding.register_forward_hook(lambda module, args, output: batches.append(args[0].shape[0]))
    try:
        model.generate(2, class_labels=torch.tensor([0, 2]), guidance_scale=2.0, use_cache=False)
        assert batches == [4] * (HEIGHT * WIDTH)
        batches.clear()
        model.generate(2, class_labels=torch.tensor([0, 2]), guidance_scale=2.0)
        assert batches == [4] * (HEIGHT * WIDTH - 1)  # nothing to embed before the first code
    finally:
        hook.remove()


def test_scale_one_is_conditional_and_scale_zero_unconditional_sampling():
    model = prior("pixelsnail")
    labels = torch.tensor([0, 1, 2, 1])
    plain = model.generate(4, class_labels=labels, generator=torch.Generator().manual_seed(8))
    guided_one = model.generate(4, class_labels=labels, guidance_scale=1.0, generator=torch.Generator().manual_seed(8))
    assert torch.equal(plain, guided_one)
    null = torch.full_like(labels, NUM_CLASSES)
    unconditional = model.generate(4, class_labels=null, generator=torch.Generator().manual_seed(8))
    guided_zero = model.generate(4, class_labels=labels, guidance_scale=0, generator=torch.Generator().manual_seed(8))
    assert torch.equal(unconditional, guided_zero)
    assert not torch.equal(plain, guided_zero)


def test_guidance_of_a_prior_without_null_class_is_refused_by_name():
    without_null = prior("pixelsnail", class_dropout=0.0)
    with pytest.raises(ValueError, match="null class"):
        without_null.generate(2, class_labels=torch.tensor([0, 1]), guidance_scale=2.0)
    unconditional = prior("gated_pixelcnn", num_classes=None, class_dropout=0.0)
    with pytest.raises(ValueError, match="class-conditional"):
        unconditional.generate(2, guidance_scale=2.0)
    with pytest.raises(ValueError, match="guidance_scale"):
        prior().generate(2, class_labels=torch.tensor([0, 1]), guidance_scale=float("nan"))


# ------------------------------------------------------------------------------------------------------ train.py
def test_train_script_class_dropout_trains_a_guided_gated_pixelcnn(tmp_path):
    """`--class_dropout` reaches the prior's config (architecture from --model_config), the saved prior samples
    with guidance; the flag needs --class_conditional and a share in [0, 1)."""
    train = load_script("train")
    dataset = code_dataset(tmp_path / "codes", count=64, malformed=0, test_count=16)
    config = {**TINY_PRIOR, "architecture": "gated_pixelcnn", "num_layers": 2}
    for key in ("num_stages", "num_residual_blocks", "num_attention_heads"):
        config.pop(key)
    command = train_command(
        dataset, tmp_path / "prior", model="pixelsnail", model_config=json.dumps(config), max_train_steps=2
    )
    model = train.main(train.parse_args(command + ["--class_conditional", "--class_dropout", "0.3"]))
    assert model.config.architecture == "gated_pixelcnn" and model.config.class_dropout == 0.3
    saved = PixelSNAILModel.from_pretrained(tmp_path / "prior")
    assert saved.config.null_class_id == 10 and saved.class_embedding.num_embeddings == 11
    codes = saved.generate(2, class_labels=torch.tensor([3, 7]), guidance_scale=2.0)
    assert codes.shape == (2, 7, 7)
    with pytest.raises(ValueError, match="--class_conditional"):
        train.parse_args(command + ["--class_dropout", "0.3"])
    with pytest.raises(ValueError, match="class_dropout"):
        train.parse_args(command + ["--class_conditional", "--class_dropout", "1.5"])


# --------------------------------------------------------------------------------------- bundle, pipeline, card
def test_bundle_pipeline_and_card_take_the_guidance_scale():
    """VQGenerationModel.generate and the generation pipeline pass `guidance_scale` to the class-conditional prior
    (the same images as guided prior samples decoded by the VQ-VAE); a prior without a null class is refused by
    name; the card shows guided sampling for a guided gated PixelCNN bundle, and not for a plain one."""
    torch.manual_seed(0)
    vq = VQVAEModel(VQVAEConfig(in_channels=1, image_size=16, hidden_channels=8, residual_channels=4,
                                num_embeddings=K, embedding_dim=4)).eval()  # fmt: skip
    guided = prior("gated_pixelcnn", latent_width=4)
    bundle = VQGenerationModel.from_parts(vq, [guided])
    labels = torch.tensor([0, 1, 2])
    pixels = bundle.generate(3, class_labels=labels, guidance_scale=2.0, generator=torch.Generator().manual_seed(3))
    codes = guided.generate(3, class_labels=labels, guidance_scale=2.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(pixels, vq.decode(codes).clamp(-1, 1))
    plain = bundle.generate(3, class_labels=labels, generator=torch.Generator().manual_seed(3))
    assert not torch.equal(plain, pixels)

    pipe = VQGenerationPipeline(model=bundle, image_processor=VQVAEImageProcessor.for_model_size(16, num_channels=1))
    images = pipe(num_images=3, seed=3, class_labels=[0, 1, 2], guidance_scale=2.0, output_type="pt")
    assert torch.equal(images, pixels)

    unguided = VQGenerationModel.from_parts(vq, [prior("gated_pixelcnn", latent_width=4, class_dropout=0.0)])
    with pytest.raises(ValueError, match="null class"):
        unguided.generate(2, guidance_scale=2.0)

    def card(config: dict) -> str:
        context = {"priors": [{"config": config, "level": "top", "metric_rows": [], "training_rows": [],
                               "config_json": "{}"}],
                   "levels": [{"num_embeddings": K}], "num_classes": 3, "class_names": ["a", "b", "c"],
                   "vq": {"image_size": 16, "in_channels": 1, "commitment_cost": 0.25, "decay": 0.99},
                   "dataset": {"name": "Photos", "split": "test"}, "images": {}, "repo_id": "org/x"}  # fmt: skip
        return ModelCard.from_template(
            ModelCardData(), template_path=str(template_path("vq_generation")), **context
        ).text

    text = card(guided.config.to_dict())
    assert "gated PixelCNN prior" in text and "guidance_scale=3.0)" in text and "Classifier-Free" in text
    assert "{{" not in text and "{%" not in text
    text = card(prior("pixelsnail", class_dropout=0.0).config.to_dict())
    assert "PixelSNAIL prior" in text and "guidance_scale" not in text and "Classifier-Free" not in text
