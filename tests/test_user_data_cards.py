"""What the cards and scripts/evaluate.py say about the data users have (issue 13): a run on class subfolders names
its real classes in its card and its generation bundle, and the evaluation of a run that held out part of a train-only
dataset reads exactly the examples that run held out, and is named as that held-out part of `train`, not as a split
the dataset does not have. The scripts run in this process, on real Fashion-MNIST images written here."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
from conftest import train_command
from huggingface_hub import ModelCard
from test_evaluate import load_script
from test_user_data import CLASSES, class_items
from user_data import (
    encoded,
    fashion_mnist,
    image_rows,
    parquet_images,
    prior_command,
    write_images,
)

from hf_vqvae import VQVAEImageProcessor
from hf_vqvae.data import open_dataset
from hf_vqvae.evaluation import image_loader
from hf_vqvae.hub import build_generation_repo, build_model_repo

HELD_OUT = 20  # not train.py's default 5: each step must carry the run's own share


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two short VQ-VAE runs, both holding out 20% of a train-only dataset: one on class subfolders, one on parquet
    shards whose rows carry ids (`--record_batches` writes the ids of the examples it evaluated)."""
    root = tmp_path_factory.mktemp("user_data_cards")
    classes = root / "classes"
    for name, members in class_items(12).items():
        write_images(classes / name, members)
    rows = image_rows([(encoded(image), label) for image, label in fashion_mnist(60)])
    parquet = parquet_images(root / "parquet", {"train": rows})
    folders = {"classes_data": classes, "parquet_data": parquet}
    for name, data in (("classes", classes), ("parquet", parquet)):
        folders[name] = root / "runs" / name
        options = {"max_train_steps": 2, "validation_split_percentage": HELD_OUT, "record_batches": "true"}
        train(train_command(data, folders[name], **options))
    return folders


def train(arguments: list[str]) -> None:
    """scripts/train.py, in this process (to skip another import of the stack)."""
    script = load_script("train")
    script.main(script.parse_args(arguments))


def evaluate(arguments: list[str], capsys) -> tuple[dict, str]:
    """scripts/evaluate.py's result and log, run in this process."""
    result = load_script("evaluate").main([*arguments, "--no_progress", "--batch_size", "16"])
    return result, capsys.readouterr().err


def test_class_subfolder_card_names_the_classes_and_the_held_out_part_of_train(runs, tmp_path, capsys):
    run = runs["classes"]
    assert json.loads((run / "train_args.json").read_text())["class_names"] == sorted(CLASSES)
    held_out = len(list(open_dataset(str(runs["classes_data"]), validation_split_percentage=HELD_OUT).eval_stream()))
    assert 0 < held_out < 36

    def card_of(repo) -> tuple[ModelCard, str]:
        text = (repo / "README.md").read_text()
        return ModelCard(text), text

    card, text = card_of(build_model_repo(run, tmp_path / "repo", "someone/classes-vqvae"))
    assert f"3 classes: {', '.join(sorted(CLASSES))}" in text
    # Figures of the end of training: the held-out 20% of `train`, which the model-index names as such.
    assert f"the held-out {HELD_OUT}% of the `train` split" in text and f"the other {100 - HELD_OUT}%" in text
    assert "`test`" not in text
    assert card.data.eval_results
    for result in card.data.eval_results:
        assert result.dataset_split == "train" and result.dataset_args == {"held_out_percentage": HELD_OUT}
        assert result.dataset_name.endswith(f"(held-out {HELD_OUT}% of train)")

    # evaluate.py on the run, without --validation_split_percentage: the run's own 20%, logged as such, on exactly
    # as many images as it held out; the card built afterwards reports these figures under the same split.
    output = run / "eval_results.json"
    result, log = evaluate(["--model_name_or_path", str(run), "--dataset", str(runs["classes_data"]), "--output",
                            str(output)], capsys)  # fmt: skip
    assert f"the {HELD_OUT:g}% of split 'train' of {runs['classes_data']} held out from training" in log
    assert result["metrics"]["num_images"] == held_out
    assert result["evaluation"]["split"] == "train" and result["evaluation"]["held_out_percentage"] == HELD_OUT
    (entry,) = result["model_index"][0]["results"]
    assert entry["dataset"]["split"] == "train" and entry["dataset"]["args"] == {"held_out_percentage": HELD_OUT}
    card, text = card_of(build_model_repo(run, tmp_path / "repo", "someone/classes-vqvae"))
    assert "by `scripts/evaluate.py`" in text and f"the held-out {HELD_OUT}% of the `train` split" in text
    assert all(result.dataset_split == "train" for result in card.data.eval_results)
    assert {r.metric_value for r in card.data.eval_results if r.metric_type == "mse"} == {
        float(f"{result['metrics']['mse']:.5g}")
    }


