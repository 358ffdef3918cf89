"""Test helpers: datasets laid out as users have them, made of real Fashion-MNIST images (Debian's
`dataset-fashion-mnist`), corrupt files made on purpose, a code dataset encoded by a real VQ-VAE, and runs of
scripts/train.py in subprocesses."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from conftest import REPO, TINY_VQVAE, train_command
from datasets import ClassLabel, Dataset, Features, List, Value
from datasets import Image as ImageFeature
from PIL import Image

from hf_vqvae import VQVAEConfig, VQVAEImageProcessor, VQVAEModel
from hf_vqvae.data import FASHION_MNIST_LABELS, load_fashion_mnist, write_parquet_shards

CASES_DRIVER = REPO / "tests" / "train_cases.py"
TRAIN_SCRIPT = REPO / "scripts" / "train.py"
# The prior of TINY_VQVAE's 7x7 codes, small enough for a few steps in a second.
TINY_PRIOR = {"hidden_channels": 16, "num_stages": 1, "num_residual_blocks": 1, "num_attention_heads": 2,
              "kernel_size": 3}  # fmt: skip


def fashion_mnist(count: int, offset: int = 0) -> list[tuple[Image.Image, int]]:
    """`count` real Fashion-MNIST test images (28x28 greyscale) with their labels, from `offset` on."""
    images, labels = load_fashion_mnist("test")
    return [(Image.fromarray(images[i]), int(labels[i])) for i in range(offset, offset + count)]


def encoded(image: Image.Image, format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return buffer.getvalue()


def corrupt_files(count: int) -> list[bytes]:
    """`count` files that are not usable images, of the kinds users meet: truncated PNGs and JPEGs, empty files,
    documents saved as images."""
    photo = fashion_mnist(1)[0][0]
    png, jpeg = encoded(photo, "PNG"), encoded(photo.convert("RGB"), "JPEG")
    kinds = [png[: len(png) // 2], jpeg[: len(jpeg) // 2], b"", b"%PDF-1.4 a document, not a picture\n" * 8]
    return [kinds[i % len(kinds)] for i in range(count)]


def write_images(folder: Path, items: list[tuple[Image.Image, int]], suffix: str = ".png", names=None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, (image, _) in enumerate(items):
        name = names[index] if names else f"image_{index:04d}{suffix}"
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image.convert("RGB").save(path) if suffix == ".jpg" else image.save(path)


def image_rows(items: list[tuple[bytes, int]], image_column: str = "image") -> list[dict]:
    return [{"id": i, image_column: {"bytes": data, "path": f"file_{i:04d}.png"}, "label": label}
            for i, (data, label) in enumerate(items)]  # fmt: skip


def parquet_images(folder: Path, splits: dict[str, list[dict]], image_column: str = "image", num_shards: int = 2):
    """A parquet dataset in the Hub's layout, with an `id`, an image column and a `label` ClassLabel column."""
    features = Features(
        {"id": Value("int64"), image_column: ImageFeature(), "label": ClassLabel(names=list(FASHION_MNIST_LABELS))}
    )
    for split, rows in splits.items():
        write_parquet_shards(Dataset.from_list(rows, features=features), folder, split, num_shards)
    return folder


def code_dataset(folder: Path, count: int, malformed: int, test_count: int = 0) -> Path:
    """Code maps of `count` real images encoded by a (seeded, untrained) TINY_VQVAE, the first `malformed` of them
    replaced by rows a prior cannot use: another shape, codes outside the codebook, no code map, no label (which
    counts only for a class-conditional prior). A clean `test` split of `test_count` more, if asked. Written as
    parquet with the `codes_info.json` of scripts/extract_codes.py."""
    torch.manual_seed(0)
    model = VQVAEModel(VQVAEConfig(**TINY_VQVAE)).eval()
    items = fashion_mnist(count + test_count)
    processor = VQVAEImageProcessor.for_model_size(28, num_channels=1)
    with torch.no_grad():
        codes = model.encode(processor([image for image, _ in items], return_tensors="pt").pixel_values)
    codes = codes[0] if isinstance(codes, (tuple, list)) else codes
    rows = [{"id": i, "codes": codes[i].tolist(), "label": label} for i, (_, label) in enumerate(items)]
    k = TINY_VQVAE["num_embeddings"]
    for i in range(malformed):
        bad = [{"codes": codes[i, :6].tolist()}, {"codes": (codes[i] + k).tolist()}, {"codes": None},
               {"label": None}][i % 4]  # fmt: skip
        rows[i].update(bad)
    features = Features({"id": Value("int64"), "codes": List(List(Value("int32"))), "label": Value("int64")})
    write_parquet_shards(Dataset.from_list(rows[:count], features=features), folder, "train", 2)
    if test_count:
        write_parquet_shards(Dataset.from_list(rows[count:], features=features), folder, "test", 1)
    info = {
        "vq_model": None,
        "vq_model_type": "vqvae",
        "levels": [{"column": "codes", "height": 7, "width": 7, "num_embeddings": k}],
        "image_shape": [1, 28, 28],
        "source_dataset": "fashion-mnist",
        "label_column": "label",
        "num_classes": 10,
        "splits": {},
    }
    (folder / "codes_info.json").write_text(json.dumps(info))
    return folder


def prior_command(dataset: Path, output_dir: Path, **overrides) -> list[str]:
    return train_command(dataset, output_dir, model="pixelsnail", model_config=json.dumps(TINY_PRIOR), **overrides)


def run_cases(cases: dict[str, list[str]], folder: Path, timeout: int = 900) -> dict[str, dict]:
    """Each case's arguments through scripts/train.py's command line, all in one subprocess (tests/train_cases.py):
    `{name: {"rc", "stderr"}}`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cases.json").write_text(json.dumps(cases))
    command = [sys.executable, str(CASES_DRIVER), str(folder / "cases.json"), str(folder / "results.json")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env={**os.environ})
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads((folder / "results.json").read_text())


def run_script(arguments: list[str], script: Path = TRAIN_SCRIPT, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(script), *arguments], capture_output=True, text=True, timeout=600, **kwargs
    )


def error_lines(stderr: str, marker: str) -> list[str]:
    return [line for line in stderr.splitlines() if marker in line]


def assert_one_clear_failure(rc, stderr: str, output_dir: Path | None, marker: str) -> str:
    """Non-zero exit, no traceback, exactly one line with `marker`, and no model saved. Returns that line."""
    assert rc not in (0, "exception"), stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = error_lines(stderr, marker)
    assert len(lines) == 1, stderr[-3000:]
    if output_dir is not None:
        assert not (output_dir / "model.safetensors").exists()
        assert not (output_dir / "metrics.json").exists()
    return lines[0]


def read_records(path: Path) -> list[dict]:
    """`--record_batches` records (JSON lines; a killed run may leave its last line unfinished)."""
    records = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records
