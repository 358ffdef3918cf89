"""Running the package's scripts from a benchmark, as a user types them: the demo's settings as flags, one log per
command, the command shown repo-relative, offline, with a fixed number of torch threads. Shared by quality.py,
prior_quality.py and inception_chunks.py."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
RESULTS = Path(__file__).parent / "results"


def demo_config() -> dict[str, Any]:
    """scripts/run_demo.py's DEFAULT_CONFIG: the benchmark follows the demo, whatever it currently says."""
    spec = importlib.util.spec_from_file_location("run_demo", SCRIPTS / "run_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return copy.deepcopy(module.DEFAULT_CONFIG)


def shown(command: list[str]) -> str:
    """`command` as a reader would type it from the repo root: `python` for this interpreter, repo paths relative."""
    parts = ["python" if part == sys.executable else part.replace(f"{REPO}/", "") for part in command]
    return shlex.join(parts)


def run(command: list[str], log: Path, threads: int) -> float:
    """Runs `command` with its output in `log` and `threads` torch threads; returns its wall time. Raises with the
    log's tail on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"$ {shlex.join(command)}  (log: {log})", flush=True)
    start = time.perf_counter()
    with log.open("w") as handle:
        result = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=_env(threads))
    elapsed = time.perf_counter() - start
    if result.returncode:
        tail = log.read_text()[-3000:]
        raise RuntimeError(
            f"command failed ({result.returncode}) after {elapsed:.0f} s: {shlex.join(command)}\n{tail}"
        )
    print(f"  done in {elapsed:.0f} s", flush=True)
    return elapsed


def _env(threads: int) -> dict[str, str]:
    # Offline: the Hub is unreachable here and online lookups retry for minutes. Threads: on a shared machine, two
    # OpenMP threads spin-waiting on each other while other jobs hold the cores made a step 16x slower than one
    # thread did (4.2 s against 0.27 s, measured here); the thread count changes the speed, not the figures.
    threads = str(threads)
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads}  # fmt: skip


def train_arguments(settings: dict[str, Any], **fixed: Any) -> list[str]:
    """scripts/train.py flags from the demo's stage settings plus `fixed` (which win)."""
    options = {**settings, **fixed}
    arguments = []
    for key, value in options.items():
        if value is None:
            continue
        if isinstance(value, bool):
            if value:
                arguments.append(f"--{key}")
            continue
        arguments += [f"--{key}", json.dumps(value) if isinstance(value, dict) else str(value)]
    return arguments


def fmt(value: Any, digits: int = 4) -> str:
    """A figure for a markdown table: `digits` significant digits (whole numbers from 10,000 on), "-" for none."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)
