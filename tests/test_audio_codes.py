"""The speech model's prior path on real speech (two voices of the Fish Fillets dialogue): scripts/extract_codes.py
gives 1-D code sequences of fixed crops with the speaker as the label, a speaker-conditional 1-D PixelSNAIL trains on
them through scripts/train.py, the VQ model and prior bundle into one Hub folder that generates speech (the same
waveform through the model, the pipeline and trust_remote_code without hf_vqvae), and scripts/sample.py writes WAVs."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from conftest import train_command
from datasets import load_dataset
from test_audio_learning import needs_fillets, two_voices  # noqa: F401 (a fixture)
from test_audio_vqvae import TINY_AUDIO, one_thread  # noqa: F401 (an autouse fixture: one thread here too)
from test_evaluate import load_script
from user_data import TINY_PRIOR

from hf_vqvae import AudioVQVAEConfig, AudioVQVAEModel, PixelSNAILModel, VQVAEAudioFeatureExtractor
from hf_vqvae.codes_info import CodesInfo
from hf_vqvae.data.audio import AudioCollator
from hf_vqvae.data.speech import SPEAKER_NAMES

SEGMENT = 2048  # 32 codes per crop


@pytest.fixture(scope="module")
def audio_model_dir(tmp_path_factory):
    """A tiny untrained audio VQ-VAE over the speech dataset's speakers, saved as a training run saves it (no
    feature extractor beside it)."""
    torch.manual_seed(0)
    names = list(SPEAKER_NAMES)
    config = AudioVQVAEConfig(**{**TINY_AUDIO, "num_speakers": len(names), "speaker_names": names})
    folder = tmp_path_factory.mktemp("audio_vq")
    AudioVQVAEModel(config).eval().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def audio_codes(two_voices, audio_model_dir, tmp_path_factory):  # noqa: F811
    output = tmp_path_factory.mktemp("audio_codes")
    argv = ["extract_codes.py", "--model_name_or_path", str(audio_model_dir), "--dataset", str(two_voices["folder"]),
            "--output_dir", str(output), "--segment_samples", str(SEGMENT), "--num_workers", "0",
            "--batch_size", "8"]  # fmt: skip
    saved, sys.argv = sys.argv, argv
    try:
        assert load_script("extract_codes").run() == 0
    finally:
        sys.argv = saved
    return output


@needs_fillets
def test_extract_codes_gives_the_models_codes_of_the_middle_crops(two_voices, audio_model_dir, audio_codes):  # noqa: F811
    info = CodesInfo.read(audio_codes)
    assert info.is_audio and info.columns == ["codes"] and info.levels[0].shape == (SEGMENT // 64,)
    assert info.label_column == "speaker_id" and info.num_classes == len(SPEAKER_NAMES)
    assert info.extra["class_names"] == list(SPEAKER_NAMES) and info.extra["crop"] == "middle"
    assert info.image_shape == [1, SEGMENT] and info.image_dims == SEGMENT
    assert info.splits["train"] == {"examples": len(two_voices["train"]), "skipped": 0}
    assert info.splits["test"] == {"examples": len(two_voices["test"]), "skipped": 0}
    # The same crops encoded here, independently of the script: the middle SEGMENT samples at 16 kHz.
    model = AudioVQVAEModel.from_pretrained(audio_model_dir).eval()
    extractor = VQVAEAudioFeatureExtractor(pad_to_multiple_of=64)
    collate = AudioCollator(extractor, "audio", "speaker_id", segment_samples=SEGMENT, random_crop=False)
    for split in ("train", "test"):
        rows = two_voices[split]
        batch = collate(rows)
        codes = load_dataset(str(audio_codes), split=split).with_format("numpy")
        assert np.asarray(codes["codes"]).shape == (len(rows), SEGMENT // 64)
        assert torch.equal(torch.as_tensor(np.asarray(codes["codes"])).long(), model.encode(batch["input_values"]))
        assert list(codes["speaker_id"]) == [row["speaker_id"] for row in rows]


@pytest.fixture(scope="module")
def audio_prior(audio_codes, tmp_path_factory):
    """A speaker-conditional 1-D PixelSNAIL after 3 steps of scripts/train.py on the code sequences."""
    output = tmp_path_factory.mktemp("audio_prior")
    train = load_script("train")
    command = train_command(
        audio_codes, output, model="pixelsnail", model_config=json.dumps(TINY_PRIOR), class_conditional=True,
        eval_steps=2, eval_samples=4, per_device_eval_batch_size=4,
    )  # fmt: skip
    train.main(train.parse_args(command))
    return output


@needs_fillets
def test_a_speaker_conditional_sequence_prior_trains_on_the_codes(audio_codes, audio_prior):
    prior = PixelSNAILModel.from_pretrained(audio_prior)
    config = prior.config
    assert config.spatial_dims == 1 and config.latent_length == SEGMENT // 64
    assert config.num_classes == len(SPEAKER_NAMES) and config.num_embeddings == TINY_AUDIO["num_embeddings"]
    metrics = json.loads((audio_prior / "metrics.json").read_text())
    assert metrics["train/steps"] == 3 and metrics["train/skipped_examples"] == 0
    # Evaluated on the codes of the held-out utterances (the speech dataset's test split), in bits per code.
    assert metrics["eval/num_images"] == 2 and np.isfinite(metrics["eval/bits_per_code"])
    # Which VQ model and codes it belongs to, for sampling and bundling.
    info = CodesInfo.read(audio_prior, repo_type="model")
    assert (
        info.is_audio and info.prior.code_column == "codes" and info.vq_model == CodesInfo.read(audio_codes).vq_model
    )
