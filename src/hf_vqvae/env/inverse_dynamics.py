"""An inverse-dynamics classifier: which action led from frame t to frame t + 1?

It measures action consistency of generated video (issue 15): trained on REAL frame pairs only, it must recover the
commanded action from GENERATED pairs far above chance if the generated view moves as the actions say. A small
convolutional network over the two frames stacked along channels, with their difference as extra channels (the
motion is in the difference).

Two augmentations of the real pairs make it generalise from a few thousand of them and read decoded frames:
* **mirroring**: a left-right flipped pair is a real pair of the mirrored action (TURN_LEFT <-> TURN_RIGHT,
  MOVE_LEFT <-> MOVE_RIGHT, MOVE_FORWARD stays), which doubles the data without leaving the real world's physics;
* **blur**: half the pairs are smoothed with a 3x3 binomial filter, so that the softer frames a VQ-VAE decoder
  draws read as the same motion (generated frames are decoded frames; the classifier never sees one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.vizdoom import Episode, frames_to_tensor


class InverseDynamicsClassifier(nn.Module):
    """`(B, 3, H, W)` frame t and `(B, 3, H, W)` frame t + 1, in [-1, 1] -> action logits `(B, num_actions)`."""

    def __init__(self, num_actions: int, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(9, width, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
        )
        self.head = nn.Linear(2 * width * 16, num_actions)

    def forward(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        pair = torch.cat([before, after, after - before], dim=1)
        return self.head(self.features(pair).flatten(1))


def real_pairs(episodes: Sequence[Episode]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every consecutive pair of every episode: frames t `(N, H, W, 3)`, frames t + 1, actions t `(N,)`."""
    before = np.concatenate([e.frames[:-1] for e in episodes])
    after = np.concatenate([e.frames[1:] for e in episodes])
    actions = np.concatenate([e.actions[:-1] for e in episodes])
    return before, after, actions


def mirrored_actions(action_names: Sequence[str]) -> torch.LongTensor | None:
    """`(A,)`: the action each action becomes in a left-right mirrored world (LEFT and RIGHT swapped in its name), or
    None when some action has no mirror image among `action_names` (then pairs cannot be flipped)."""
    index = {name: i for i, name in enumerate(action_names)}
    swap = {"LEFT": "RIGHT", "RIGHT": "LEFT"}
    mirrored = []
    for name in action_names:
        image = "_".join(swap.get(part, part) for part in name.split("_"))
        if image not in index:
            return None
        mirrored.append(index[image])
    return torch.tensor(mirrored)


def _blur(frames: torch.Tensor) -> torch.Tensor:
    taps = torch.tensor([1.0, 2.0, 1.0])
    kernel = (taps[:, None] * taps[None] / 16).expand(frames.shape[1], 1, 3, 3)
    return F.conv2d(F.pad(frames, (1, 1, 1, 1), mode="replicate"), kernel, groups=frames.shape[1])


def train_inverse_dynamics(
    episodes: Sequence[Episode],
    action_names: Sequence[str],
    steps: int = 1000,
    batch_size: int = 64,
    learning_rate: float = 2e-3,
    weight_decay: float = 0.05,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> InverseDynamicsClassifier:
    """Trains the classifier on the real consecutive frame pairs of `episodes` (never on generated ones), mirrored
    (when every action in `action_names` has a mirror image) and blurred at random; see the module docstring."""
    torch.manual_seed(seed)
    mirror = mirrored_actions(action_names)
    before, after, actions = real_pairs(episodes)
    model = InverseDynamicsClassifier(len(action_names))
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    for step in range(steps):
        index = torch.randint(0, len(actions), (batch_size,), generator=generator).numpy()
        first, second = frames_to_tensor(before[index]), frames_to_tensor(after[index])
        labels = torch.from_numpy(actions[index])
        if mirror is not None:
            flip = torch.rand(batch_size, generator=generator) < 0.5
            first[flip], second[flip], labels[flip] = first[flip].flip(-1), second[flip].flip(-1), mirror[labels[flip]]
        soften = torch.rand(batch_size, generator=generator) < 0.5
        first[soften], second[soften] = _blur(first[soften]), _blur(second[soften])
        loss = F.cross_entropy(model(first, second), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if progress is not None:
            progress(step)
    return model.eval()


@torch.no_grad()
def predict_actions(model: InverseDynamicsClassifier, before: torch.Tensor, after: torch.Tensor) -> torch.LongTensor:
    """The classifier's action `(N,)` for each pair of frames `(N, 3, H, W)`, in batches of 256."""
    return torch.cat([model(b, a).argmax(1) for b, a in zip(before.split(256), after.split(256))])


def action_accuracy(
    model: InverseDynamicsClassifier, before: torch.Tensor, after: torch.Tensor, actions: torch.Tensor
) -> float:
    """Share of pairs `(N, 3, H, W)` whose commanded action `(N,)` the classifier recovers."""
    predictions = predict_actions(model, before, after)
    return float((predictions == actions.to(predictions.device)).float().mean())


def accuracy_by_hold(model: InverseDynamicsClassifier, episodes: Sequence[Episode]) -> dict[str, float | int]:
    """The classifier's accuracy on the real consecutive pairs of `episodes`, split by whether the action repeats
    the one before it (`within_hold`) or changes (`after_switch`, the first step of a new action). Doom's momentum
    carries the previous action's motion into the frame after a switch, so a pair there shows a blend of two
    actions and the classifier's own ceiling is lower. An episode's first pair has no previous action and is left
    out."""
    before, after, actions = real_pairs(episodes)
    # The action before each pair's own; -1 for an episode's first pair, which has none and is not counted.
    previous = np.concatenate([np.concatenate([[-1], e.actions])[: len(e) - 1] for e in episodes])
    predicted = predict_actions(model, frames_to_tensor(before), frames_to_tensor(after)).cpu()
    hits = predicted == torch.from_numpy(actions)
    counted, switched = torch.from_numpy(previous >= 0), torch.from_numpy(actions != previous)
    within, after_switch = counted & ~switched, counted & switched

    def accuracy(mask: torch.Tensor) -> float:
        return float(hits[mask].double().mean()) if mask.any() else float("nan")

    return {
        "within_hold": accuracy(within),
        "after_switch": accuracy(after_switch),
        "num_within_hold": int(within.sum()),
        "num_after_switch": int(after_switch.sum()),
    }


def chance_accuracy(actions: np.ndarray | torch.Tensor, num_actions: int) -> float:
    """The accuracy of always guessing the most frequent action: the level "far above chance" is measured from."""
    counts = np.bincount(np.asarray(actions).ravel(), minlength=num_actions)
    return float(counts.max() / max(counts.sum(), 1))


__all__ = [
    "InverseDynamicsClassifier",
    "accuracy_by_hold",
    "action_accuracy",
    "chance_accuracy",
    "mirrored_actions",
    "predict_actions",
    "real_pairs",
    "train_inverse_dynamics",
]