def test_generation_bundle_of_class_subfolders_names_its_classes(runs, tmp_path, monkeypatch):
    """The codes of the class-subfolder run, a class-conditional prior over them, and their bundle: the pipelines
    and the Space take class names through config.id2label. extract_codes.py, given no
    --validation_split_percentage, holds out the VQ run's own 20%: the codes' validation split is the images that
    run never trained on."""
    codes = tmp_path / "codes"
    monkeypatch.setattr(
        sys, "argv",
        ["extract_codes.py", "--model_name_or_path", str(runs["classes"]), "--dataset", str(runs["classes_data"]),
         "--output_dir", str(codes), "--num_workers", "0", "--batch_size", "16"],
    )  # fmt: skip
    load_script("extract_codes").main()
    held_out = len(list(open_dataset(str(runs["classes_data"]), validation_split_percentage=HELD_OUT).eval_stream()))
    splits = json.loads((codes / "codes_info.json").read_text())["splits"]
    counts = {name: split["examples"] for name, split in splits.items()}
    assert counts == {"train": 36 - held_out, "validation": held_out}
    prior = tmp_path / "prior"
    train(prior_command(codes, prior, max_train_steps=2, class_conditional="true"))
    # The runs are all the bundle needs: the code dataset may be gone (cleaned up, or the runs copied elsewhere).
    shutil.rmtree(codes)
    repo = build_generation_repo(runs["classes"], [prior], tmp_path / "bundle", "someone/classes-gen", num_samples=3)
    config = json.loads((repo / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(3)] == sorted(CLASSES)
    text = (repo / "README.md").read_text()
    assert f"class-conditional over 3 classes: {', '.join(sorted(CLASSES))}" in text
    assert f'class_labels="{sorted(CLASSES)[0]}"' in text


def test_evaluate_reads_exactly_the_examples_a_run_held_out(runs, capsys):
    """A train-only parquet dataset: evaluate.py --validation_split_percentage 20 evaluates the very examples (by id)
    that a run with the same percentage held out and evaluated on, and no others."""
    run, data = runs["parquet"], runs["parquet_data"]
    evaluated_by_training = json.loads((run / "eval_examples_rank0.json").read_text())
    assert 0 < len(evaluated_by_training) < 60
    processor = VQVAEImageProcessor.from_pretrained(run)
    ids = [
        i
        for batch in image_loader(str(data), "test", processor, batch_size=16, validation_split_percentage=HELD_OUT)
        for i in batch["ids"].tolist()
    ]
    assert sorted(ids) == sorted(evaluated_by_training)

    result, log = evaluate(["--model_name_or_path", str(run), "--dataset", str(data), "--validation_split_percentage",
                            str(HELD_OUT)], capsys)  # fmt: skip
    assert result["metrics"]["num_images"] == len(evaluated_by_training)
    assert f"the {HELD_OUT:g}% of split 'train'" in log and "the dataset has no split 'test'" in log
    # Another percentage is another set of examples: the flag is what decides.
    result, _ = evaluate(["--model_name_or_path", str(run), "--dataset", str(data), "--validation_split_percentage",
                          "50"], capsys)  # fmt: skip
    assert result["metrics"]["num_images"] == len(list(open_dataset(str(data), validation_split_percentage=50)
                                                       .eval_stream()))  # fmt: skip
    assert result["metrics"]["num_images"] > len(evaluated_by_training)
