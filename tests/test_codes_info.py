"""`codes_info.json` through its one record type, `CodesInfo`: what extract_codes.py writes, what release 0.1.0
wrote, and the errors a wrong file or column gets."""

from __future__ import annotations

import json

import pytest

from hf_vqvae import VQVAE2Config, VQVAEConfig
from hf_vqvae.codes_info import CODES_INFO_FILE, CodesInfo


def test_a_record_of_a_hierarchy_round_trips(tmp_path):
    config = VQVAE2Config(image_size=32, downsample_factors=[8, 4, 2], num_embeddings=[16, 32, 64])
    info = CodesInfo.for_vq_model(config, vq_model="/models/vq", source_dataset="data/photos")
    assert info.columns == ["codes_0", "codes_1", "codes_2"]
    levels = [(level.num_embeddings, level.shape) for level in info.levels]
    assert levels == [(16, (4, 4)), (32, (8, 8)), (64, (16, 16))]
    assert info.image_shape == [3, 32, 32] and info.image_dims == 3 * 32 * 32
    info.label_column, info.num_classes, info.splits = "label", 10, {"test": {"examples": 5, "skipped": 0}}
    prior = info.for_prior("codes_2", condition_column="codes_1")
    assert info.prior is None and prior.prior.code_column == "codes_2" and prior.level_index("codes_2") == 2

    prior.write(tmp_path)
    assert CodesInfo.read(tmp_path) == prior
    assert json.loads((tmp_path / CODES_INFO_FILE).read_text())["levels"][0] == {
        "column": "codes_0", "num_embeddings": 16, "height": 4, "width": 4, "shape": [4, 4]
    }  # fmt: skip


def test_a_record_of_release_0_1_0_still_reads(tmp_path):
    # As scripts/extract_codes.py of 0.1.0 wrote it: 2-D sizes only, and a key this version does not know.
    record = {
        "vq_model": "/models/vq", "vq_model_type": "vqvae", "image_shape": [1, 28, 28], "source_dataset": "fm",
        "levels": [{"column": "codes", "height": 7, "width": 7, "num_embeddings": 32}], "label_column": "label",
        "num_classes": 10, "splits": {"train": {"examples": 512, "skipped": 0}}, "notes": "kept",
    }  # fmt: skip
    (tmp_path / CODES_INFO_FILE).write_text(json.dumps(record))
    info = CodesInfo.read(tmp_path)
    assert info.level("codes").shape == (7, 7) and info.num_classes == 10 and info.extra == {"notes": "kept"}
    assert info.to_dict() == {**record, "levels": [{**record["levels"][0], "shape": [7, 7]}]}


def test_a_one_dimensional_model_gets_sequence_levels():
    config = VQVAEConfig(spatial_dims=1, in_channels=1, image_size=256, downsample_factor=8, num_embeddings=32)
    (level,) = CodesInfo.for_vq_model(config, vq_model="vq").levels
    assert level.column == "codes" and level.shape == (32,)
    assert level.to_dict() == {"column": "codes", "num_embeddings": 32, "shape": [32]}


def test_wrong_sources_and_columns_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path} has no {CODES_INFO_FILE}"):
        CodesInfo.read(tmp_path)
    with pytest.raises(FileNotFoundError, match="neither a local folder nor a Hub dataset id"):
        CodesInfo.read(str(tmp_path / "missing" / "folder"))
    (tmp_path / CODES_INFO_FILE).write_text(json.dumps({"vq_model": "vq"}))
    with pytest.raises(ValueError, match="lacks levels, image_shape"):
        CodesInfo.read(tmp_path)
    info = CodesInfo.for_vq_model(VQVAEConfig(image_size=16), vq_model="vq")
    with pytest.raises(ValueError, match=r"'codes_1' is not a code column of this dataset \(\['codes'\]\)"):
        info.for_prior("codes_1")
