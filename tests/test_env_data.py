"""ViZDoom episodes (hf_vqvae.data.vizdoom): real play, the parquet layout and its round trip, the held-out split by
episode, and bad episodes skipped with a count."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("vizdoom")

from hf_vqvae.data.vizdoom import (  # noqa: E402
    Episode,
    load_episodes,
    play_episodes,
    prepare_vizdoom,
    write_episode_shards,
)

NAMES = ["TURN_LEFT", "TURN_RIGHT", "MOVE_FORWARD", "MOVE_LEFT", "MOVE_RIGHT"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vizdoom")
    info = prepare_vizdoom(folder, train_episodes=3, test_episodes=2, steps_per_episode=12, num_shards=2, seed=1)
    return folder, info


def test_persistent_policy_moves_the_view():
    (episode,) = play_episodes(num_episodes=1, steps_per_episode=24, seed=3, hold_min=3, hold_max=5)
    assert episode.frames.shape == (24, 84, 84, 3) and episode.frames.dtype == np.uint8
    assert episode.actions.shape == (24,) and set(episode.actions.tolist()) <= set(range(5))
    # Actions come in runs of 3..5 steps (the last run may be cut by the episode's end).
    runs = np.diff(np.flatnonzero(np.diff(episode.actions, prepend=-1, append=-1)))
    assert all(3 <= run <= 5 for run in runs[:-1]), runs
    # The view really changes: most consecutive frames differ visibly.
    change = np.abs(np.diff(episode.frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
    assert (change > 1.0).mean() > 0.5, change


def test_prepare_writes_whole_episodes_and_a_held_out_split(dataset):
    folder, info = dataset
    assert info["action_names"] == NAMES
    assert info["splits"] == {"train": 36, "test": 24} and info["episodes"] == {"train": 3, "test": 2}
    assert json.loads((folder / "dataset_info.json").read_text()) == info
    assert info["frames_per_second"] > 0 and info["disk_bytes"] > 0
    ids = {}
    for split in ("train", "test"):
        shards = sorted((folder / "data").glob(f"{split}-*.parquet"))
        tables = [pq.read_table(path) for path in shards]
        # Each episode lies in one shard.
        per_shard = [set(table.column("episode_id").to_pylist()) for table in tables]
        assert sum(len(s) for s in per_shard) == len(set().union(*per_shard))
        ids[split] = set().union(*per_shard)
    assert not ids["train"] & ids["test"]
    episodes, report = load_episodes(folder, "test")
    assert report.kept == 2 and not report.skipped
    assert [len(e) for e in episodes] == [12, 12]


def test_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    episodes = [
        Episode(7, rng.integers(0, 256, (5, 84, 84, 3), dtype=np.uint8), rng.integers(0, 5, 5)),
        Episode(3, rng.integers(0, 256, (4, 84, 84, 3), dtype=np.uint8), rng.integers(0, 5, 4)),
    ]
    write_episode_shards(episodes, tmp_path, "train", NAMES, num_shards=2)
    loaded, report = load_episodes(tmp_path, "train", num_actions=5)
    assert [e.episode_id for e in loaded] == [3, 7] and report.kept == 2
    for original, back in zip(sorted(episodes, key=lambda e: e.episode_id), loaded):
        np.testing.assert_array_equal(original.frames, back.frames)
        np.testing.assert_array_equal(original.actions, back.actions)


def _png(array: np.ndarray) -> dict:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def test_bad_episodes_are_skipped_with_a_count(tmp_path):
    good = np.zeros((84, 84, 3), np.uint8)
    rows = []  # (episode_id, step, frame, action)
    rows += [(0, s, _png(good), 1) for s in range(3)]  # fine
    rows += [(1, s, _png(good), 1) for s in (0, 1, 3)]  # step 2 missing
    rows += [(2, 0, _png(good), 0), (2, 1, _png(np.zeros((64, 64, 3), np.uint8)), 0)]  # wrong frame shape
    rows += [(3, 0, _png(good), 0), (3, 1, _png(good), 9)]  # unknown action
    rows += [(4, 0, {"bytes": b"not a png", "path": None}, 0), (4, 1, _png(good), 0)]  # undecodable frame
    rows += [(5, 0, _png(good), 0)]  # too short
    (tmp_path / "data").mkdir()
    table = pa.table(
        {
            "episode_id": [r[0] for r in rows],
            "step": [r[1] for r in rows],
            "frame": [r[2] for r in rows],
            "action": [r[3] for r in rows],
        }
    )
    pq.write_table(table, tmp_path / "data" / "train-00000-of-00001.parquet")
    episodes, report = load_episodes(tmp_path, "train", num_actions=5)
    assert [e.episode_id for e in episodes] == [0]
    assert dict(report.skipped) == {
        "missing_steps": 1,
        "wrong_shape": 1,
        "unknown_action": 1,
        "bad_frame": 1,
        "too_short": 1,
    }
    assert any("steps [2] missing" in message for message in report.examples)
    assert any("action 9 is not in [0, 5)" in message for message in report.examples)

    with pytest.raises(ValueError, match="no usable episode.*unknown_action"):
        load_episodes(tmp_path, "train", num_actions=1)
    with pytest.raises(ValueError, match="no parquet shards for split 'test'"):
        load_episodes(tmp_path, "test")
