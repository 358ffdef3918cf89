"""Rollouts of the video model that the environments job uses: a dynamics prior trained with
`teacher_forcing_noise=1` predicts each frame in one forward over noise codes (`PixelSNAILModel.generate(parallel=
True)`), and classifier-free guidance on the action (a prior trained with `class_dropout`) mixes the logits with and
without the action as `l_none + s (l_action - l_none)`. Each is checked against the same sums done by hand, and
through the saved model and its pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_video import ACTIONS, SIDE, K, save_repo
from transformers import pipeline

from hf_vqvae import PixelSNAILConfig, PixelSNAILModel, VQVAEConfig, VQVAEModel, VQVideoConfig, VQVideoModel

SMALL = {"hidden_channels": 16, "residual_channels": 8, "embedding_dim": 8, "kmeans_init": False}


def dynamics_prior(class_dropout: float = 0.2, seed: int = 0) -> PixelSNAILModel:
    torch.manual_seed(seed)
    return PixelSNAILModel(
        PixelSNAILConfig(
            num_embeddings=K, latent_height=SIDE, latent_width=SIDE, hidden_channels=16, num_stages=1,
            attention=False, kernel_size=3, dropout=0.0, condition_num_embeddings=K, condition_height=SIDE,
            condition_width=SIDE, num_classes=len(ACTIONS), num_condition_maps=2, class_dropout=class_dropout,
        )
    ).eval()  # fmt: skip


def guided_video(guidance_scale: float | None = 2.0, noise: float = 1.0) -> VQVideoModel:
    torch.manual_seed(1)
    vq = VQVAEModel(VQVAEConfig(image_size=16, num_embeddings=K, **SMALL))
    return VQVideoModel.from_parts(
        vq, dynamics_prior(), ACTIONS, teacher_forcing_noise=noise, guidance_scale=guidance_scale
    )


def by_hand(model: VQVideoModel, window: torch.LongTensor, actions: torch.LongTensor, scale: float | None, seed: int):
    """Greedy rollout done step by step: uniform noise codes from the generator, then the logits with the action
    and (for guidance) under the null class, mixed by hand; the generator is then advanced as one greedy draw
    advances it (a draw from each position's one-hot distribution)."""
    generator = torch.Generator().manual_seed(seed)
    dynamics, frames = model.dynamics, []
    for step in range(actions.shape[1]):
        noise = torch.randint(K, window[:, 0].shape, generator=generator)
        with torch.no_grad():
            logits = dynamics(noise, condition=window, class_labels=actions[:, step]).logits
            if scale is not None:
                null = torch.full_like(actions[:, step], dynamics.config.null_class_id)
                unconditional = dynamics(noise, condition=window, class_labels=null).logits
                logits = unconditional + scale * (logits - unconditional)
        current = logits.argmax(1)
        one_hot = torch.nn.functional.one_hot(current.view(-1), K).float()
        assert torch.equal(torch.multinomial(one_hot, 1, generator=generator).view_as(current), current)
        frames.append(current)
        window = torch.cat([window[:, 1:], current.unsqueeze(1)], dim=1)
    return torch.stack(frames, dim=1)


def test_parallel_generation_samples_every_position_from_one_forward_over_noise():
    prior = dynamics_prior()
    generator = torch.Generator().manual_seed(4)
    condition = torch.randint(0, K, (3, 2, SIDE, SIDE), generator=generator)
    labels = torch.tensor([0, 1, 2])
    codes, logits = prior.generate(
        3, condition=condition, class_labels=labels, top_k=1, parallel=True, return_logits=True,
        generator=torch.Generator().manual_seed(7),
    )  # fmt: skip
    noise = torch.randint(K, (3, SIDE, SIDE), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = prior(noise, condition=condition, class_labels=labels).logits
    torch.testing.assert_close(logits, expected)
    assert torch.equal(codes, expected.argmax(1))
    # Guided: the same noise read under the action and under the null class, mixed as l_u + s (l_c - l_u).
    codes, logits = prior.generate(
        3, condition=condition, class_labels=labels, top_k=1, parallel=True, return_logits=True,
        generator=torch.Generator().manual_seed(7), guidance_scale=3.0,
    )  # fmt: skip
    with torch.no_grad():
        unconditional = prior(noise, condition=condition, class_labels=torch.full_like(labels, 3)).logits
    torch.testing.assert_close(logits, unconditional + 3.0 * (expected - unconditional))
    assert torch.equal(codes, logits.argmax(1))
    # Top-k samples each position among its own k best codes (the same seed: the same noise read).
    sampled = prior.generate(
        3, condition=condition, class_labels=labels, top_k=2, parallel=True, generator=torch.Generator().manual_seed(7)
    )
    best_two = expected.topk(2, dim=1).indices
    assert bool((best_two == sampled.unsqueeze(1)).any(1).all())


@pytest.mark.parametrize("scale", [None, 2.5])
def test_a_noise_one_video_model_rolls_out_one_forward_per_frame_with_guidance(scale):
    model = guided_video(guidance_scale=scale)
    generator = torch.Generator().manual_seed(2)
    window = torch.randint(0, K, (2, 2, SIDE, SIDE), generator=generator)
    actions = torch.tensor([[0, 1, 2], [2, 2, 0]])
    rollout = model.predict_codes(window, actions, top_k=1, generator=torch.Generator().manual_seed(9))
    assert torch.equal(rollout, by_hand(model, window, actions, scale, seed=9))
    # The config's scale is the default; an explicit one overrides it, and 1.0 is plain conditional sampling.
    plain = model.predict_codes(window, actions, top_k=1, generator=torch.Generator().manual_seed(9), guidance_scale=1)
    assert torch.equal(plain, by_hand(model, window, actions, None, seed=9))
    assert (scale is None) == torch.equal(plain, rollout)


def test_a_model_that_reads_its_frame_still_samples_position_by_position():
    """teacher_forcing_noise < 1: the prior learned to read the codes already sampled, so the cached raster-order
    sampler runs (and equals the uncached one) and guidance goes through it too."""
    model = guided_video(guidance_scale=2.0, noise=0.5)
    window = torch.randint(0, K, (2, 2, SIDE, SIDE), generator=torch.Generator().manual_seed(3))
    actions = torch.tensor([[1, 0], [0, 2]])
    cached = model.predict_codes(window, actions, generator=torch.Generator().manual_seed(5))
    uncached = model.predict_codes(window, actions, generator=torch.Generator().manual_seed(5), use_cache=False)
    assert torch.equal(cached, uncached)
    first = model.dynamics.generate(
        2, condition=window, class_labels=actions[:, 0], guidance_scale=2.0, generator=torch.Generator().manual_seed(5)
    )
    assert torch.equal(cached[:, 0], first)


def test_guidance_needs_a_prior_trained_with_dropped_actions():
    unguided = dynamics_prior(class_dropout=0.0)
    vq = VQVAEModel(VQVAEConfig(image_size=16, num_embeddings=K, **SMALL))
    with pytest.raises(ValueError, match=r"guidance_scale=2.0` needs a dynamics prior trained with .*class_dropout"):
        VQVideoModel.from_parts(vq, unguided, ACTIONS, teacher_forcing_noise=1.0, guidance_scale=2.0)
    with pytest.raises(ValueError, match="`guidance_scale` must be None or a finite number >= 0, got -1"):
        VQVideoConfig(vq_config=vq.config, dynamics_config=dynamics_prior().config, guidance_scale=-1)
    model = VQVideoModel.from_parts(vq, unguided, ACTIONS, teacher_forcing_noise=1.0)
    window = torch.randint(0, K, (1, 2, SIDE, SIDE))
    # 1.0 is plain conditional sampling, which any model can do; anything else is refused by name.
    assert model.predict_codes(window, [0, 1], guidance_scale=1.0).shape == (1, 2, SIDE, SIDE)
    with pytest.raises(ValueError, match="needs a prior trained with a null class"):
        model.predict_codes(window, [0, 1], guidance_scale=2.0)


def test_saved_guided_model_and_its_pipeline_roll_out_as_the_model_does(tmp_path):
    model = guided_video(guidance_scale=2.0)
    save_repo(model, tmp_path)
    loaded = VQVideoModel.from_pretrained(tmp_path)
    assert loaded.config.guidance_scale == 2.0 and loaded.config.dynamics_config.class_dropout == 0.2
    frames = torch.rand(1, 2, 3, 16, 16) * 2 - 1
    rollout = model.generate(frames, [0, 2, 1], top_k=1, generator=torch.Generator().manual_seed(1))
    again = loaded.generate(frames, [0, 2, 1], top_k=1, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again, rollout)
    predict = pipeline("video-prediction", model=str(tmp_path), trust_remote_code=True)
    first = ((frames[0] + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    context = [first[0], first[1]]
    default = predict(context, actions=[0, 2, 1], seed=1, top_k=1, output_type="np")
    explicit = predict(context, actions=[0, 2, 1], seed=1, top_k=1, guidance_scale=2.0, output_type="np")
    plain = predict(context, actions=[0, 2, 1], seed=1, top_k=1, guidance_scale=1.0, output_type="np")
    assert np.array_equal(default, explicit) and not np.array_equal(default, plain)


def test_the_card_of_a_guided_model_names_its_scale_and_shows_the_sweep():
    from hf_vqvae.env.cards import render_video_card

    model = guided_video(guidance_scale=2.0)
    horizon = [20.0, 19.0]
    prediction = {
        "horizon": 2, "num_rollouts": 1, "psnr_per_step": horizon, "copy_last_psnr_per_step": horizon,
        "copy_last_codes_psnr_per_step": horizon, "reconstruction_psnr_per_step": horizon,
    }  # fmt: skip
    sweep = [
        {"guidance_scale": scale, "psnr_short": psnr, "copy_psnr_short": 21.5, "beats_copy_step1": beats,
         "action_step1": 0.4, "action_short": short, "action_all": every, "change_step1": 0.031, "change_last": last,
         "change_mean": 0.02, "real_change": 0.0555, "real_action_all": 0.526, "chance": 0.2227}
        for scale, psnr, beats, short, every, last in [(1.0, 22.4, 0.8, 0.375, 0.287, 0.005), (2.0, 22.0, 0.7, 0.443,
                                                                                               0.361, 0.016)]
    ]  # fmt: skip
    metrics = {"dynamics_bits_per_code": 4.0, "prediction": prediction, "guidance_sweep": sweep}
    card = str(render_video_card(model, metrics, {"scenario": "s", "splits": {"train": 1}}, "org/v", "r.gif", "x"))
    assert "every position at once" in card and "guidance on the action at scale 2 " in card
    assert "trained with 20% of the actions dropped" in card and "greedy decoding (`top_k=1`) with guidance 2." in card
    assert "| 1 | 22.40 (21.50) | 0.80 | 0.40 | 0.375 | 0.287 | 3.1 / 0.5 |" in card
    assert "| 2 | 22.00 (21.50) | 0.70 | 0.40 | 0.443 | 0.361 | 3.1 / 1.6 |" in card
    assert "0.526 of the real pairs' actions" in card and "(real: 5.5 %)" in card


@pytest.mark.parametrize("parallel", [False, True])
def test_the_demos_progress_counts_positions_or_whole_frames(parallel):
    from hf_vqvae.space.demo_common import sampling_progress

    prior, calls = dynamics_prior(), []
    condition = torch.randint(0, K, (1, 2, SIDE, SIDE))
    with sampling_progress([prior], lambda value, **kwargs: calls.append((value, kwargs["unit"])), repeats=2,
                           whole_maps=parallel):  # fmt: skip
        for action in (0, 1):
            prior.generate(1, condition=condition, class_labels=torch.tensor([action]), parallel=parallel)
    per_map = 1 if parallel else SIDE * SIDE
    # Position by position, the first position of a map embeds no code sampled before it: one step fewer per map.
    done = 2 * per_map if parallel else 2 * (per_map - 1)
    assert calls[-1] == ((done, 2 * per_map), "maps" if parallel else "positions") and len(calls) == done
