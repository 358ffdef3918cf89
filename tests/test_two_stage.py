"""The VQ-VAE paper's two-stage model (section 4.2): 84x84 frames -> 21x21 codes (stage 1), and a second VQ-VAE
whose input and output are those code maps (`input_num_embeddings`): code embeddings in, logits over the codes out,
21x21 -> 3x3 (or 2x2) codes, decoded through both decoders."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_state_dicts_bitwise_equal, place_in_hub_cache, run_without_hf_vqvae
from safetensors.torch import load_file, save_file
from transformers import AutoModel

from hf_vqvae import VQGenerationConfig, VQVAE2Config, VQVAE2Model, VQVAEConfig, VQVAEModel
from hf_vqvae.sampling import decode_codes

SMALL = {"hidden_channels": 16, "residual_channels": 8, "embedding_dim": 8, "kmeans_init": False}


def stage1() -> VQVAEModel:
    torch.manual_seed(0)
    return VQVAEModel(VQVAEConfig(image_size=84, downsample_factor=4, num_embeddings=512, **SMALL)).eval()


def stage2(factor: int = 8, **overrides) -> VQVAEModel:
    torch.manual_seed(1)
    config = {"image_size": 21, "downsample_factor": factor, "in_channels": 16, "num_embeddings": 512}
    config.update(input_num_embeddings=512, **SMALL)
    config.update(overrides)
    return VQVAEModel(VQVAEConfig(**config)).eval()


def random_codes(batch: int = 2, seed: int = 0) -> torch.LongTensor:
    return torch.randint(0, 512, (batch, 21, 21), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("factor", "side"), [(8, 3), (16, 2)])
def test_84_to_21_to_top_map_and_back_through_both_decoders(factor, side):
    first, second = stage1(), stage2(factor)
    pixels = torch.rand(2, 3, 84, 84) * 2 - 1
    codes = first.encode(pixels)
    assert codes.shape == (2, 21, 21) and first.config.latent_size == 21
    top = second.encode(codes)
    assert top.shape == (2, side, side) and second.config.latent_size == side
    logits = second.decode(top)
    assert logits.shape == (2, 512, 21, 21)
    assert first.decode(logits.argmax(1)).shape == (2, 3, 84, 84)


def test_the_config_field_says_what_the_input_is():
    assert VQVAEConfig().input_num_embeddings is None
    # A code map need not be a multiple of the factor (it is padded); a signal still must.
    assert VQVAEConfig(image_size=21, downsample_factor=8, input_num_embeddings=512).latent_size == 3
    with pytest.raises(ValueError, match="divisible"):
        VQVAEConfig(image_size=21, downsample_factor=8)
    with pytest.raises(ValueError, match="input_num_embeddings"):
        VQVAEConfig(image_size=21, downsample_factor=8, input_num_embeddings=0)
    config = VQVAE2Config(image_size=21, downsample_factors=[8, 4], input_num_embeddings=512)
    assert config.latent_sizes == (3, 6)
    # Only a code-input model has the embedding, and its decoder predicts the K codes.
    assert "input_embedding.weight" not in VQVAEModel(VQVAEConfig(image_size=16, **SMALL)).state_dict()
    model = stage2()
    assert model.input_embedding.weight.shape == (512, 16)
    assert model.decoder.upsample[-1].out_channels == 512


def test_reconstruction_loss_is_the_cross_entropy_of_the_input_codes():
    model = stage2(decay=0.0)  # codebook-loss variant: every loss term is visible in the output
    codes = random_codes()
    output = model(codes)
    assert output.reconstruction.shape == (2, 512, 21, 21)
    expected = F.cross_entropy(output.reconstruction, codes)
    torch.testing.assert_close(output.reconstruction_loss, expected, rtol=0, atol=0)
    total = expected + 0.25 * output.commitment_loss + output.codebook_loss
    torch.testing.assert_close(output.loss, total)
    # forward's logits are decode(encode(codes)) (forward's straight-through sum differs by rounding only).
    torch.testing.assert_close(model.decode(model.encode(codes)), output.reconstruction, rtol=1e-4, atol=1e-4)
    assert torch.equal(model.encode(codes), output.codes)


def test_padding_is_zero_and_never_reaches_the_cropped_output():
    model = stage2()
    codes = random_codes(1)
    embedded = model._encoder_input(codes)
    assert embedded.shape == (1, 16, 24, 24)
    assert torch.equal(embedded[:, :, :21, :21], model.input_embedding(codes).movedim(-1, 1))
    assert not embedded[:, :, 21:].any() and not embedded[:, :, :, 21:].any()


def test_stage2_learns_to_reconstruct_code_maps():
    """30 steps on 16 fixed code maps of two halves each (32 input codes): the cross-entropy falls by 15 % and the
    accuracy of the decoded argmax by half (the environment benchmark reports the full-size figures)."""
    torch.manual_seed(0)
    halves = torch.randint(0, 32, (16, 1, 2))
    codes = torch.cat([halves[:, :, :1].expand(16, 21, 10), halves[:, :, 1:].expand(16, 21, 11)], dim=2)
    model = stage2(num_embeddings=64, input_num_embeddings=32, kmeans_init=True).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def evaluate() -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            logits = model.decode(model.encode(codes))
            values = F.cross_entropy(logits, codes).item(), (logits.argmax(1) == codes).float().mean().item()
        model.train()
        return values

    loss_before, accuracy_before = evaluate()
    for _ in range(30):
        optimizer.zero_grad()
        model(codes).loss.backward()
        optimizer.step()
    loss_after, accuracy_after = evaluate()
    assert loss_after < 0.85 * loss_before, (loss_before, loss_after)
    assert accuracy_after > 1.5 * accuracy_before, (accuracy_before, accuracy_after)


def test_bad_code_input_is_refused_clearly():
    model = stage2()
    with pytest.raises(ValueError, match="input is a code map.*float32"):
        model(torch.rand(2, 3, 84, 84))
    with pytest.raises(ValueError, match=r"codes in \[0, 512\)"):
        model(random_codes() + 512)
    with pytest.raises(ValueError, match=r"shape \(batch, height, width\)"):
        model(random_codes().unsqueeze(1))


def test_a_stage2_model_is_never_decoded_as_if_its_logits_were_pixels():
    """The image-generation paths take any VQ model; a stage-2 one would give logits clamped to [-1, 1] as images."""
    model = stage2()
    top = model.encode(random_codes())
    with pytest.raises(ValueError, match="code maps.*VQTwoStageModel"):
        decode_codes(model, [top])
    with pytest.raises(ValueError, match="reads code maps.*VQTwoStageModel"):
        VQGenerationConfig(vq_config=model.config)


def test_stage2_hub_round_trip_without_hf_vqvae(tmp_path, hf_home):
    model = stage2(factor=16)
    model.save_pretrained(tmp_path / "repo")
    assert json.loads((tmp_path / "repo" / "config.json").read_text())["input_num_embeddings"] == 512
    place_in_hub_cache(tmp_path / "repo", "org/stage2", hf_home)
    loaded = AutoModel.from_pretrained("org/stage2")
    assert_state_dicts_bitwise_equal(model.state_dict(), loaded.state_dict())

    codes = random_codes()
    save_file({"codes": codes}, tmp_path / "codes.safetensors")
    report = run_without_hf_vqvae(
        f"""
        import json, torch
        from safetensors.torch import load_file, save_file
        from transformers import AutoModel
        codes = load_file("{tmp_path}/codes.safetensors")["codes"]
        model = AutoModel.from_pretrained("org/stage2", trust_remote_code=True).eval()
        top = model.encode(codes)
        save_file({{"top": top, "logits": model.decode(top)}}, "{tmp_path}/remote.safetensors")
        print(json.dumps({{"module": type(model).__module__}}))
        """,
        env={"OMP_NUM_THREADS": "1"},
    )
    assert report["module"].startswith("transformers_modules.")
    remote = load_file(tmp_path / "remote.safetensors")
    with torch.no_grad():
        top = model.encode(codes)
        assert torch.equal(remote["top"], top)
        # Another thread count may sum the convolutions in another order: equal up to float rounding.
        torch.testing.assert_close(remote["logits"], model.decode(top), rtol=1e-5, atol=1e-6)


def test_vqvae2_takes_code_maps_too():
    torch.manual_seed(0)
    config = VQVAE2Config(image_size=21, downsample_factors=[8, 4], in_channels=8, input_num_embeddings=512, **SMALL)
    model = VQVAE2Model(config).eval()
    codes = random_codes()
    output = model(codes)
    assert [tuple(c.shape) for c in output.codes] == [(2, 3, 3), (2, 6, 6)]
    assert output.reconstruction.shape == (2, 512, 21, 21)
    assert model.decode(model.encode(codes)).shape == (2, 512, 21, 21)
