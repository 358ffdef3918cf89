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


def test_accuracy_by_hold_splits_pairs_at_action_switches():
    import numpy as np

    from hf_vqvae.data.vizdoom import Episode
    from hf_vqvae.env.inverse_dynamics import InverseDynamicsClassifier, accuracy_by_hold

    # A classifier whose weights are zero and whose bias favours action 2 says "2" for every pair, so its accuracy
    # is the share of 2s among the counted actions.
    classifier = InverseDynamicsClassifier(3, width=4)
    for parameter in classifier.parameters():
        torch.nn.init.zeros_(parameter)
    with torch.no_grad():
        classifier.head.bias[2] = 1.0
    frames = np.zeros((6, 8, 8, 3), dtype=np.uint8)
    # Pairs 1..4 (pair 0 has no action before it; the last action leads out of the episode): actions[1:5] =
    # 2, 2, 1, 2 against actions[0:4] = 0, 2, 2, 1 -> switches at pairs 1, 3, 4, a hold at pair 2.
    episode = Episode(0, frames, np.array([0, 2, 2, 1, 2, 0]))
    short = Episode(1, frames[:2], np.array([2, 2]))  # too short to have a pair with an action before it
    result = accuracy_by_hold(classifier, [episode, short])
    assert result == {"within_hold": 1.0, "after_switch": 2 / 3, "num_within_hold": 1, "num_after_switch": 3}
