"""The action-conditioned latent video model (VQVideoModel: a frame VQ-VAE and a PixelSNAIL dynamics prior over the
next frame's codes, conditioned on the previous frame's codes and the action) and the two-stage bundle
(VQTwoStageModel): teacher forcing, causality, cached == uncached rollouts, the Hub round trip without hf_vqvae."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_state_dicts_bitwise_equal, place_in_hub_cache, run_without_hf_vqvae
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import AutoModel, pipeline

from hf_vqvae import (
    PixelSNAILConfig,
    PixelSNAILModel,
    VQTwoStageModel,
    VQVAEConfig,
    VQVAEImageProcessor,
    VQVAEModel,
    VQVideoConfig,
    VQVideoModel,
)
from hf_vqvae.env.media import gif_frame_count
from hf_vqvae.hub.pipelines import REPO_TASKS, add_pipelines

K, SIDE, ACTIONS = 32, 4, ["LEFT", "RIGHT", "FORWARD"]
SMALL = {"hidden_channels": 16, "residual_channels": 8, "embedding_dim": 8, "kmeans_init": False}


def tiny_video(seed: int = 0, context_frames: int = 1) -> VQVideoModel:
    torch.manual_seed(seed)
    vq = VQVAEModel(VQVAEConfig(image_size=16, num_embeddings=K, **SMALL))
    maps = {} if context_frames == 1 else {"num_condition_maps": context_frames}
    dynamics = PixelSNAILModel(
        PixelSNAILConfig(
            num_embeddings=K, latent_height=SIDE, latent_width=SIDE, hidden_channels=16, num_stages=2,
            num_attention_heads=2, kernel_size=3, dropout=0.0, condition_num_embeddings=K,
            condition_height=SIDE, condition_width=SIDE, num_classes=len(ACTIONS), **maps,
        )
    )  # fmt: skip
    return VQVideoModel.from_parts(vq, dynamics, ACTIONS)


def clip(batch: int = 2, frames: int = 3, seed: int = 0) -> tuple[torch.LongTensor, torch.LongTensor]:
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, K, (batch, frames, SIDE, SIDE), generator=generator)
    actions = torch.randint(0, len(ACTIONS), (batch, frames - 1), generator=generator)
    return codes, actions


def test_teacher_forcing_is_the_dynamics_nll_of_every_next_frame():
    model = tiny_video()
    codes, actions = clip()
    output = model(codes, actions)
    assert output.logits.shape == (2, 2, K, SIDE, SIDE)
    nll = []
    for t in range(2):
        logits = model.dynamics(codes[:, t + 1], condition=codes[:, t], class_labels=actions[:, t]).logits
        torch.testing.assert_close(output.logits[:, t], logits)
        nll.append(F.cross_entropy(logits, codes[:, t + 1], reduction="none"))
    torch.testing.assert_close(output.loss, torch.stack(nll).mean())


def test_next_frame_logits_are_causal_within_the_frame_and_read_the_previous_frame_and_action():
    model = tiny_video()
    codes, actions = clip(batch=1, frames=2)
    base = model(codes, actions).logits[0, 0].flatten(1)  # (K, positions)
    position = 6
    changed = codes.clone()
    changed[0, 1].view(-1)[position:] = (changed[0, 1].view(-1)[position:] + 1) % K
    after = model(changed, actions).logits[0, 0].flatten(1)
    # Positions up to `position` never see the code at `position` or later; the later ones do.
    torch.testing.assert_close(after[:, : position + 1], base[:, : position + 1], rtol=0, atol=1e-6)
    assert not torch.allclose(after[:, position + 1 :], base[:, position + 1 :])
    # The previous frame around a position, after it in raster order too, and the action reach that position.
    previous = codes.clone()
    previous[0, 0, 1, 2] = (previous[0, 0, 1, 2] + 1) % K
    assert not torch.allclose(model(previous, actions).logits[0, 0, :, 0, 0], base[:, 0])
    other_action = (actions + 1) % len(ACTIONS)
    assert not torch.allclose(model(codes, other_action).logits[0, 0, :, 0, 0], base[:, 0])


def test_cached_rollout_equals_uncached_rollout():
    model = tiny_video()
    codes, actions = clip(batch=2, frames=1)
    steps = torch.tensor([[0, 1, 2], [2, 2, 0]])
    cached = model.predict_codes(codes, steps, generator=torch.Generator().manual_seed(5), use_cache=True)
    uncached = model.predict_codes(codes, steps, generator=torch.Generator().manual_seed(5), use_cache=False)
    assert cached.shape == (2, 3, SIDE, SIDE)
    assert torch.equal(cached, uncached)


def test_generate_takes_frames_and_action_names():
    model = tiny_video()
    frames = torch.rand(2, 2, 3, 16, 16) * 2 - 1
    by_name = model.generate(frames, [["LEFT", "FORWARD"], ["RIGHT", "RIGHT"]], top_k=1)
    by_id = model.generate(frames, torch.tensor([[0, 2], [1, 1]]), top_k=1)
    assert by_name.shape == (2, 2, 3, 16, 16) and torch.equal(by_name, by_id)
    assert by_name.abs().max() <= 1
    with pytest.raises(ValueError, match="unknown action 'JUMP'.*0=LEFT"):
        model.generate(frames, [["JUMP", "LEFT"], ["LEFT", "LEFT"]])
    with pytest.raises(ValueError, match=r"must lie in \[0, 3\)"):
        model.generate(frames, torch.tensor([[0, 3], [0, 0]]))
    with pytest.raises(ValueError, match=r"shape \(2, T\)"):
        model.generate(frames, torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="context frames"):
        model.generate(torch.rand(16, 16), [0])


def test_video_pipeline_gives_frames_or_a_gif(tmp_path):
    model = tiny_video()
    save_repo(model, tmp_path)
    predict = pipeline("video-prediction", model=str(tmp_path), trust_remote_code=True)
    first = Image.fromarray((torch.rand(32, 24, 3) * 255).byte().numpy())  # another size: squeezed to 16x16
    frames = predict(first, actions=["LEFT", "RIGHT"], seed=3)
    assert [f.size for f in frames] == [(16, 16)] * 2
    again = predict([first, first], actions=[0, 1], seed=3, output_type="np")
    assert again.shape == (2, 16, 16, 3) and np.array_equal(again, np.stack([np.asarray(f) for f in frames]))
    gif = predict(first, actions=[2, 2, 2], output_type="gif", duration_ms=100)
    assert gif_frame_count(gif) == 4  # the context frame and three generated ones
    with pytest.raises(ValueError, match="needs `actions`"):
        predict(first)
    # The frame VQ-VAE inside serves the reconstruction pipeline.
    reconstruct = pipeline("image-to-image", model=str(tmp_path), trust_remote_code=True)
    assert reconstruct(first.resize((16, 16))).size == (16, 16)
    extract = pipeline("image-feature-extraction", model=str(tmp_path), trust_remote_code=True)
    pixels = VQVAEImageProcessor.for_model_size(16)(first, return_tensors="pt").pixel_values
    assert torch.equal(extract(first, return_tensors=True)["codes"], model.vq_model.encode(pixels)[0])
    with pytest.raises(ValueError, match="unknown action 'JUMP'"):
        predict(first, actions=["JUMP"])


def test_config_refuses_a_dynamics_prior_that_does_not_fit_the_frames():
    vq = VQVAEConfig(image_size=16, num_embeddings=K, **SMALL)
    fitting = dict(num_embeddings=K, latent_height=SIDE, latent_width=SIDE, condition_num_embeddings=K)
    fitting.update(condition_height=SIDE, condition_width=SIDE, num_classes=3)
    VQVideoConfig(vq_config=vq, dynamics_config=PixelSNAILConfig(**fitting))
    with pytest.raises(ValueError, match="num_classes"):
        VQVideoConfig(vq_config=vq, dynamics_config=PixelSNAILConfig(**{**fitting, "num_classes": None}))
    with pytest.raises(ValueError, match="conditioned on the previous frame"):
        VQVideoConfig(vq_config=vq, dynamics_config=PixelSNAILConfig(**{**fitting, "condition_num_embeddings": 8}))
    with pytest.raises(ValueError, match="8x8 maps"):
        bad = {**fitting, "latent_height": 8, "latent_width": 8}
        VQVideoConfig(vq_config=vq, dynamics_config=PixelSNAILConfig(**bad))


def save_repo(model: VQVideoModel, folder) -> None:
    """The model with its video-prediction pipeline, as scripts/run_demo_env.py writes its Hub folder."""
    model.save_pretrained(folder)
    VQVAEImageProcessor.for_model_size(model.config.image_size).save_pretrained(folder)
    add_pipelines(folder, REPO_TASKS["vq_video"])


def test_video_model_hub_round_trip_without_hf_vqvae(tmp_path, hf_home):
    model = tiny_video()
    save_repo(model, tmp_path / "repo")
    config = json.loads((tmp_path / "repo" / "config.json").read_text())
    assert config["model_type"] == "vq_video" and config["id2label"]["2"] == "FORWARD"
    place_in_hub_cache(tmp_path / "repo", "org/video", hf_home)
    loaded = AutoModel.from_pretrained("org/video")
    assert type(loaded) is VQVideoModel
    assert_state_dicts_bitwise_equal(model.state_dict(), loaded.state_dict())

    codes, actions = clip()
    frames = torch.rand(2, 1, 3, 16, 16) * 2 - 1
    save_file({"codes": codes, "actions": actions, "frames": frames}, tmp_path / "inputs.safetensors")
    report = run_without_hf_vqvae(
        f"""
        import json, torch
        from safetensors.torch import load_file, save_file
        from transformers import AutoModel, pipeline
        inputs = load_file("{tmp_path}/inputs.safetensors")
        model = AutoModel.from_pretrained("org/video", trust_remote_code=True).eval()
        logits = model(inputs["codes"], inputs["actions"]).logits
        rollout, codes = model.generate(inputs["frames"], ["LEFT", "FORWARD"], top_k=1, return_codes=True)
        save_file({{"logits": logits, "rollout": rollout, "codes": codes}}, "{tmp_path}/remote.safetensors")
        predict = pipeline("video-prediction", model="org/video", trust_remote_code=True)
        first = (inputs["frames"][0, 0].permute(1, 2, 0).add(1).mul(127.5).round().byte().numpy())
        frames = predict(first, actions=["LEFT", "FORWARD", "RIGHT"], seed=0, top_k=1)
        gif = predict(first, actions=[0, 2], output_type="gif")
        print(json.dumps({{"module": type(model).__module__, "pipeline": type(predict).__module__,
                          "sizes": [f.size for f in frames], "gif": gif[:6].decode()}}))
        """,
        env={"OMP_NUM_THREADS": "1"},
    )
    assert report["module"].startswith("transformers_modules.")
    assert report["pipeline"].startswith("transformers_modules.") and report["pipeline"].endswith("pipeline_video")
    assert report["sizes"] == [[16, 16]] * 3 and report["gif"] == "GIF89a"
    remote = load_file(tmp_path / "remote.safetensors")
    with torch.no_grad():
        # Another thread count may sum the convolutions in another order: equal up to float rounding.
        torch.testing.assert_close(remote["logits"], model(codes, actions).logits, rtol=1e-5, atol=1e-6)
        rollout, rollout_codes = model.generate(frames, ["LEFT", "FORWARD"], top_k=1, return_codes=True)
        assert torch.equal(remote["codes"], rollout_codes)
        torch.testing.assert_close(remote["rollout"], rollout, rtol=1e-5, atol=1e-5)


def test_two_stage_bundle_samples_through_both_decoders_and_round_trips(tmp_path):
    torch.manual_seed(0)
    stage1 = VQVAEModel(VQVAEConfig(image_size=84, num_embeddings=K, **SMALL))
    stage2_config = dict(image_size=21, downsample_factor=16, in_channels=16, num_embeddings=16, **SMALL)
    stage2 = VQVAEModel(VQVAEConfig(input_num_embeddings=K, **stage2_config))
    prior = PixelSNAILModel(PixelSNAILConfig(num_embeddings=16, latent_height=2, latent_width=2, hidden_channels=16))
    bundle = VQTwoStageModel.from_parts(stage1, stage2, prior)
    frames, top = bundle.generate(3, generator=torch.Generator().manual_seed(0), return_codes=True)
    assert frames.shape == (3, 3, 84, 84) and top.shape == (3, 2, 2)
    assert torch.equal(frames, stage1.decode(stage2.decode(top).argmax(1)).clamp(-1, 1))
    pixels = torch.rand(2, 3, 84, 84) * 2 - 1
    output = bundle(pixels)
    assert torch.equal(output.codes, stage2.encode(stage1.encode(pixels)))
    bundle.save_pretrained(tmp_path)
    loaded = VQTwoStageModel.from_pretrained(tmp_path)
    assert_state_dicts_bitwise_equal(bundle.state_dict(), loaded.state_dict())
    assert torch.equal(loaded(pixels).reconstruction, output.reconstruction)
    # The generation and reconstruction pipelines serve it as they serve any VQ generation bundle.
    VQVAEImageProcessor.for_model_size(84).save_pretrained(tmp_path)
    add_pipelines(tmp_path, REPO_TASKS["vq_two_stage"])
    images = pipeline("unconditional-image-generation", model=str(tmp_path), trust_remote_code=True)(2, seed=0)
    assert [image.size for image in images] == [(84, 84)] * 2
    frame = Image.fromarray((torch.rand(84, 84, 3) * 255).byte().numpy())
    reconstruct = pipeline("image-to-image", model=str(tmp_path), trust_remote_code=True)
    assert reconstruct(frame).size == (84, 84)


def test_video_card_shows_the_per_step_action_and_motion_rows():
    from hf_vqvae.env.cards import render_video_card

    model = tiny_video(context_frames=2)
    consistency = {
        "generated_pairs_accuracy": 0.5, "real_pairs_accuracy": 0.75, "chance": 0.25, "generated_step1_accuracy": 1.0,
        "real_step1_accuracy": 1.0, "generated_accuracy_per_step": [1.0, 0.0], "real_accuracy_per_step": [1.0, 0.5],
    }  # fmt: skip
    prediction = {
        "horizon": 2, "num_rollouts": 2, "psnr_per_step": [20.0, 19.0], "copy_last_psnr_per_step": [18.0, 17.0],
        "copy_last_codes_psnr_per_step": [17.5, 16.5], "reconstruction_psnr_per_step": [28.0, 28.0],
        "generated_change_per_step": [0.0213, 0.0087], "real_change_per_step": [0.0512, 0.0498],
        "action_consistency": consistency,
    }  # fmt: skip
    metrics = {"stage1": {"psnr": 28.0, "ssim": 0.7}, "dynamics_bits_per_code": 4.5, "prediction": prediction}
    data_info = {"scenario": "my_way_home", "splits": {"train": 10}}
    card = str(render_video_card(model, metrics, data_info, "org/video", "images/rollout.gif", "pytest"))
    assert "| action recovered, generated | 1.0 | 0.0 |" in card
    assert "| action recovered, real | 1.0 | 0.5 |" in card
    assert "| view change, generated (%) | 2.1 | 0.9 |" in card
    assert "| view change, real (%) | 5.1 | 5.0 |" in card
    assert "generated from the 2 real frames before them" in card


@pytest.mark.parametrize("context_frames", [1, 2])
def test_the_video_cards_example_runs_as_written(tmp_path, monkeypatch, context_frames):
    """The card's "How to use" code, run as a user would copy it, against the model saved in a folder."""
    import re

    from hf_vqvae.env.cards import render_video_card

    model = tiny_video(context_frames=context_frames)
    folder = tmp_path / "repo"
    save_repo(model, folder)
    horizon = [20.0, 19.0]
    prediction = {
        "horizon": 2, "num_rollouts": 1, "psnr_per_step": horizon, "copy_last_psnr_per_step": horizon,
        "copy_last_codes_psnr_per_step": horizon, "reconstruction_psnr_per_step": horizon,
    }  # fmt: skip
    metrics = {"dynamics_bits_per_code": 4.0, "prediction": prediction}
    card = str(render_video_card(model, metrics, {"scenario": "s", "splits": {"train": 1}}, str(folder), "r.gif", "x"))
    example = re.search(r"## How to use\s+```python\n(.*?)```", card, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.full((16, 16, 3), 90, dtype=np.uint8)).save("first_frame.png")
    scope: dict = {}
    exec(compile(example, "model card", "exec"), scope)  # noqa: S102 - the card's own code, written by our template
    assert len(scope["frames"]) == 16 and all(isinstance(frame, Image.Image) for frame in scope["frames"])
    assert Image.open(io.BytesIO(scope["gif"])).n_frames == 17  # the last context frame, then 16 generated
