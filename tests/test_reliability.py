"""Faults and bad input: corrupt images in a stream, kill -9 and resume, non-finite losses, mismatched checkpoints,
and no unpickling of anything the package did not write itself. Every artefact is real: corrupt files are made
here, training runs are real subprocesses, non-finite losses come from a real divergence or a real forward hook."""

from __future__ import annotations

import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, TINY_VQVAE, assert_state_dicts_bitwise_equal, train_command
from datasets import Dataset, Features, Value
from datasets import Image as ImageFeature
from PIL import Image
from safetensors.torch import load_file

from hf_vqvae import VQVAEConfig, VQVAEImageProcessor, VQVAEModel
from hf_vqvae.data import ImageCollator, decode_image, skimage_photos, write_parquet_shards
from hf_vqvae.training import list_checkpoints


def encoded(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def odd_and_bad_images() -> dict[str, tuple[bytes, str | None]]:
    """name -> (file bytes, the skip reason expected, or None for an image that must be converted and kept)."""
    photo = skimage_photos(("coffee",))[0].resize((60, 40))
    grey16 = Image.fromarray((np.asarray(photo.convert("L"), dtype=np.uint16) * 257).astype(np.uint16))
    jpeg, png = encoded(photo, "JPEG"), encoded(photo, "PNG")
    bomb = Image.new("1", (9000, 9000))  # 81 megapixels, a few kB as PNG
    return {
        "rgb_jpeg": (jpeg, None),
        "greyscale": (encoded(photo.convert("L"), "PNG"), None),
        "rgba": (encoded(photo.convert("RGBA"), "PNG"), None),
        "cmyk": (encoded(photo.convert("CMYK"), "JPEG"), None),
        "sixteen_bit": (encoded(grey16, "PNG"), None),
        "palette": (encoded(photo.convert("P"), "PNG"), None),
        "smaller_than_model": (encoded(photo.resize((9, 6)), "PNG"), None),
        "truncated_jpeg": (jpeg[: len(jpeg) * 6 // 10], "truncated"),
        "truncated_png": (png[: len(png) * 6 // 10], "truncated"),
        "zero_bytes": (b"", "empty"),
        "not_an_image": (b"%PDF-1.4 this is a document, not a picture" * 20, "not_an_image"),
        "decompression_bomb": (encoded(bomb, "PNG"), "decompression_bomb"),
    }


def test_decode_image_names_each_cause():
    for name, (data, reason) in odd_and_bad_images().items():
        if reason is None:
            decode_image({"bytes": data, "path": None})
        else:
            with pytest.raises(ValueError) as raised:
                decode_image({"bytes": data, "path": None})
            assert raised.value.reason == reason, name


def test_collator_converts_odd_images_and_counts_bad_ones_by_cause():
    cases = odd_and_bad_images()
    examples = [{"id": i, "image": {"bytes": data, "path": None}} for i, (data, _) in enumerate(cases.values())]
    batch = ImageCollator(VQVAEImageProcessor.for_model_size(32, num_channels=3), label_column=None)(examples)
    kept = [name for name, (_, reason) in cases.items() if reason is None]
    assert batch["pixel_values"].shape == (len(kept), 3, 32, 32)
    assert batch["ids"].tolist() == [i for i, (_, reason) in enumerate(cases.values()) if reason is None]
    assert batch["skipped"] == {"truncated": 2, "empty": 1, "not_an_image": 1, "decompression_bomb": 1}
    assert batch["num_examples"] == len(cases)
    assert any(message.startswith("id 9: empty") for message in batch["bad_examples"])


def dataset_with_bad_images(folder: Path, bad_every: int) -> Path:
    """Real Fashion-MNIST-sized photo crops where every `bad_every`-th file is broken in one of the ways above."""
    cases = list(odd_and_bad_images().values())
    broken = [data for data, reason in cases if reason is not None]
    photo = skimage_photos(("astronaut",))[0]
    rows = []
    for index in range(256):
        if index % bad_every == 0:
            data = broken[(index // bad_every) % len(broken)]
        else:
            x, y = (index * 37) % 480, (index * 53) % 480
            data = encoded(photo.crop((x, y, x + 28, y + 28)).convert("L"), "PNG")
        rows.append({"id": index, "image": {"bytes": data, "path": None}})
    dataset = Dataset.from_list(rows, features=Features({"id": Value("int64"), "image": ImageFeature()}))
    for split in ("train", "test"):
        write_parquet_shards(dataset, folder, split, num_shards=2)
    return folder


def run_train(
    command: list[str], env: dict | None = None, check: bool = True, script: Path = REPO / "tests" / "train_driver.py"
) -> subprocess.CompletedProcess:
    full = [sys.executable, str(script), *command]
    result = subprocess.run(full, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(result.stderr[-4000:])
    return result


def test_training_skips_bad_images_and_aborts_past_the_allowed_fraction(tmp_path):
    data = dataset_with_bad_images(tmp_path / "data", bad_every=16)  # 16 of 256 are broken: 6.25 %
    common = {"per_device_train_batch_size": 16, "max_train_steps": 12, "shuffle_buffer": 0}
    run_train(train_command(data, tmp_path / "tolerant", max_skipped_fraction=0.1, **common))
    metrics = json.loads((tmp_path / "tolerant" / "metrics.json").read_text())
    assert metrics["train/steps"] == 12
    assert metrics["train/skipped_examples"] == 12  # 192 examples seen, every 16th broken
    assert set(metrics["train/skipped_by_cause"]) == {"truncated", "empty", "not_an_image", "decompression_bomb"}

    # The user's entry point, as users run it: a clear one-line error, no traceback.
    strict = run_train(
        train_command(data, tmp_path / "strict", max_skipped_fraction=0.01, **common),
        check=False,
        script=REPO / "scripts" / "train.py",
    )
    assert strict.returncode != 0 and "Traceback" not in strict.stderr
    (message,) = [line for line in strict.stderr.splitlines() if "training stopped:" in line]
    assert "--max_skipped_fraction=0.01" in message and re.search(r"id \d+: (truncated|empty)", message), message


@pytest.mark.slow
def test_kill_9_at_a_random_moment_then_resume_is_bitwise_equal_to_an_uninterrupted_run(fashion_mnist, tmp_path):
    # Two DataLoader workers, a shuffle buffer, k-means init and dead-code restarts (random draws) all included.
    options = {"max_train_steps": 12, "checkpointing_steps": 3, "num_workers": 2, "shuffle_buffer": 64}
    reference = tmp_path / "uninterrupted"
    run_train(train_command(fashion_mnist, reference, **options))

    crashed = tmp_path / "crashed"
    command = [sys.executable, str(REPO / "tests" / "train_driver.py")] + train_command(
        fashion_mnist, crashed, **options
    )
    rng = random.Random()
    target = rng.choice([3, 6, 9])
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (crashed / f"checkpoint-{target}").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 1.0))  # anywhere after it: mid-step, mid-save, mid-evaluation
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (crashed / "rank0.safetensors").exists(), "the run finished before it was killed"
    assert list_checkpoints(crashed), "no complete checkpoint to resume from"

    run_train(train_command(fashion_mnist, crashed, resume_from_checkpoint="latest", **options))
    assert_state_dicts_bitwise_equal(
        load_file(reference / "rank0.safetensors"), load_file(crashed / "rank0.safetensors")
    )
    assert_state_dicts_bitwise_equal(
        load_file(reference / "model.safetensors"), load_file(crashed / "model.safetensors")
    )


def test_a_non_finite_step_is_skipped_and_training_goes_on(fashion_mnist, tmp_path):
    output = tmp_path / "run"
    result = run_train(
        train_command(fashion_mnist, output, max_train_steps=6), env={"HF_VQVAE_TEST_NAN_FORWARDS": "3"}
    )
    assert result.stderr.count("non-finite loss, update skipped") == 1
    state = load_file(output / "rank0.safetensors")
    assert all(torch.isfinite(t.float()).all() for t in state.values())
    # Steps count real updates only: 7 forwards, the poisoned one updating nothing (not the codebook either).
    (counter,) = [int(tensor) for name, tensor in state.items() if re.fullmatch(r".*quantizer.*\.step", name)]
    assert counter == 6 == json.loads((output / "metrics.json").read_text())["train/steps"]


def test_divergence_aborts_after_k_non_finite_steps_and_keeps_the_last_good_checkpoint(fashion_mnist, tmp_path):
    output = tmp_path / "run"
    # A learning rate of 1e8, after a first update at 0 (warmup): the second update overflows every later forward,
    # a real divergence after a good checkpoint.
    command = train_command(
        fashion_mnist, output, learning_rate=1e8, lr_warmup_steps=2, max_train_steps=20, checkpointing_steps=1,
        max_nonfinite_steps=3,
    )  # fmt: skip
    result = run_train(command, check=False)
    assert result.returncode != 0
    assert "3 non-finite losses in a row (--max_nonfinite_steps)" in result.stderr
    assert result.stderr.count("non-finite loss, update skipped") == 3
    checkpoints = list_checkpoints(output)
    assert checkpoints, "the checkpoint written before the divergence must remain"
    last = load_file(checkpoints[-1] / "model.safetensors")
    assert all(torch.isfinite(t.float()).all() for t in last.values())
    # As the message advises: resume from the checkpoint before the divergence with a lower learning rate, which
    # the resumed run then uses (not the checkpoint's), and trains on with real, finite updates.
    assert checkpoints[0].name == "checkpoint-1"
    run_train(
        train_command(fashion_mnist, output, max_train_steps=4, resume_from_checkpoint=str(checkpoints[0]),
                      learning_rate=1e-3, lr_warmup_steps=2)
    )  # fmt: skip
    assert json.loads((output / "metrics.json").read_text())["train/steps"] == 4
    assert all(torch.isfinite(t.float()).all() for t in load_file(output / "model.safetensors").values())


def test_mismatched_checkpoint_names_tensor_and_both_shapes(tmp_path):
    VQVAEModel(VQVAEConfig(**TINY_VQVAE)).save_pretrained(tmp_path)
    with pytest.raises(ValueError) as raised:
        VQVAEModel.from_pretrained(tmp_path, num_embeddings=64)
    assert "quantizers.0.codebook: checkpoint (32, 8) vs model (64, 8)" in str(raised.value)
    # A tensor the checkpoint lacks is initialised, as in transformers, and named loudly.
    with pytest.warns(
        UserWarning, match=r"encoders\.0\.residual\.blocks\.2\.conv1\.weight: missing from the checkpoint"
    ):
        VQVAEModel.from_pretrained(tmp_path, num_residual_blocks=3)
    # On purpose, it still works.
    model = VQVAEModel.from_pretrained(tmp_path, num_embeddings=64, ignore_mismatched_sizes=True)
    assert model.quantizers[0].codebook.shape == (64, 8)


def test_no_unsafe_deserialisation_in_the_package_or_scripts():
    """Weights are safetensors, metadata JSON, and torch files are read with weights_only=True: no pickle."""
    offenders = []
    for path in [*(REPO / "src").rglob("*.py"), *(REPO / "scripts").rglob("*.py")]:
        text = path.read_text()
        for pattern in (r"import pickle", r"pickle\.load", r"import dill", r"torch\.load\((?![^)]*weights_only=True)"):
            if re.search(pattern, text):
                offenders.append(f"{path.relative_to(REPO)}: {pattern}")
    assert not offenders, offenders


def test_checkpoint_state_files_load_with_weights_only(fashion_mnist, tmp_path):
    run_train(train_command(fashion_mnist, tmp_path, max_train_steps=2, checkpointing_steps=2))
    (checkpoint,) = list_checkpoints(tmp_path)
    # What `--resume_from_checkpoint` reads them with: accelerate's loader, weights_only=True with only numpy's array
    # reconstruction allow-listed (RNG states). Anything executable in these files would make it raise.
    from accelerate.utils import load as accelerate_load

    state_files = [*checkpoint.glob("*.bin"), *checkpoint.glob("*.pkl")]
    assert {p.name for p in state_files} >= {"optimizer.bin", "scheduler.bin", "random_states_0.pkl"}
    for state_file in state_files:
        accelerate_load(state_file, weights_only=True)
    assert (checkpoint / "model.safetensors").exists()
    json.loads((checkpoint / "training_state.json").read_text())


def test_pipelines_reject_inputs_of_the_wrong_type_clearly(tmp_path):
    from hf_vqvae.pipeline_vqvae import VQVAEFeatureExtractionPipeline, VQVAEImageToImagePipeline

    model = VQVAEModel(VQVAEConfig(**TINY_VQVAE)).eval()
    processor = VQVAEImageProcessor.for_model_size(28, num_channels=1)
    for pipeline_class in (VQVAEImageToImagePipeline, VQVAEFeatureExtractionPipeline):
        pipe = pipeline_class(model=model, image_processor=processor)
        assert pipe(Image.new("L", (30, 30))) is not None  # the right type works
        with pytest.raises(TypeError, match="int"):
            pipe(12345)
        with pytest.raises(ValueError, match="Incorrect image source"):
            pipe(str(tmp_path / "no-such-image.png"))
        with pytest.raises(TypeError, match="dict"):
            pipe([{"not": "an image"}])
