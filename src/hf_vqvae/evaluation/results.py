"""The results file `scripts/evaluate.py --output` writes into a model's folder, and the fingerprint that ties its
figures to the weights they measured (a Hub card built later reports them only for those weights)."""

from __future__ import annotations

import hashlib
from pathlib import Path

# What `scripts/evaluate.py --output` writes into a model's folder; Hub cards built from the folder report it.
EVAL_RESULTS_FILE = "eval_results.json"


def weights_fingerprint(model_dir: str | Path) -> str | None:
    """SHA-256 of a local model folder's `model.safetensors` (None when there is none): `scripts/evaluate.py`
    records it beside its results, so a card built later uses them only for the weights they measured."""
    path = Path(model_dir) / "model.safetensors"
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


__all__ = ["EVAL_RESULTS_FILE", "weights_fingerprint"]
