"""`--dataset` on the data users have (issue 13): image folders of every usual layout, train-only parquet with odd
column names, `save_to_disk` arrow shards; a deterministic held-out split that every rank, a resumed run,
scripts/extract_codes.py and scripts/evaluate.py agree on and training never uses; one clear message for each kind of
unusable input. Every run goes through the scripts in subprocesses, on real Fashion-MNIST images written here."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO, TINY_VQVAE, train_command
from datasets import ClassLabel, Dataset, DatasetDict, Features, load_dataset
from datasets import Image as ImageFeature
from distributed import launch_two_ranks
from transformers import AutoModel
from user_data import (
    TRAIN_SCRIPT,
    assert_one_clear_failure,
    code_dataset,
    encoded,
    fashion_mnist,
    image_rows,
    parquet_images,
    prior_command,
    read_records,
    run_cases,
    run_script,
    write_images,
)

from hf_vqvae import VQVAEConfig, VQVAEImageProcessor, VQVAEModel
from hf_vqvae.data import FASHION_MNIST_LABELS, open_dataset
from hf_vqvae.training import list_checkpoints

CLASSES = ["Trouser", "Bag", "Sneaker"]


def class_items(count: int) -> dict[str, list]:
    """Real Fashion-MNIST images of three classes, `count` each."""
    chosen: dict[str, list] = {name: [] for name in CLASSES}
    for image, label in fashion_mnist(600):
        name = FASHION_MNIST_LABELS[label]
        if name in chosen and len(chosen[name]) < count:
            chosen[name].append((image, label))
    return chosen


def make_layouts(root: Path) -> dict[str, dict]:
    """name -> {"path", and what train.py must resolve: "eval_split", "held_out", "image_column", "class_names"}."""
    items = fashion_mnist(160)
    classes = class_items(24)
    layouts = {}

    write_images(root / "flat_jpegs", items[:120], suffix=".jpg")
    layouts["flat_jpegs"] = {"eval_split": "train", "held_out": 5.0, "image_column": "image", "label_column": None,
                             "class_names": None}  # fmt: skip

    write_images(root / "train_test" / "train", items[:96])
    write_images(root / "train_test" / "test", items[96:128])
    layouts["train_test"] = {"eval_split": "test", "held_out": 0, "image_column": "image", "label_column": None,
                             "class_names": None}  # fmt: skip

    for name, members in classes.items():
        write_images(root / "classes" / name, members)
    layouts["classes"] = {"eval_split": "train", "held_out": 5.0, "image_column": "image", "label_column": "label",
                          "class_names": sorted(CLASSES)}  # fmt: skip

    for name, members in classes.items():
        write_images(root / "train_validation_classes" / "train" / name, members[:18])
        write_images(root / "train_validation_classes" / "validation" / name, members[18:])
    layouts["train_validation_classes"] = {"eval_split": "validation", "held_out": 0, "image_column": "image",
                                           "label_column": "label", "class_names": sorted(CLASSES)}  # fmt: skip

    # The most common shape of a Hub image dataset: parquet shards of a train split only, here with an image column
    # of another name.
    rows = image_rows([(encoded(image), label) for image, label in items[:120]], image_column="picture")
    parquet_images(root / "parquet_train_only", {"train": rows}, image_column="picture", num_shards=3)
    layouts["parquet_train_only"] = {"eval_split": "train", "held_out": 5.0, "image_column": "picture",
                                     "label_column": "label", "class_names": list(FASHION_MNIST_LABELS)}  # fmt: skip

    features = Features({"img": ImageFeature(), "fine_label": ClassLabel(names=list(FASHION_MNIST_LABELS))})
    splits = {
        split: Dataset.from_list([{"img": image, "fine_label": label} for image, label in part], features=features)
        for split, part in (("train", items[:96]), ("test", items[96:128]))
    }
    DatasetDict(splits).save_to_disk(str(root / "arrow_saved"))
    layouts["arrow_saved"] = {"eval_split": "test", "held_out": 0, "image_column": "img",
                              "label_column": "fine_label", "class_names": list(FASHION_MNIST_LABELS)}  # fmt: skip
    return {name: {"path": root / name, **expected} for name, expected in layouts.items()}


def test_every_layout_trains_with_no_other_flag_and_saves_a_model_automodel_loads(tmp_path):
    layouts = make_layouts(tmp_path / "data")
    cases = {
        name: train_command(layout["path"], tmp_path / "runs" / name, max_train_steps=2, shuffle_buffer=16)
        for name, layout in layouts.items()
    }
    results = run_cases(cases, tmp_path / "cases")
    for name, layout in layouts.items():
        result, output = results[name], tmp_path / "runs" / name
        assert result["rc"] == 0, (name, result["stderr"][-3000:])
        assert isinstance(AutoModel.from_pretrained(output), VQVAEModel), name
        resolved = json.loads((output / "train_args.json").read_text())
        # What was found: the eval split or held-out share, the image column, the labels and class names (split
        # folders are not mistaken for classes).
        for key in ("eval_split", "image_column", "label_column", "class_names"):
            assert resolved[key] == layout[key], (name, key, resolved[key])
        assert resolved["validation_split_percentage"] == layout["held_out"], name
        metrics = json.loads((output / "metrics.json").read_text())
        assert metrics["train/steps"] == 2 and "eval/mse" in metrics, (name, metrics)
        # The log says where evaluation examples come from and how many, and ends with the data summary.
        stderr = result["stderr"]
        source = "held out by a hash" if layout["held_out"] else f"the dataset's own split {layout['eval_split']!r}"
        assert source in stderr, (name, stderr[-2000:])
        assert "evaluation: " in stderr and "data: " in stderr, (name, stderr[-2000:])


def bad_input_cases(tmp_path: Path) -> dict[str, tuple[list[str], Path, str]]:
    """name -> (arguments, output folder, words the one error line must contain)."""
    data = tmp_path / "data"
    (data / "empty").mkdir(parents=True)
    (data / "no_images").mkdir()
    (data / "no_images" / "notes.txt").write_text("holiday pictures to sort\n")
    (data / "no_images" / "list.csv").write_text("a,b\n1,2\n")
    write_images(data / "images", fashion_mnist(40))
    codes = code_dataset(data / "codes", count=40, malformed=0)
    info = json.loads((codes / "codes_info.json").read_text())
    (codes / "codes_info.json").write_text(json.dumps({**info, "label_column": None, "num_classes": None}))

    def case(name: str, dataset, words: str, **overrides):
        output = tmp_path / "runs" / name
        command = overrides.pop("command", train_command)
        return name, (command(dataset, output, max_train_steps=1, **overrides), output, words)

    return dict(
        [
            case("unknown_hub_id", "nobody-here/no-such-dataset", "neither a local folder nor|cannot be reached"),
            case("missing_folder", data / "not_there", "no such file or folder"),
            case("empty_folder", data / "empty", "empty folder"),
            case("folder_without_images", data / "no_images", "holds no images: found 2 file(s)"),
            case("missing_image_column", data / "images", "--image_column 'photo' is not in", image_column="photo"),
            case("missing_label_column", data / "images", "--label_column 'kind' is not in", label_column="kind"),
            case(
                "missing_eval_split", data / "images", "no split 'validation' (--eval_split)", eval_split="validation"
            ),  # fmt: skip
            case(
                "class_conditional_without_labels",
                codes,
                "--class_conditional needs labels",
                command=prior_command,
                class_conditional="true",
            ),  # fmt: skip
            case(
                "prior_on_images",
                data / "images",
                "code dataset written by scripts/extract_codes.py",
                command=prior_command,
            ),  # fmt: skip
        ]
    )


def test_each_kind_of_bad_input_gives_one_clear_message(tmp_path):
    cases = bad_input_cases(tmp_path)
    results = run_cases({name: arguments for name, (arguments, _, _) in cases.items()}, tmp_path / "cases")
    for name, (_, output, words) in cases.items():
        result = results[name]
        line = assert_one_clear_failure(result["rc"], result["stderr"], output, "train.py: error:")
        assert any(word in line for word in words.split("|")), (name, line)
        assert result["rc"] == 2, name


@pytest.mark.slow
def test_held_out_examples_agree_across_ranks_and_a_kill_9_resume_and_are_never_trained_on(tmp_path):
    items = fashion_mnist(320)
    rows = image_rows([(encoded(image), label) for image, label in items])
    data = parquet_images(tmp_path / "data", {"train": rows}, num_shards=4)  # a train split only
    options = {"validation_split_percentage": 10, "eval_samples": 1000, "shuffle_buffer": 32, "record_batches": "true"}

    # One process, killed at a random moment after its first checkpoint, then resumed.
    single = tmp_path / "single"
    command = [sys.executable, str(REPO / "scripts" / "train.py")]
    command += train_command(data, single, max_train_steps=40, checkpointing_steps=10, **options)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (single / "checkpoint-10").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 1.0))
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_eval = json.loads((single / "eval_examples_rank0.json").read_text())
    assert list_checkpoints(single) and not (single / "model.safetensors").exists()
    resumed = subprocess.run(command + ["--resume_from_checkpoint", "latest"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    resumed_eval = json.loads((single / "eval_examples_rank0.json").read_text())

    # Two processes.
    two = tmp_path / "two_ranks"
    result = launch_two_ranks(TRAIN_SCRIPT, train_command(data, two, max_train_steps=4, **options), two)
    assert result.returncode == 0, result.stderr[-3000:]
    rank_evals = [json.loads((two / f"eval_examples_rank{rank}.json").read_text()) for rank in (0, 1)]

    held_out = set(killed_eval)
    assert 0.05 * len(items) <= len(held_out) <= 0.15 * len(items), len(held_out)
    assert set(resumed_eval) == held_out, "a resumed run holds out other examples"
    assert not set(rank_evals[0]) & set(rank_evals[1]) and set(rank_evals[0]) | set(rank_evals[1]) == held_out
    trained = [
        {i for record in read_records(folder / f"batches_rank{rank}.jsonl") for i in record["ids"]}
        for folder, rank in ((single, 0), (two, 0), (two, 1))
    ]
    assert all(trained) and not held_out & set.union(*trained), "held-out examples were trained on"
    # Nothing else is lost: 40 steps of 8 read every other example at least once.
    assert trained[0] == set(range(len(items))) - held_out
    metrics = json.loads((single / "metrics.json").read_text())
    assert metrics["train/steps"] == 40 and metrics["train/held_out_examples"] > 0


def test_extract_codes_and_evaluate_read_a_train_only_folder_as_training_does(tmp_path):
    folder = tmp_path / "classes"
    for name, members in class_items(24).items():
        write_images(folder / name, members)
    vq = tmp_path / "vq"  # codes of an untrained model are codes all the same: what is tested here is the data
    torch.manual_seed(0)
    VQVAEModel(VQVAEConfig(**TINY_VQVAE)).save_pretrained(vq)
    VQVAEImageProcessor.for_model_size(28, num_channels=1).save_pretrained(vq)
    held_out = len(list(open_dataset(str(folder)).eval_stream()))  # what train.py holds out of this folder
    assert 0 < held_out < 72

    codes = tmp_path / "codes"
    arguments = ["--model_name_or_path", str(vq), "--dataset", str(folder), "--output_dir", str(codes)]
    result = run_script(
        arguments + ["--num_workers", "0", "--batch_size", "16"], script=REPO / "scripts" / "extract_codes.py"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads((codes / "codes_info.json").read_text())
    # The held-out images' codes are the code dataset's validation split; class names travel with the labels.
    assert {split: counts["examples"] for split, counts in info["splits"].items()} == {
        "train": 72 - held_out,
        "validation": held_out,
    }
    assert info["num_classes"] == 3
    assert load_dataset(str(codes), split="validation").features["label"].names == sorted(CLASSES)

    # evaluate.py's default split on a train-only folder is the same held-out images.
    result = run_script(["--model_name_or_path", str(vq), "--dataset", str(folder), "--no_progress"],
                        script=REPO / "scripts" / "evaluate.py")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["metrics"]["num_images"] == held_out
