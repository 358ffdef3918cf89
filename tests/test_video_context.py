"""The video model conditioned on the last N frames (`context_frames`, the dynamics prior's `num_condition_maps`):
teacher forcing reads exactly the N frames before each target (and stays causal within the frame), cached ==
uncached rollouts slide their own samples into the window, the pipeline takes N frames in, and a saved first-order
model whose config predates the field loads and predicts identically."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_video import ACTIONS, SIDE, K, clip, save_repo, tiny_video
from transformers import pipeline

from hf_vqvae import PixelSNAILConfig, VQVideoConfig, VQVideoModel

N = 3


def test_teacher_forcing_reads_the_last_n_frames_and_the_action_after_them():
    model = tiny_video(context_frames=N)
    assert model.config.context_frames == N
    codes, actions = clip(batch=2, frames=N + 2)  # two targets: frames 3 and 4
    output = model(codes, actions)
    assert output.logits.shape == (2, 2, K, SIDE, SIDE)
    nll = []
    for step in range(2):
        target = codes[:, step + N]
        logits = model.dynamics(
            target, condition=codes[:, step : step + N], class_labels=actions[:, step + N - 1]
        ).logits
        torch.testing.assert_close(output.logits[:, step], logits)
        nll.append(F.cross_entropy(logits, target, reduction="none"))
    torch.testing.assert_close(output.loss, torch.stack(nll).mean())


def test_each_of_the_n_frames_reaches_the_first_position_and_no_other_frame_does():
    model = tiny_video(context_frames=N)
    codes, actions = clip(batch=1, frames=N + 2)
    base = model(codes, actions).logits[0]  # (2 steps, K, h, w)
    for frame in range(N + 2):
        changed = codes.clone()
        changed[0, frame] = (changed[0, frame] + 1) % K
        after = model(changed, actions).logits[0]
        # Step 0 predicts frame N from frames 0..N-1; its first position sees no code of frame N itself.
        reads_step0 = frame < N
        assert torch.equal(after[0, :, 0, 0], base[0, :, 0, 0]) != reads_step0, frame
        # Step 1 predicts frame N + 1 from frames 1..N: frame 0 is outside its window.
        reads_step1 = 1 <= frame <= N
        assert torch.equal(after[1, :, 0, 0], base[1, :, 0, 0]) != reads_step1, frame
    # Within the target frame, raster order: a change at `position` reaches only later positions.
    position = 6
    changed = codes.clone()
    changed[0, N].view(-1)[position:] = (changed[0, N].view(-1)[position:] + 1) % K
    after = model(changed, actions).logits[0, 0].flatten(1)
    torch.testing.assert_close(after[:, : position + 1], base[0].flatten(1)[:, : position + 1], rtol=0, atol=1e-6)
    assert not torch.allclose(after[:, position + 1 :], base[0].flatten(1)[:, position + 1 :])
    # Only the action after the window's last frame is read (actions[:, N - 1] for step 0).
    for index in range(N + 1):
        other = actions.clone()
        other[0, index] = (other[0, index] + 1) % len(ACTIONS)
        same = torch.equal(model(codes, other).logits[0, 0], base[0])
        assert same == (index != N - 1), index


def test_cached_rollout_equals_uncached_and_slides_its_samples_into_the_window():
    model = tiny_video(context_frames=N)
    context, _ = clip(batch=2, frames=N + 1)  # one frame more than it reads: the oldest is ignored
    steps = torch.tensor([[0, 1, 2, 1], [2, 2, 0, 0]])
    cached = model.predict_codes(context, steps, generator=torch.Generator().manual_seed(5), use_cache=True)
    uncached = model.predict_codes(context, steps, generator=torch.Generator().manual_seed(5), use_cache=False)
    assert cached.shape == (2, 4, SIDE, SIDE) and torch.equal(cached, uncached)
    last_n = model.predict_codes(context[:, 1:], steps, generator=torch.Generator().manual_seed(5))
    assert torch.equal(last_n, cached)
    # Greedy: step t is the dynamics' argmax given the window of (real or generated) frames before it.
    greedy = model.predict_codes(context, steps, top_k=1)
    frames = torch.cat([context[:, 1:], greedy], dim=1)
    for step in range(4):
        expected = model.dynamics.generate(
            2, condition=frames[:, step : step + N], class_labels=steps[:, step], top_k=1
        )
        assert torch.equal(greedy[:, step], expected)


def test_too_few_context_frames_and_a_mismatched_config_are_refused():
    model = tiny_video(context_frames=N)
    with pytest.raises(ValueError, match=r"last 3 frames \(config.context_frames\); got 2"):
        model.generate(torch.rand(1, 2, 3, 16, 16) * 2 - 1, [0])
    with pytest.raises(ValueError, match="clips of 4 frames or more"):
        model(*clip(batch=1, frames=N))
    with pytest.raises(ValueError, match="at least 4 actions per clip"):
        codes, actions = clip(batch=1, frames=N + 2)
        model(codes, actions[:, :3])
    with pytest.raises(ValueError, match=r"context_frames` \(2\) must equal dynamics_config.num_condition_maps \(3\)"):
        VQVideoConfig(vq_config=model.config.vq_config, dynamics_config=model.config.dynamics_config, context_frames=2)
    with pytest.raises(ValueError, match="`num_condition_maps`.*needs `condition_num_embeddings`"):
        PixelSNAILConfig(num_embeddings=K, latent_height=SIDE, latent_width=SIDE, num_condition_maps=2)
    with pytest.raises(ValueError, match=r"`condition` must have shape \(2, 3, 4, 4\)"):
        model.dynamics(torch.zeros(2, SIDE, SIDE, dtype=torch.long), condition=torch.zeros(2, SIDE, SIDE).long(),
                       class_labels=torch.zeros(2, dtype=torch.long))  # fmt: skip


def test_pipeline_takes_the_n_context_frames(tmp_path):
    model = tiny_video(context_frames=2)
    save_repo(model, tmp_path)
    predict = pipeline("video-prediction", model=str(tmp_path), trust_remote_code=True)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(3)]
    out = predict(frames, actions=["LEFT", "FORWARD", "RIGHT"], seed=4, output_type="pt")
    pixels = torch.stack([torch.from_numpy(f).permute(2, 0, 1).float() / 127.5 - 1 for f in frames]).unsqueeze(0)
    expected = model.generate(pixels, [[0, 2, 1]], generator=torch.Generator().manual_seed(4))
    assert torch.equal(out, expected[0])
    with pytest.raises(ValueError, match="last 2 frames"):
        predict(frames[:1], actions=[0])


def test_a_first_order_model_saved_before_the_field_existed_loads_and_predicts_identically(tmp_path):
    model = tiny_video()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["context_frames"] == 1 and config["dynamics_config"]["num_condition_maps"] == 1
    # As a folder written before `context_frames` / `num_condition_maps` existed.
    del config["context_frames"], config["dynamics_config"]["num_condition_maps"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = VQVideoModel.from_pretrained(tmp_path)
    assert loaded.config.context_frames == 1 and loaded.dynamics.condition_conv.in_channels == 16
    codes, actions = clip(batch=2, frames=3)
    with torch.no_grad():
        assert torch.equal(loaded(codes, actions).logits, model(codes, actions).logits)
    frames = torch.rand(2, 2, 3, 16, 16) * 2 - 1
    rollout = model.generate(frames, [0, 2], generator=torch.Generator().manual_seed(1))
    assert torch.equal(loaded.generate(frames, [0, 2], generator=torch.Generator().manual_seed(1)), rollout)


def test_teacher_forcing_noise_corrupts_what_the_prior_reads_in_training_not_its_labels():
    model = tiny_video()
    codes, actions = clip(batch=2, frames=2)
    with torch.no_grad():
        clean = model.eval()(codes, actions).logits
    model.config.teacher_forcing_noise = 1.0  # every code the prior reads within the frame is drawn anew
    with torch.no_grad():
        assert torch.equal(model.eval()(codes, actions).logits, clean)  # eval mode: no noise
        model.train()
        other = codes.clone()
        other[:, 1] = (other[:, 1] + 1) % K
        torch.manual_seed(0)
        first = model(codes, actions)
        torch.manual_seed(0)
        second = model(other, actions)
    # The frame's own codes no longer reach the logits (the same draws replace them all) ...
    assert torch.equal(first.logits, second.logits) and not torch.equal(first.logits, clean)
    # ... but they stay the labels.
    torch.testing.assert_close(first.loss, F.cross_entropy(first.logits[:, 0], codes[:, 1]))
    torch.testing.assert_close(second.loss, F.cross_entropy(second.logits[:, 0], other[:, 1]))
    with pytest.raises(ValueError, match=r"teacher_forcing_noise` must be a number in \[0, 1\], got 1.5"):
        VQVideoConfig(vq_config=model.config.vq_config, dynamics_config=model.config.dynamics_config,
                      teacher_forcing_noise=1.5)  # fmt: skip
