"""Inception features of a large image file in chunks that are saved as they finish (benchmarks/prior_quality.py).

An interrupted run loses at most one chunk, and several processes can share one file's chunks: each claims a chunk
with a lock file holding its pid, and a dead process's lock is taken over. On a GPU one process does it all.

    python benchmarks/inception_chunks.py IMAGES_FILE FOLDER [LIMIT] [DEVICE]   # a helper process
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runs import _env  # noqa: E402

CHUNK = 250  # images per saved chunk of Inception features
STALE_LOCK_SECONDS = 3600


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _claim(path: Path) -> bool:
    """Whether this process may compute chunk `path`: not done, and no live process holds its lock."""
    lock = path.with_suffix(".lock")
    while not path.exists():
        try:
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                holder = int(lock.read_text() or 0)
            except (OSError, ValueError):
                holder = 0
            # A live holder keeps its chunk, unless its lock is older than any chunk takes (its pid reused by
            # another process after the machine was restored from a snapshot, say).
            fresh = time.time() - lock.stat().st_mtime < STALE_LOCK_SECONDS if lock.exists() else False
            if holder and _alive(holder) and fresh:
                return False
            lock.unlink(missing_ok=True)  # a dead worker's lock
            continue
        with os.fdopen(descriptor, "w") as handle:
            handle.write(str(os.getpid()))
        return True
    return False


def _chunk_paths(folder: Path, total: int) -> list[Path]:
    return [folder / f"{start:06d}-{min(start + CHUNK, total):06d}.safetensors" for start in range(0, total, CHUNK)]


def feature_chunks(images_file: Path, folder: Path, limit: int | None = None, device: str = "cpu") -> None:
    """Computes the missing chunks of `CHUNK` images' Inception features of the (first `limit`) uint8 images
    `(N, C, H, W)` in `images_file` into `folder`, each saved as it finishes, with the Inception network on `device`;
    chunks another live process is computing are left to it. Several processes (`--feature_processes`) share the work
    this way."""
    from safetensors.torch import save_file

    from hf_vqvae.metrics.functional import inception_features

    images = torch.load(images_file, weights_only=True)
    folder.mkdir(parents=True, exist_ok=True)
    total = len(images)
    for path in _chunk_paths(folder, total)[: None if limit is None else -(-limit // CHUNK)]:
        start, stop = (int(part) for part in path.stem.split("-"))
        if not _claim(path):
            continue
        began = time.perf_counter()
        # A whole chunk per forward pass on a GPU; on a CPU the network's default batch is as fast and lighter.
        batch = {"batch_size": CHUNK} if torch.device(device).type != "cpu" else {}
        features = inception_features(images[start:stop].float() / 127.5 - 1, device=device, **batch).contiguous()
        seconds = time.perf_counter() - began
        save_file({"features": features}, str(path), metadata={"seconds": f"{seconds:.1f}"})
        path.with_suffix(".lock").unlink(missing_ok=True)
        rate = (stop - start) / seconds
        print(f"{folder.name}: images {start}-{stop} of {len(images)} ({rate:.2f} images/s)", flush=True)


def feature_seconds(folder: Path, limit: int | None = None) -> dict[str, float]:
    """Process-seconds spent on the saved chunks in `folder` (of the first `limit` images): their sum over the
    chunks that recorded it, and how many chunks did. With several processes the wall time is shorter."""
    from safetensors import safe_open

    seconds, timed, chunks = 0.0, 0, 0
    for path in sorted(folder.glob("*.safetensors")):
        if limit is not None and int(path.stem.split("-")[0]) >= limit:
            continue
        chunks += 1
        with safe_open(str(path), "pt") as handle:
            recorded = (handle.metadata() or {}).get("seconds")
        if recorded is not None:
            seconds, timed = seconds + float(recorded), timed + 1
    return {"seconds": seconds, "timed_chunks": timed, "chunks": chunks}


def chunked_features(
    images_file: Path, folder: Path, processes: int, threads: int, limit: int | None = None, device: str = "cpu"
) -> torch.Tensor:
    """Inception features `(N, 2048)` of the (first `limit`) images in `images_file`, by this process and
    `processes - 1` helper processes (one torch thread each by default: on a busy CPU, separate processes do not
    wait on each other)."""
    from safetensors.torch import load_file

    worker = [sys.executable, __file__, str(images_file), str(folder), str(limit or 0), device]
    helpers = [subprocess.Popen(worker, env=_env(threads)) for _ in range(processes - 1)]
    feature_chunks(images_file, folder, limit, device)
    for helper in helpers:
        helper.wait()
    total = len(torch.load(images_file, weights_only=True))
    paths = _chunk_paths(folder, total)[: None if limit is None else -(-limit // CHUNK)]
    while not all(path.exists() for path in paths):  # chunks of processes started elsewhere
        time.sleep(10)
        feature_chunks(images_file, folder, limit, device)
    return torch.cat([load_file(str(path))["features"] for path in paths])[:limit]


if __name__ == "__main__":  # a helper process of `chunked_features`
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    feature_chunks(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) or None, sys.argv[4])
