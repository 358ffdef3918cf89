"""A run on unusable data fails, and never saves an untrained model as if it were trained (issue 18): steps count
only real updates, the bad-fraction rule holds however small the data, a failure keeps the last good checkpoint and
says how to resume. Every run goes through scripts/train.py in a subprocess, on real Fashion-MNIST images and on
corrupt files made here."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import torch
from conftest import REPO, TINY_VQVAE, train_command
from safetensors.torch import load_file
from user_data import (
    assert_one_clear_failure,
    code_dataset,
    corrupt_files,
    encoded,
    fashion_mnist,
    image_rows,
    parquet_images,
    prior_command,
    read_records,
    run_cases,
    run_script,
)

from hf_vqvae import VQVAEConfig, VQVAEModel
from hf_vqvae.training import list_checkpoints


def test_forty_corrupt_files_and_nothing_else_fail_with_one_line_and_no_model(tmp_path):
    # The command, as a new user runs it: 40 corrupt files in a train-only parquet dataset.
    rows = image_rows([(data, 0) for data in corrupt_files(40)])
    data = parquet_images(tmp_path / "corrupt", {"train": rows})
    output = tmp_path / "out"
    result = run_script(
        train_command(data, output, max_train_steps=5, per_device_train_batch_size=8, eval_split="train")
    )
    line = assert_one_clear_failure(result.returncode, result.stderr, output, "training stopped:")
    assert re.search(r"none of the \d+ (evaluation )?examples read was usable", line), line
    assert re.search(r"(truncated|empty|not_an_image): \d+", line), line
    assert re.search(r"Examples: id \d+: (truncated|empty|not_an_image) \(", line), line
    assert "No model was saved" in line and not list_checkpoints(output)


def test_bad_data_rules_through_train_py(tmp_path):
    items = fashion_mnist(232)
    good = [(encoded(image), label) for image, label in items]
    clean_test = image_rows(good[200:232])
    # One usable image among 200 corrupt files.
    one_good_rows = image_rows([good[0]] + [(data, 0) for data in corrupt_files(200)])
    one_good = parquet_images(tmp_path / "one_good", {"train": one_good_rows, "test": clean_test})
    # 30 examples, 3 of them corrupt: fewer than the 100-example floor, and still too many.
    small = parquet_images(tmp_path / "small", {"train": image_rows([(d, 0) for d in corrupt_files(3)] + good[:27]),
                                                "test": clean_test}, num_shards=1)  # fmt: skip
    # 120 good examples, then 80 corrupt ones: the run stops after some real updates and checkpoints.
    late = parquet_images(tmp_path / "late", {"train": image_rows(good[:120] + [(d, 0) for d in corrupt_files(80)]),
                                              "test": clean_test}, num_shards=1)  # fmt: skip
    # Priors: code maps with malformed rows (another shape, codes outside the codebook, none, no label).
    all_malformed = code_dataset(tmp_path / "codes_bad", count=40, malformed=40, test_count=16)
    some_malformed = code_dataset(tmp_path / "codes_some", count=120, malformed=12, test_count=16)
    runs = tmp_path / "runs"
    ordered = {"shuffle_buffer": 0}
    cases = {
        "one_good_among_200": train_command(one_good, runs / "one_good", max_train_steps=20),
        "small_run": train_command(small, runs / "small", max_train_steps=2, **ordered),
        "late": train_command(late, runs / "late", max_train_steps=40, checkpointing_steps=5, **ordered),
        "prior_all_malformed": prior_command(all_malformed, runs / "prior_bad", class_conditional="true"),
        "prior_some_malformed": prior_command(
            some_malformed,
            runs / "prior_some",
            class_conditional="true",
            max_train_steps=6,
            max_skipped_fraction=0.3,
            record_batches="true",
            **ordered,
        ),  # fmt: skip
    }
    results = run_cases(cases, tmp_path / "cases")

    line = assert_one_clear_failure(**_of(results, "one_good_among_200"), output_dir=runs / "one_good")
    assert re.search(r"\d+ of \d+ examples were unusable .* more than --max_skipped_fraction=0.01", line), line

    # The floor delays the verdict, never cancels it: checked again at the end of the run.
    line = assert_one_clear_failure(**_of(results, "small_run"), output_dir=runs / "small")
    assert re.search(r"[123] of 16 examples were unusable", line), line

    # Stopped after real updates: the last good checkpoint is complete and named, with how to resume.
    line = assert_one_clear_failure(**_of(results, "late"), output_dir=runs / "late")
    checkpoints = list_checkpoints(runs / "late")
    assert checkpoints and checkpoints[-1].name == "checkpoint-15", checkpoints
    assert f"{checkpoints[-1]}, is intact" in line and "--resume_from_checkpoint latest" in line, line

    line = assert_one_clear_failure(**_of(results, "prior_all_malformed"), output_dir=runs / "prior_bad")
    assert re.search(r"none of the \d+ examples read was usable", line), line
    assert all(cause in line for cause in ("malformed", "out_of_range", "no_label")), line

    assert results["prior_some_malformed"]["rc"] == 0, results["prior_some_malformed"]["stderr"][-3000:]
    metrics = json.loads((runs / "prior_some" / "metrics.json").read_text())
    assert metrics["train/skipped_by_cause"] == {"malformed": 6, "out_of_range": 3, "no_label": 3}, metrics
    records = read_records(runs / "prior_some" / "batches_rank0.jsonl")
    assert metrics["train/steps"] == 6 == len({record["step"] for record in records})
    assert not {i for record in records for i in record["ids"]} & set(range(12)), "a malformed row was trained on"
    summary = [line for line in results["prior_some_malformed"]["stderr"].splitlines() if "data: " in line]
    assert summary and "12 skipped (malformed: 6, out_of_range: 3, no_label: 3)" in summary[-1], summary


def _of(results: dict, name: str) -> dict:
    return {"rc": results[name]["rc"], "stderr": results[name]["stderr"], "marker": "training stopped:"}


def test_ten_percent_corrupt_trains_and_counts_only_real_updates(tmp_path):
    items = fashion_mnist(192)
    good = [(encoded(image), label) for image, label in items]
    # 160 training files, 16 of them corrupt in one block: two whole batches of 8 with nothing usable, which a
    # step counter that counts batches instead of updates would count twice.
    train = good[:96] + [(d, 0) for d in corrupt_files(16)] + good[96:144]
    data = parquet_images(tmp_path / "data", {"train": image_rows(train), "test": image_rows(good[160:192])},
                          num_shards=1)  # fmt: skip
    output = tmp_path / "run"
    command = train_command(data, output, max_train_steps=24, max_skipped_fraction=0.2, shuffle_buffer=0,
                            record_batches="true")  # fmt: skip
    result = subprocess.run([sys.executable, str(REPO / "tests" / "train_driver.py"), *command], capture_output=True,
                            text=True, env={**os.environ}, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((output / "metrics.json").read_text())
    records = read_records(output / "batches_rank0.jsonl")
    steps = [record["step"] for record in records]
    # 24 steps read 208 files: the 160 once, then the first 48 again; 16 corrupt files were skipped once.
    assert metrics["train/steps"] == 24 == len(steps) == len(set(steps))
    assert all(len(record["ids"]) == 8 for record in records)
    assert metrics["train/skipped_examples"] == 16 and metrics["train/examples_read"] == 208
    # Every step was a real update of the model: the quantizer's EMA step counter moved 24 times.
    state = load_file(output / "rank0.safetensors")
    (counter,) = [int(tensor) for name, tensor in state.items() if re.fullmatch(r".*quantizer.*\.step", name)]
    assert counter == 24
    summary = [line for line in result.stderr.splitlines() if "data: " in line]
    assert summary and re.search(r"16 skipped \(.*\); skipped: id \d+: ", summary[-1]), summary


def test_evaluate_on_an_all_corrupt_split_is_one_clear_error(tmp_path):
    data = parquet_images(tmp_path / "data", {"test": image_rows([(data, 0) for data in corrupt_files(12)])})
    torch.manual_seed(0)
    VQVAEModel(VQVAEConfig(**TINY_VQVAE)).save_pretrained(tmp_path / "vq")
    arguments = ["--model_name_or_path", str(tmp_path / "vq"), "--dataset", str(data), "--split", "test"]
    result = run_script([*arguments, "--no_progress"], script=REPO / "scripts" / "evaluate.py")
    line = assert_one_clear_failure(result.returncode, result.stderr, None, "evaluate.py: error:")
    assert re.search(
        r"split 'test' of .*: none of the 12 images read was usable \((truncated|empty|not_an_image)", line
    )
    assert result.stdout.strip() == "", "no metrics over nothing"
