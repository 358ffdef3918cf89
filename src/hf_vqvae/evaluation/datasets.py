"""What a model card or a model-index says about a dataset: its Hub id where it has one, a readable name, the split
evaluated and the class names. `scripts/evaluate.py` names the dataset of its results with it, the Hub cards
(`hf_vqvae.hub`) describe the training data with it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..data.fashion_mnist import FASHION_MNIST_LABELS

# The local sources of scripts/prepare_data.py, with their Hub dataset ids where one exists.
KNOWN_SOURCES = {
    "fashion-mnist": {
        "hub_id": "zalando-datasets/fashion_mnist",
        "name": "Fashion-MNIST",
        "class_names": list(FASHION_MNIST_LABELS),
    },
    "photos": {
        "hub_id": None,
        "name": "Photo crops (scikit-image sample photos and Lomiri wallpapers)",
        "class_names": None,
    },
}


@dataclass
class DatasetInfo:
    """What a card says about the data: the Hub id (if the data is on the Hub), a readable name, the evaluation
    split, class names, and the local folder (to read an example image from). `held_out_percentage` is set when the
    evaluation read the share of `split` (the train split) that training held out, not a split of its own."""

    name: str
    hub_id: str | None = None
    split: str = "test"
    class_names: list[str] | None = None
    local_dir: Path | None = None
    image_column: str = "image"
    held_out_percentage: float | None = None
    train_split: str = "train"

    @property
    def model_index_type(self) -> str:
        """The model-index `dataset.type`: the Hub id where there is one, else the name."""
        return self.hub_id or self.name

    @property
    def evaluated_part(self) -> str:
        """The evaluation data in a card's words (markdown): the held-out split, or the share of the train split."""
        if self.held_out_percentage:
            return f"the held-out {self.held_out_percentage:g}% of the `{self.split}` split"
        return f"the held-out `{self.split}` split"

    @property
    def trained_part(self) -> str:
        """The training data in a card's words (markdown): the train split, less its held-out share if any."""
        if self.held_out_percentage and self.split == self.train_split:
            return f"the other {100 - self.held_out_percentage:g}% of the `{self.train_split}` split"
        return f"the `{self.train_split}` split"


def local_dir(source: str) -> Path | None:
    """`source` as a local folder, or None if it is not one (a Hub id)."""
    path = Path(source)
    return path if source and path.is_dir() else None


def class_names_of(folder: Path | None, column: str = "label") -> list[str] | None:
    """Class names of a `ClassLabel` column, from the `datasets` features stored in a parquet shard's metadata."""
    if folder is None:
        return None
    import pyarrow.parquet as pq

    shards = sorted(folder.glob("**/*.parquet"))
    if not shards:
        return None
    metadata = pq.read_schema(shards[0]).metadata or {}
    try:
        features = json.loads(metadata[b"huggingface"])["info"]["features"]
        return list(features[column]["names"])
    except (KeyError, TypeError, ValueError):
        return None


def describe_dataset(
    source: str,
    split: str = "test",
    image_column: str = "image",
    class_names: list[str] | None = None,
    held_out_percentage: float | None = None,
    train_split: str = "train",
) -> DatasetInfo:
    """A `--dataset` value as a `DatasetInfo`: a Hub dataset id is its own type and name; a local folder written by
    `scripts/prepare_data.py` is described by its source (Fashion-MNIST: the Hub id `zalando-datasets/fashion_mnist`);
    any other folder by its name. `held_out_percentage`: the evaluation read that share of `split`, held out of
    training (a dataset without an evaluation split of its own)."""
    local = local_dir(source)
    parts = {"split": split, "held_out_percentage": held_out_percentage or None, "train_split": train_split}
    if local is None:
        # Not a local folder: a Hub dataset id, as `datasets.load_dataset` takes it.
        return DatasetInfo(name=source, hub_id=source or None, class_names=class_names, **parts)
    info_file = local / "dataset_info.json"
    known = KNOWN_SOURCES.get(json.loads(info_file.read_text()).get("source")) if info_file.exists() else None
    known = known or {"hub_id": None, "name": local.name, "class_names": None}
    return DatasetInfo(
        name=known["name"],
        hub_id=known["hub_id"],
        class_names=class_names or class_names_of(local, "label") or known["class_names"],
        local_dir=local,
        image_column=image_column,
        **parts,
    )


__all__ = ["KNOWN_SOURCES", "DatasetInfo", "class_names_of", "describe_dataset", "local_dir"]
