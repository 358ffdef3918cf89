"""The inverse-dynamics classifier behind issue 15's action consistency: its mirror augmentation's action map, and
that it learns from real ViZDoom frame pairs."""

from __future__ import annotations

import pytest
import torch

from hf_vqvae.env.inverse_dynamics import action_accuracy, chance_accuracy, mirrored_actions, real_pairs

VIZDOOM_BUTTONS = ["TURN_LEFT", "TURN_RIGHT", "MOVE_FORWARD", "MOVE_LEFT", "MOVE_RIGHT"]


def test_mirror_swaps_left_and_right_and_keeps_the_rest():
    # A left-right flipped world turns left where it turned right, strafes right where it strafed left, and walks
    # forward as before.
    assert mirrored_actions(VIZDOOM_BUTTONS).tolist() == [1, 0, 2, 4, 3]
    assert mirrored_actions(["MOVE_FORWARD", "ATTACK"]).tolist() == [0, 1]
    # Names are split on "_": "LEFTOVER" is not a direction.
    assert mirrored_actions(["LEFTOVER", "MOVE_FORWARD"]).tolist() == [0, 1]


def test_no_mirror_when_an_action_lacks_its_image():
    # health_gathering has TURN_LEFT, TURN_RIGHT and MOVE_FORWARD: mirrorable; a set with only TURN_LEFT is not.
    assert mirrored_actions(["TURN_LEFT", "TURN_RIGHT", "MOVE_FORWARD"]).tolist() == [1, 0, 2]
    assert mirrored_actions(["TURN_LEFT", "MOVE_FORWARD"]) is None


@pytest.mark.slow
def test_it_learns_actions_from_real_vizdoom_pairs():
    pytest.importorskip("vizdoom")
    from hf_vqvae.data.vizdoom import frames_to_tensor, play_episodes
    from hf_vqvae.env.inverse_dynamics import train_inverse_dynamics

    episodes = list(play_episodes(num_episodes=3, steps_per_episode=32, seed=0))
    before, after, actions = real_pairs(episodes)
    classifier = train_inverse_dynamics(episodes, VIZDOOM_BUTTONS, steps=120, seed=0)
    pairs = frames_to_tensor(before), frames_to_tensor(after)
    accuracy = action_accuracy(classifier, *pairs, torch.from_numpy(actions))
    chance = chance_accuracy(actions, len(VIZDOOM_BUTTONS))
    # Fitted on these 93 pairs (with mirrored and blurred copies): well above always guessing the commonest action.
    assert accuracy > chance + 0.25, (accuracy, chance)
