"""Learning on real ViZDoom frames (issue 15): the frame VQ-VAE (stage 1) and the action-conditioned dynamics prior,
trained for a few dozen steps by the environment training helpers (`hf_vqvae.env.training`), on two episodes played
here; and the held-out metrics on them."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("vizdoom")

from hf_vqvae import PixelSNAILConfig, PixelSNAILModel, VQVAEConfig, VQVAEModel, VQVideoModel  # noqa: E402
from hf_vqvae.data.vizdoom import frames_to_tensor, play_episodes  # noqa: E402
from hf_vqvae.env.inverse_dynamics import train_inverse_dynamics  # noqa: E402
from hf_vqvae.env.metrics import encode_episodes, prediction_metrics, stage1_metrics  # noqa: E402
from hf_vqvae.env.training import clip_batches, fit, frame_batches, stack_frames  # noqa: E402

K = 64


@pytest.fixture(scope="module")
def episodes():
    return list(play_episodes(num_episodes=2, steps_per_episode=16, seed=0))


@pytest.mark.slow
def test_stage1_and_the_dynamics_learn_on_real_vizdoom_frames(episodes):
    torch.manual_seed(0)
    frames = stack_frames(episodes)
    stage1 = VQVAEModel(
        VQVAEConfig(image_size=84, num_embeddings=K, embedding_dim=8, hidden_channels=16, residual_channels=8)
    )
    pixels = frames_to_tensor(frames)
    with torch.no_grad():
        mse_before = float(torch.mean((stage1(pixels).reconstruction - pixels) ** 2))
    log = fit(stage1, frame_batches(frames, 8), steps=30, learning_rate=3e-3, desc="stage 1")
    with torch.no_grad():
        mse_after = float(torch.mean((stage1.eval()(pixels).reconstruction - pixels) ** 2))
    assert mse_after < 0.5 * mse_before, (mse_before, mse_after, log)
    assert stage1_metrics(stage1, frames)["psnr"] > 10 * math.log10(4 / mse_before)

    codes = encode_episodes(stage1, episodes)
    assert codes[0].shape == (16, 21, 21)
    dynamics = PixelSNAILModel(
        PixelSNAILConfig(
            num_embeddings=K, latent_height=21, latent_width=21, hidden_channels=16, num_stages=1,
            num_residual_blocks=1, attention=False, kernel_size=3, dropout=0.0, condition_num_embeddings=K,
            condition_height=21, condition_width=21, num_classes=5,
        )
    )  # fmt: skip
    names = ["TURN_LEFT", "TURN_RIGHT", "MOVE_FORWARD", "MOVE_LEFT", "R"]
    video = VQVideoModel.from_parts(stage1, dynamics, names)
    actions = [torch.from_numpy(e.actions) for e in episodes]
    clips = clip_batches(codes, actions, batch_size=30, clip_length=2)(torch.Generator().manual_seed(1))
    with torch.no_grad():
        nll_before = float(video(**clips).loss)
    fit(video, clip_batches(codes, actions, batch_size=8), steps=20, learning_rate=3e-3, desc="dynamics")
    with torch.no_grad():
        nll_after = float(video.eval()(**clips).loss)
    # From about log K nats per code to well below it: the prior has learnt which codes follow which.
    assert nll_before > 0.9 * math.log(K) and nll_after < nll_before - 1.0, (nll_before, nll_after)

    # The held-out measurements run on real episodes (here one of the two: only their mechanics are tested).
    inverse = train_inverse_dynamics(episodes, names, steps=2)
    result = prediction_metrics(video, episodes[:1], horizon=2, top_k=1, inverse_dynamics=inverse)
    assert len(result["psnr_per_step"]) == 2 and result["num_rollouts"] == 1
    assert result["rollouts"].shape == (1, 2, 2, 3, 84, 84)
    real = frames_to_tensor(episodes[0].frames[:3])
    expected_copy = 10 * math.log10(4 / float(torch.mean((real[:1] - real[1:2]) ** 2)))
    assert result["copy_last_psnr_per_step"][0] == pytest.approx(expected_copy, abs=1e-3)
    # The share of windows where the prediction beats copying, by hand from the rollout's frames.
    predicted_mse = ((result["rollouts"][0, 1] - real[1:]) ** 2).flatten(1).mean(1)
    copy_mse = ((real[:1] - real[1:]) ** 2).flatten(1).mean(1)
    assert result["beats_copy_share_per_step"] == (predicted_mse < copy_mse).float().tolist()
    assert result["exact_copy_windows_per_step"] == [0, 0]
    # Action consistency by hand: the first generated pair starts from the DECODED context frame (both frames drawn
    # by the decoder), the second is generated frame 1 -> generated frame 2; the real pairs are the real frames.
    generated = result["rollouts"][0, 1]
    with torch.no_grad():
        decoded_context = video.decode(video.encode(real[:1]))
        predicted = inverse(torch.cat([decoded_context, generated[:1]]), generated).argmax(1)
        predicted_real = inverse(real[:2], real[1:3]).argmax(1)
    commanded = torch.from_numpy(episodes[0].actions[:2])
    consistency = result["action_consistency"]
    assert consistency["generated_pairs_accuracy"] == pytest.approx(float((predicted == commanded).float().mean()))
    assert consistency["generated_step1_accuracy"] == float(predicted[0] == commanded[0])
    assert consistency["real_pairs_accuracy"] == pytest.approx(float((predicted_real == commanded).float().mean()))
    assert consistency["real_step1_accuracy"] == float(predicted_real[0] == commanded[0])
    assert consistency["generated_accuracy_per_step"] == (predicted == commanded).float().tolist()
    assert consistency["real_accuracy_per_step"] == (predicted_real == commanded).float().tolist()
    assert consistency["num_pairs"] == 2
    # How much the view moves, by hand: mean |frame t+1 - frame t| in units of the pixel range (half of it in [-1, 1]).
    generated_frames = torch.cat([decoded_context, generated])
    expected_generated = ((generated_frames[1:] - generated_frames[:-1]).abs().flatten(1).mean(1) / 2).tolist()
    expected_real = ((real[1:] - real[:-1]).abs().flatten(1).mean(1) / 2).tolist()
    assert result["generated_change_per_step"] == pytest.approx(expected_generated, abs=1e-4)
    assert result["real_change_per_step"] == pytest.approx(expected_real, abs=1e-4)

    # An agent standing still: step 2's real frame repeats the context frame exactly, so copying it has infinite
    # PSNR. That window is left out of every PSNR mean at step 2 (here the only window: NaN) and counted; the share
    # of windows beating copying keeps it, and copying wins it.
    still = episodes[0]
    frames = still.frames.copy()
    frames[2] = frames[0]
    still = type(still)(episode_id=still.episode_id, frames=frames, actions=still.actions)
    result = prediction_metrics(video, [still], horizon=2, top_k=1)
    assert result["exact_copy_windows_per_step"] == [0, 1]
    assert math.isnan(result["psnr_per_step"][1]) and math.isnan(result["copy_last_psnr_per_step"][1])
    assert math.isfinite(result["psnr_per_step"][0]) and result["beats_copy_share_per_step"][1] == 0.0
