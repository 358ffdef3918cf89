"""Audio metrics against hand computations and real speech, and the audio VQ-VAE learning on real speech: after a
few dozen steps on two real voices its held-out NLL is below the mu-law unigram baseline."""

from __future__ import annotations

import io
import math
import shutil

import numpy as np
import pytest
import soundfile
import torch
from datasets import Audio, load_dataset

from hf_vqvae import AudioVQVAEConfig, AudioVQVAEModel, VQVAEAudioFeatureExtractor
from hf_vqvae.audio_metrics import (
    code_bits_per_second,
    mu_law_histogram,
    multi_resolution_stft_distance,
    stoi,
    unigram_nll,
)
from hf_vqvae.data.audio import AudioCollator
from hf_vqvae.data.speech import FILLETS_SOUND_ROOT, SPEAKER_NAMES, prepare_speech
from hf_vqvae.training.audio import evaluate_audio_model

needs_fillets = pytest.mark.skipif(
    not FILLETS_SOUND_ROOT.is_dir(), reason="fillets-ng-data-cs is not installed (make speech-deps)"
)


@pytest.fixture(scope="module")
def two_voices(tmp_path_factory):
    """The two lead voices of the Czech Fish Fillets dialogue (a woman and a man), 10 utterances each, one held
    out per voice: about a minute of real speech."""
    if not FILLETS_SOUND_ROOT.is_dir() or shutil.which("ffmpeg") is None:
        pytest.skip("fillets-ng-data-cs is not installed (make speech-deps)")
    folder = tmp_path_factory.mktemp("voices")
    prepare_speech(folder, sources=("fillets",), max_utterances_per_speaker=10, test_fraction=0.1, num_shards=1,
                   cache_dir=tmp_path_factory.mktemp("cache"), fetch_transcripts=False)  # fmt: skip
    rows = {
        split: list(load_dataset(str(folder), split=split).cast_column("audio", Audio(decode=False)))
        for split in ("train", "test")
    }
    return {**rows, "folder": folder}


def _waveform(row) -> np.ndarray:
    return soundfile.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")[0]


def test_unigram_nll_and_bit_rate_against_hand_computation():
    counts = mu_law_histogram(torch.tensor([[0.0, 0.0, 1.0, -1.0]]))
    assert counts[128] == 2 and counts[255] == 1 and counts[0] == 1 and counts.sum() == 4
    assert unigram_nll(counts) == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)))
    masked = mu_law_histogram(torch.tensor([[0.0, 1.0]]), torch.tensor([[1, 0]]))
    assert masked.sum() == 1 and unigram_nll(masked) == 0.0
    assert code_bits_per_second(512, 250.0) == 9 * 250  # the paper's K = 512 at 16 kHz / 64


@needs_fillets
def test_reconstruction_metrics_on_real_speech(two_voices):
    speech = torch.from_numpy(_waveform(two_voices["test"][0]))
    noise = torch.randn(speech.shape, generator=torch.Generator().manual_seed(0)) * speech.std()
    assert multi_resolution_stft_distance(speech, speech) == 0.0
    noisy = speech + 0.1 * noise
    assert 0 < multi_resolution_stft_distance(speech, noisy) < multi_resolution_stft_distance(speech, noise)
    assert stoi(speech, speech, 16000) == pytest.approx(1.0)
    assert stoi(speech, noise, 16000) < 0.5 < stoi(speech, noisy, 16000)
    with pytest.warns(UserWarning, match="0.4 s"):
        assert math.isnan(stoi(speech[:1000], speech[:1000], 16000))
    with pytest.raises(ValueError, match="shorter than the FFT size"):
        multi_resolution_stft_distance(speech[:100], speech[:100])


@pytest.mark.slow
@needs_fillets
def test_learns_real_speech_below_the_unigram_baseline(two_voices):
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small GEMMs: a second thread costs more than it brings on a busy machine
    config = AudioVQVAEConfig(
        hidden_channels=32, residual_channels=16, num_residual_blocks=1, num_embeddings=64, embedding_dim=16,
        num_speakers=2, speaker_embedding_dim=16, condition_channels=32, condition_residual_blocks=1,
        wavenet_residual_channels=32, wavenet_gate_channels=32, wavenet_skip_channels=64, wavenet_num_layers=8,
        wavenet_dilation_cycle=8, segment_samples=2048,
    )  # fmt: skip
    model = AudioVQVAEModel(config)
    extractor = VQVAEAudioFeatureExtractor()
    # Speaker ids 4 and 5 of the speech dataset, renumbered 0 and 1 for a two-speaker model.
    rows = {
        split: [{**row, "speaker_id": row["speaker_id"] - 4} for row in rows] for split, rows in two_voices.items()
    }
    train_collate = AudioCollator(extractor, segment_samples=2048, random_crop=True)
    held_out = AudioCollator(extractor, segment_samples=16384, random_crop=False)(rows["test"])
    assert held_out["speaker_ids"].tolist() == [0, 1] and not held_out["skipped"]

    before = evaluate_audio_model(model, [held_out])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = np.random.default_rng(0)
    model.train()
    for _ in range(40):
        batch = train_collate([rows["train"][i] for i in generator.choice(len(rows["train"]), 4, replace=False)])
        loss = model(batch["input_values"], batch["speaker_ids"], batch["attention_mask"]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = evaluate_audio_model(model, [held_out])
    torch.set_num_threads(threads)

    baseline = after["eval/unigram_nll"]
    assert before["eval/unigram_nll"] == baseline  # the same held-out samples
    assert before["eval/nll"] > baseline  # an untrained WaveNet is no better than the histogram
    assert after["eval/nll"] < baseline - 0.3, (before, after)


TINY_TRAIN_CONFIG = {
    "hidden_channels": 16, "residual_channels": 8, "num_residual_blocks": 1, "num_embeddings": 16, "embedding_dim": 8,
    "speaker_embedding_dim": 8, "condition_channels": 16, "condition_residual_blocks": 1,
    "wavenet_residual_channels": 16, "wavenet_gate_channels": 16, "wavenet_skip_channels": 16,
    "wavenet_num_layers": 4, "wavenet_dilation_cycle": 4, "segment_samples": 1024,
}  # fmt: skip


@needs_fillets
def test_train_script_trains_the_audio_model(two_voices, tmp_path):
    """`scripts/train.py --model audio_vqvae` on the speech dataset: speakers from its ClassLabel, held-out
    evaluation with the unigram baseline, checkpoints, and a final folder that loads with the Auto classes."""
    import json

    from conftest import train_command
    from test_training import load_script
    from transformers import AutoFeatureExtractor, AutoModel

    train = load_script("train")
    output = tmp_path / "run"
    command = train_command(
        two_voices["folder"], output, model="audio_vqvae", model_config=json.dumps(TINY_TRAIN_CONFIG),
        per_device_train_batch_size=4, per_device_eval_batch_size=4, max_train_steps=4, eval_steps=2,
        checkpointing_steps=2, eval_samples=2, report_to="none",
    )  # fmt: skip
    train.main(train.parse_args(command))
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["train/steps"] == 4 and metrics["eval/samples"] == 2 * 1024
    assert metrics["eval/unigram_nll"] > 0 and metrics["eval/nll"] > 0
    assert sorted(p.name for p in output.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    model = AutoModel.from_pretrained(output)
    assert isinstance(model, AudioVQVAEModel)
    # Speakers come from the dataset's ClassLabel: all six names, of which this run heard two.
    assert model.config.speaker_names == list(SPEAKER_NAMES)
    assert isinstance(AutoFeatureExtractor.from_pretrained(output), VQVAEAudioFeatureExtractor)
