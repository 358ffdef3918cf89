"""First-person 3-D frames with actions from ViZDoom (SPEC section 3): the environment data of the VQ-VAE paper's
two-stage model and action-conditioned video generation (van den Oord et al. 2017, sections 4.2 and 4.4, which used
DeepMind Lab; ViZDoom's navigation scenarios give the same kind of data and run offline, headless, on CPU).

An agent with a random but *persistent* policy plays episodes: it draws one of the scenario's buttons and holds it
for `hold_min..hold_max` steps (each step lasts `frame_skip` game tics), so the view really turns and walks instead
of jittering in place. Every step records the 84x84 RGB frame the agent saw and the action it then took: the action
at step t leads from frame t to frame t + 1.

Layout, one row per step, whole episodes per parquet shard (the Hub's `data/{split}-0000i-of-0000n.parquet`):

    episode_id (int64)   step (int32, 0.. within the episode)   frame (Image, PNG 84x84x3)   action (ClassLabel)

and `dataset_info.json` with the scenario, the action names and the split sizes. The `test` split holds whole
episodes the `train` split never sees (a held-out split by episode). `load_episodes` reads a split back as episodes,
skipping and counting bad ones (missing steps, frames of the wrong shape, unknown actions).

Measured with `python scripts/prepare_data.py --source vizdoom --output_dir outputs/data/vizdoom` (defaults:
`my_way_home`, 96 + 16 episodes of at most 64 steps, frame_skip 4, seed 0), on 2 CPU cores shared with other jobs:
7,034 frames (some episodes end early, at the goal) in 51 s wall clock, i.e. 270 frames/s for playing, resizing and
PNG-encoding together (the game alone renders 400-900 steps/s); 52.8 MB of parquet on disk, 7.5 KB per frame (PNG;
a raw 84x84x3 frame is 21 KB).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

FRAME_SIZE = 84
SCENARIOS = ("my_way_home", "health_gathering", "health_gathering_supreme", "defend_the_center", "deadly_corridor")


@dataclass
class Episode:
    """One episode: `frames` `(T, 84, 84, 3)` uint8 RGB and `actions` `(T,)` int64, where `actions[t]` is the
    action taken after seeing `frames[t]` (it leads to `frames[t + 1]`)."""

    episode_id: int
    frames: np.ndarray
    actions: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)


@dataclass
class EpisodeLoadReport:
    """What `load_episodes` kept and skipped, with the reason for each skipped episode."""

    kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def skip(self, reason: str, message: str) -> None:
        self.skipped[reason] += 1
        if len(self.examples) < 10:
            self.examples.append(message)


def _import_vizdoom():
    try:
        import vizdoom
    except ImportError as error:  # pragma: no cover - exercised only without the extra
        raise ImportError("ViZDoom data needs the `env` extra: pip install 'hf_vqvae[env]'") from error
    return vizdoom


def make_game(scenario: str = "my_way_home", seed: int = 0):
    """A headless `vizdoom.DoomGame` for `scenario` (one of ViZDoom's bundled `.cfg` files): no window, no HUD,
    160x120 RGB frames (resized to 84x84 afterwards), seeded."""
    vizdoom = _import_vizdoom()
    config = os.path.join(vizdoom.scenarios_path, f"{scenario}.cfg")
    if not os.path.exists(config):
        raise ValueError(f"unknown ViZDoom scenario {scenario!r}: no {config} (bundled ones include {SCENARIOS})")
    game = vizdoom.DoomGame()
    game.load_config(config)
    game.set_window_visible(False)
    game.set_sound_enabled(False)
    game.set_render_hud(False)
    game.set_screen_resolution(vizdoom.ScreenResolution.RES_160X120)
    game.set_screen_format(vizdoom.ScreenFormat.RGB24)
    game.set_mode(vizdoom.Mode.PLAYER)
    game.set_seed(seed)
    game.init()
    return game


def action_names(game) -> list[str]:
    """The scenario's buttons, e.g. `["TURN_LEFT", "TURN_RIGHT", "MOVE_FORWARD", "MOVE_LEFT", "MOVE_RIGHT"]`: action
    `i` presses button `i` alone."""
    return [button.name for button in game.get_available_buttons()]


def resize_frame(frame: np.ndarray, size: int = FRAME_SIZE) -> np.ndarray:
    """`(H, W, 3)` uint8 -> `(size, size, 3)` uint8 (bilinear; ViZDoom's 4:3 frames are squeezed, as DeepMind Lab's
    84x84 observations are)."""
    return np.asarray(Image.fromarray(frame).resize((size, size), Image.Resampling.BILINEAR))


def persistent_actions(num_actions: int, rng: np.random.Generator, hold_min: int = 2, hold_max: int = 8):
    """Endless actions of the random persistent policy: draw an action uniformly among those other than the one
    just held (so every hold ends in a change), hold it for a uniformly drawn `hold_min..hold_max` steps, repeat."""
    if not 1 <= hold_min <= hold_max:
        raise ValueError(f"need 1 <= hold_min <= hold_max, got hold_min={hold_min}, hold_max={hold_max}")
    action = int(rng.integers(num_actions))
    while True:
        for _ in range(int(rng.integers(hold_min, hold_max + 1))):
            yield action
        if num_actions > 1:
            action = (action + 1 + int(rng.integers(num_actions - 1))) % num_actions


def play_episodes(
    scenario: str = "my_way_home",
    num_episodes: int = 1,
    steps_per_episode: int = 64,
    frame_skip: int = 4,
    seed: int = 0,
    hold_min: int = 2,
    hold_max: int = 8,
    first_episode_id: int = 0,
    min_steps: int = 2,
) -> Iterator[Episode]:
    """Plays `num_episodes` episodes of at most `steps_per_episode` steps with the random persistent policy. An
    episode the game ends earlier (the goal reached, the player dead) is kept if it has at least `min_steps`
    steps; shorter ones are replayed, so exactly `num_episodes` episodes come out."""
    game = make_game(scenario, seed)
    num_actions = len(game.get_available_buttons())
    rng = np.random.default_rng(seed)
    episode_id = first_episode_id
    try:
        while episode_id < first_episode_id + num_episodes:
            game.new_episode()
            policy = persistent_actions(num_actions, rng, hold_min, hold_max)
            frames, actions = [], []
            while len(frames) < steps_per_episode and not game.is_episode_finished():
                frames.append(resize_frame(game.get_state().screen_buffer))
                action = next(policy)
                buttons = [0] * num_actions
                buttons[action] = 1
                game.make_action(buttons, frame_skip)
                actions.append(action)
            if len(frames) >= min_steps:
                yield Episode(episode_id, np.stack(frames), np.asarray(actions, dtype=np.int64))
                episode_id += 1
    finally:
        game.close()


# ------------------------------------------------------------------------------------------------------- writing
def _episode_features(names: list[str]):
    from datasets import ClassLabel, Features, Value
    from datasets import Image as ImageFeature

    columns = {"episode_id": Value("int64"), "step": Value("int32"), "frame": ImageFeature()}
    return Features({**columns, "action": ClassLabel(names=names)})


def write_episode_shards(episodes: list[Episode], folder: Path, split: str, names: list[str], num_shards: int):
    """Writes `episodes` as `folder/data/{split}-0000i-of-0000n.parquet`, whole episodes per shard (episode `j`
    in shard `j % n`), so that a reader of one shard gets complete episodes."""
    from datasets import Dataset

    num_shards = max(1, min(num_shards, len(episodes)))
    data_dir = Path(folder) / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    features = _episode_features(names)
    paths = []
    for index in range(num_shards):
        rows = {"episode_id": [], "step": [], "frame": [], "action": []}
        for episode in episodes[index::num_shards]:
            for step, (frame, action) in enumerate(zip(episode.frames, episode.actions)):
                rows["episode_id"].append(episode.episode_id)
                rows["step"].append(step)
                rows["frame"].append(Image.fromarray(frame))
                rows["action"].append(int(action))
        path = data_dir / f"{split}-{index:05d}-of-{num_shards:05d}.parquet"
        Dataset.from_dict(rows, features=features).to_parquet(str(path))
        paths.append(path)
    return paths


def prepare_vizdoom(
    output_dir: str | Path,
    scenario: str = "my_way_home",
    train_episodes: int = 96,
    test_episodes: int = 16,
    steps_per_episode: int = 64,
    frame_skip: int = 4,
    num_shards: int = 8,
    seed: int = 0,
    hold_min: int = 2,
    hold_max: int = 8,
) -> dict:
    """Plays `train_episodes + test_episodes` episodes and writes both splits (the test episodes are separate
    episodes, played after the train ones, with their own ids). Returns (and writes as `dataset_info.json`) the
    scenario, action names, split sizes, frames/s and bytes on disk."""
    import time

    from tqdm.auto import tqdm

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    game = make_game(scenario, seed)
    names = action_names(game)
    game.close()
    start = time.perf_counter()
    episodes = list(
        tqdm(
            play_episodes(
                scenario, train_episodes + test_episodes, steps_per_episode, frame_skip, seed, hold_min, hold_max
            ),
            total=train_episodes + test_episodes,
            desc=f"vizdoom {scenario}",
            unit="episode",
        )
    )
    splits = {"train": episodes[:train_episodes], "test": episodes[train_episodes:]}
    for split, split_episodes in splits.items():
        if split_episodes:
            write_episode_shards(split_episodes, output_dir, split, names, num_shards)
    seconds = time.perf_counter() - start
    frames = sum(len(e) for e in episodes)
    disk = sum(p.stat().st_size for p in (output_dir / "data").glob("*.parquet"))
    info = {
        "source": "vizdoom",
        "scenario": scenario,
        "action_names": names,
        "frame_size": FRAME_SIZE,
        "frame_skip": frame_skip,
        "hold_steps": [hold_min, hold_max],
        "steps_per_episode": steps_per_episode,
        "seed": seed,
        "splits": {split: sum(len(e) for e in eps) for split, eps in splits.items()},
        "episodes": {split: len(eps) for split, eps in splits.items()},
        "frames_per_second": round(frames / seconds, 1),
        "disk_bytes": disk,
        "bytes_per_frame": round(disk / max(frames, 1)),
    }
    (output_dir / "dataset_info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def add_vizdoom_arguments(parser) -> None:
    """The `--source vizdoom` options of `scripts/prepare_data.py`."""
    group = parser.add_argument_group("vizdoom (first-person frames and actions; see hf_vqvae.data.vizdoom)")
    group.add_argument("--scenario", default="my_way_home", help="a ViZDoom scenario (.cfg name without suffix)")
    group.add_argument("--train_episodes", type=int, default=96)
    group.add_argument("--test_episodes", type=int, default=16, help="held-out episodes (the test split)")
    group.add_argument("--steps_per_episode", type=int, default=64)
    group.add_argument("--frame_skip", type=int, default=4, help="game tics per step (an action lasts this long)")
    group.add_argument("--hold_steps", type=int, nargs=2, default=(2, 8), metavar=("MIN", "MAX"))


def prepare_vizdoom_from_args(args) -> dict:
    """`prepare_vizdoom` with the options of `add_vizdoom_arguments` (and prepare_data's own `--output_dir`,
    `--num_shards`, `--seed`)."""
    return prepare_vizdoom(
        args.output_dir,
        scenario=args.scenario,
        train_episodes=args.train_episodes,
        test_episodes=args.test_episodes,
        steps_per_episode=args.steps_per_episode,
        frame_skip=args.frame_skip,
        num_shards=args.num_shards,
        seed=args.seed,
        hold_min=args.hold_steps[0],
        hold_max=args.hold_steps[1],
    )


# ------------------------------------------------------------------------------------------------------- reading
def _decode_frame(value) -> np.ndarray:
    # The package-level name: the data package's module layout is being reorganised, its exports are stable.
    from hf_vqvae.data import decode_image

    return np.asarray(decode_image(value).convert("RGB"))


def load_episodes(
    folder: str | Path,
    split: str,
    num_actions: int | None = None,
    frame_size: int = FRAME_SIZE,
    min_steps: int = 2,
    max_episodes: int | None = None,
) -> tuple[list[Episode], EpisodeLoadReport]:
    """Reads a split written by `prepare_vizdoom` (or any parquet folder with the same columns) back as episodes,
    sorted by id, each sorted by step.

    An episode is skipped, and counted in the returned report under its reason, when a step is missing
    (`missing_steps`: its steps are not 0..T-1) or repeated (`duplicate_steps`), a frame does not decode
    (`bad_frame`) or is not `frame_size x frame_size x 3` (`wrong_shape`), an action is outside
    `[0, num_actions)` (`unknown_action`; `num_actions` defaults to the dataset's action names), or it has fewer
    than `min_steps` steps (`too_short`). A folder without the split, or one where no episode survives, raises
    `ValueError` naming the problem.
    """
    import pyarrow.parquet as pq

    folder = Path(folder)
    paths = sorted((folder / "data").glob(f"{split}-*.parquet"))
    if not paths:
        raise ValueError(f"no parquet shards for split {split!r} under {folder / 'data'} (run prepare_data.py)")
    if num_actions is None:
        info_path = folder / "dataset_info.json"
        if info_path.exists():
            num_actions = len(json.loads(info_path.read_text())["action_names"])
    rows: dict[int, list[tuple[int, object, int]]] = {}
    for path in paths:
        table = pq.read_table(path)
        missing = {"episode_id", "step", "frame", "action"} - set(table.column_names)
        if missing:
            raise ValueError(f"{path} lacks the column(s) {sorted(missing)}; it is not a ViZDoom episode shard")
        columns = table.to_pydict()
        for episode_id, step, frame, action in zip(
            columns["episode_id"], columns["step"], columns["frame"], columns["action"]
        ):
            rows.setdefault(int(episode_id), []).append((int(step), frame, action))

    report = EpisodeLoadReport()
    episodes = []
    for episode_id in sorted(rows):
        if max_episodes is not None and len(episodes) >= max_episodes:
            break
        episode = _check_episode(episode_id, sorted(rows[episode_id], key=lambda r: r[0]), num_actions, frame_size)
        if isinstance(episode, tuple):
            report.skip(*episode)
        elif len(episode) < min_steps:
            report.skip("too_short", f"episode {episode_id}: {len(episode)} steps, fewer than {min_steps}")
        else:
            episodes.append(episode)
    report.kept = len(episodes)
    if not episodes:
        raise ValueError(
            f"no usable episode in split {split!r} of {folder}: skipped {dict(report.skipped)}; e.g. "
            + "; ".join(report.examples[:3])
        )
    return episodes, report


def _check_episode(episode_id: int, rows: list, num_actions: int | None, size: int) -> Episode | tuple[str, str]:
    """The episode, or `(reason, message)` when it must be skipped."""
    steps = [step for step, _, _ in rows]
    if len(set(steps)) != len(steps):
        return "duplicate_steps", f"episode {episode_id}: a step appears twice"
    if steps != list(range(len(steps))):
        gaps = sorted(set(range(max(steps) + 1)) - set(steps))[:5]
        return "missing_steps", f"episode {episode_id}: steps {gaps} missing (steps must run 0..T-1)"
    frames = []
    for step, frame, _ in rows:
        try:
            array = _decode_frame(frame)
        except (ValueError, OSError) as error:
            return "bad_frame", f"episode {episode_id} step {step}: frame does not decode ({error})"
        if array.shape != (size, size, 3):
            return "wrong_shape", f"episode {episode_id} step {step}: frame {array.shape}, expected {(size, size, 3)}"
        frames.append(array)
    actions = [action for _, _, action in rows]
    for step, action in zip(steps, actions):
        if (
            action is None
            or isinstance(action, bool)
            or not isinstance(action, (int, np.integer))
            or action < 0
            or (num_actions is not None and action >= num_actions)
        ):
            bound = f"[0, {num_actions})" if num_actions is not None else "a non-negative integer"
            return "unknown_action", f"episode {episode_id} step {step}: action {action!r} is not in {bound}"
    return Episode(episode_id, np.stack(frames), np.asarray(actions, dtype=np.int64))


def frames_to_tensor(frames: np.ndarray):
    """`(..., H, W, 3)` uint8 -> float tensor `(..., 3, H, W)` in [-1, 1], the VQ models' input space."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(frames)).movedim(-1, -3).float().div(127.5).sub(1.0)


def tensor_to_frames(pixels) -> np.ndarray:
    """Inverse of `frames_to_tensor` (clamped and rounded): `(..., 3, H, W)` in [-1, 1] -> `(..., H, W, 3)`
    uint8."""
    return pixels.detach().float().clamp(-1, 1).add(1).mul(127.5).round().byte().movedim(-3, -1).cpu().numpy()


__all__ = [
    "FRAME_SIZE",
    "SCENARIOS",
    "Episode",
    "EpisodeLoadReport",
    "action_names",
    "add_vizdoom_arguments",
    "frames_to_tensor",
    "load_episodes",
    "make_game",
    "persistent_actions",
    "play_episodes",
    "prepare_vizdoom",
    "prepare_vizdoom_from_args",
    "resize_frame",
    "tensor_to_frames",
    "write_episode_shards",
]
