"""Crash-safe checkpoints: written to a temporary folder and renamed into place, so a `kill -9` at any moment
leaves either the previous complete checkpoint or the new one, never a half-written folder that resume would read.

A checkpoint folder `checkpoint-{step}` holds Accelerate's state (model, optimizer, scheduler and RNG states, read
back with `weights_only=True`) and `training_state.json`: the step and each rank's data-stream position.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from accelerate.utils import gather_object

TRAINING_STATE = "training_state.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints in `output_dir`, oldest first (a temporary folder is never complete)."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = [
        (int(match.group(1)), path)
        for path in folder.iterdir()
        if (match := _CHECKPOINT.match(path.name)) and (path / TRAINING_STATE).is_file()
    ]
    return [path for _, path in sorted(found)]


def resolve_checkpoint(output_dir: str | Path, name: str) -> Path:
    """`name` is a checkpoint folder or "latest" (the newest complete checkpoint in `output_dir`)."""
    if name == "latest":
        checkpoints = list_checkpoints(output_dir)
        if not checkpoints:
            raise FileNotFoundError(f"--resume_from_checkpoint latest: no complete checkpoint in {output_dir}")
        return checkpoints[-1]
    path = Path(name)
    if not (path / TRAINING_STATE).is_file():
        raise FileNotFoundError(f"{path} is not a complete checkpoint (no {TRAINING_STATE})")
    return path


def save_checkpoint(
    accelerator: Accelerator, output_dir: str | Path, step: int, rank_state: dict[str, Any], keep: int
) -> Path:
    """Saves a checkpoint on every process (each writes its own RNG state) and keeps the `keep` newest.
    `rank_state` is this process's JSON-serialisable state; all ranks' states are stored as a list."""
    output_dir = Path(output_dir)
    final = output_dir / f"checkpoint-{step}"
    temporary = output_dir / f".checkpoint-{step}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temporary))
    ranks = gather_object([rank_state])
    if accelerator.is_main_process:
        state = {"step": step, "ranks": ranks}
        with open(temporary / TRAINING_STATE, "w") as handle:
            json.dump(state, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        if final.exists():  # the same step saved again after a resume
            shutil.rmtree(final)
        os.replace(temporary, final)
        for old in list_checkpoints(output_dir)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator: Accelerator, checkpoint: Path) -> dict[str, Any]:
    """Restores Accelerate's state from `checkpoint`; returns `{"step", "rank"}` with this process's own state."""
    state = json.loads((checkpoint / TRAINING_STATE).read_text())
    if len(state["ranks"]) != accelerator.num_processes:
        raise ValueError(
            f"{checkpoint} was written by {len(state['ranks'])} processes, this run has {accelerator.num_processes}: "
            "resume with the same number of processes"
        )
    accelerator.load_state(str(checkpoint))
    return {"step": state["step"], "rank": state["ranks"][accelerator.process_index]}
